"""`make bench`: sanctions-watch against a naive script and a lower bound, on the same bytes, in one run.

For each size (``--feeds 100,1000,5000``; ``--quick``: 100) it generates deterministic feeds
(bench/feedgen.py: 50 RSS items a feed, 300-1,500 characters, ~3 % breach stories composed from the
labelled corpus), serves them on loopback with ETag / Last-Modified, and runs three cycles:

1. ``new``: every feed seen for the first time (``feeds x 50`` new items);
2. ``unchanged``: the same feeds again, every one answering 304;
3. ``changed``: 10 % of the feeds with 5 new items each (the rest 304).

Each cycle runs three contenders, each in its own subprocess with its own SQLite database, one after
the other on the same served bytes: ``sanctions-watch`` (bench/swcycle.py: ``pipeline.jobs.run_once``,
mail to an aiosmtpd sink started here), ``naive`` (bench/naive.py) and ``lower`` (bench/lowerbound.py).
For each: wall time, new items per second, CPU seconds (user + sys of the process and the children
it waited for, from ``wait4``), peak RSS (``ru_maxrss`` from ``wait4``: the process's VmHWM, or its
largest child's). For sanctions-watch also the per-stage seconds (see bench/swcycle.py) and the latency
from an item's first appearance in its feed (the moment the cycle's feed version was published, just
before the cycle started) to its mail arriving at the sink, p50 and p95.

    .venv/bin/python bench/cycles.py [--feeds 100,1000,5000 | --quick] [--profile SIZE]
        [--out-dir bench/results] [--note TEXT]

writes ``bench/results/cycles-<date>.json`` and ``cycles-<date>.md`` (with the machine: CPU model,
cores, RAM, Python, package versions, git commit, load average before the run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from feedgen import LINK_RE, FeedSite  # noqa: E402

CHANGED_SHARE = 10  # every 10th feed changes in the "changed" cycle
PACKAGES = ("feedparser", "scikit-learn", "numpy", "SQLAlchemy", "httpx", "lxml", "aiosmtpd")


# ------------------------------------------------------------------------------------ mail sink


class TimedSink:
    """An aiosmtpd sink that keeps (arrival time, message bytes) for every message."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append((time.time(), bytes(envelope.content)))
        return "250 OK"

    def __enter__(self) -> TimedSink:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def since(self, index: int) -> list[tuple[float, bytes]]:
        with self.lock:
            return self.messages[index:]


# ------------------------------------------------------------------------------------ running


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one contender; its JSON output plus wall time, CPU and peak RSS from wait4."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[1]} exited {proc.returncode}: {stderr[-3000:]}")
    result: dict[str, Any] = json.loads(stdout)
    result["wall_s"] = wall
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    result["stderr_lines"] = stderr.count("\n")
    return result


def write_sw_config(folder: Path, site: FeedSite, feeds: int, smtp_port: int) -> Path:
    import shutil

    cdir = folder / "config"
    cdir.mkdir(parents=True)
    for name in ("regimes.yaml", "places.yaml", "actors.yaml"):
        shutil.copy(ROOT / "config" / name, cdir / name)
    settings = {
        "database_url": f"sqlite:///{folder / 'sw.db'}",
        "base_dir": str(folder),
        "feeds_file": "feeds.yaml",
        "model_dir": str(ROOT / "models"),
        "outbox_dir": str(folder / "outbox"),
        "designations_path": str(ROOT / "data" / "designations" / "un_consolidated_sample.xml"),
        "fetch": {"allow_hosts": ["127.0.0.1"]},
        "smtp": {"host": "127.0.0.1", "port": smtp_port},
        "operators": ["ops@example.org"],
        "review": {"base_url": None},
    }
    (cdir / "settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    feed_list = [
        {"id": f"f{n:05d}", "url": site.feed_url(n), "full_text": "never"} for n in range(feeds)
    ]
    (cdir / "feeds.yaml").write_text(
        yaml.safe_dump({"defaults": {"max_silence_hours": 0}, "feeds": feed_list}),
        encoding="utf-8",
    )
    subs = [{"id": "all", "recipients": ["desk@example.org"], "mode": "immediate"}]
    (cdir / "subscriptions.yaml").write_text(
        yaml.safe_dump({"subscriptions": subs}), encoding="utf-8"
    )
    return cdir


def latencies(site: FeedSite, mails: list[tuple[float, bytes]]) -> dict[str, Any]:
    """Seconds from each mailed item's first appearance in its feed to its mail's arrival."""
    import email
    from email import policy

    values: list[float] = []
    for arrived, raw in mails:
        msg = email.message_from_bytes(raw, policy=policy.default)
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        m = LINK_RE.search(text)
        if m is None:
            continue  # an operator notice or a digest, not an item's alert
        first = site.first_seen(m.group(1), int(m.group(2)))
        if first is not None:
            values.append(arrived - first)
    if not values:
        return {"alerts_mailed": 0, "p50_s": None, "p95_s": None}
    values.sort()
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return {"alerts_mailed": len(values), "p50_s": statistics.median(values), "p95_s": p95}


def run_size(feeds: int, work: Path, sink: TimedSink, profile: bool) -> list[dict[str, Any]]:
    py = sys.executable
    rows: list[dict[str, Any]] = []
    site = FeedSite(work / "feeds")
    with site.serve():
        cdir = write_sw_config(work, site, feeds, sink.port)
        urls = work / "urls.txt"
        urls.write_text("\n".join(site.feed_url(n) for n in range(feeds)) + "\n")
        env = {**os.environ, "SANCTIONS_WATCH_CONFIG": str(cdir)}
        changed = [n for n in range(feeds) if n % CHANGED_SHARE == 0]
        plan: list[tuple[str, list[int]]] = [
            ("new", list(range(feeds))),
            ("unchanged", []),
            ("changed", changed),
        ]
        for version, (cycle, publish) in enumerate(plan):
            if publish:
                t = time.perf_counter()
                site.publish(publish, 0 if cycle == "new" else version - 1, time.time())
                gen = time.perf_counter() - t
                print(
                    f"[{feeds}] {cycle}: generated {len(publish)} feeds in {gen:.1f} s", flush=True
                )
            new_items = len(publish) * (50 if cycle == "new" else 5)
            row: dict[str, Any] = {"feeds": feeds, "cycle": cycle, "new_items": new_items}
            # sanctions-watch first, right after the feeds were published: its latency is from
            # the moment the items appeared. Then the naive script and the lower bound.
            cmd = [py, str(BENCH / "swcycle.py"), "--config", str(cdir), "--run-id", cycle]
            if profile:
                cmd += ["--profile", str(work / f"sw-{feeds}-{cycle}.prof")]
            mark = len(sink.messages)
            res = run_child(cmd, env)
            time.sleep(0.2)  # the sink's last DATA handler
            res["latency"] = latencies(site, sink.since(mark))
            row["sanctions-watch"] = res
            print(f"[{feeds}] {cycle}: sanctions-watch {res['wall_s']:.1f} s", flush=True)
            for name, script in (("naive", "naive.py"), ("lower", "lowerbound.py")):
                db = work / f"{name}.db"
                res = run_child([py, str(BENCH / script), "--urls", str(urls), "--db", str(db)])
                row[name] = res
                print(f"[{feeds}] {cycle}: {name} {res['wall_s']:.1f} s", flush=True)
            row["requests"] = dict(site.requests)
            for name in ("sanctions-watch", "naive", "lower"):
                r = row[name]
                got = r.get("articles_new", r.get("summary", {}).get("articles_new", 0))
                r["items_per_s"] = got / r["wall_s"] if r["wall_s"] > 0 else None
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------------ reporting


def machine(note: str) -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) // 1024

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_mib": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "load_average_before": os.getloadavg(),
        "note": note,
    }


def _f(value: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Cycles benchmark, {result['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_mib']} MiB RAM, Python {m['python']}; "
        f"commit {m['git_commit'][:10]}{' (with local changes)' if m['git_dirty'] else ''}; "
        f"load average before the run {', '.join(f'{x:.2f}' for x in m['load_average_before'])}.",
        f"Packages: {', '.join(f'{k} {v}' for k, v in m['packages'].items())}.",
        "",
        f"Note: {m['note']}" if m["note"] else "",
        "",
        "| feeds | cycle | new items | sanctions-watch | naive script | lower bound | sw / naive "
        "speed |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["cycles"]:
        cells = []
        for name in ("sanctions-watch", "naive", "lower"):
            r = row[name]
            cells.append(
                f"{r['wall_s']:.1f} s, {_f(r['items_per_s'], '{:.0f}')} items/s, "
                f"{r['cpu_s']:.1f} s CPU, {r['peak_rss_mib']:.0f} MiB"
            )
        ratio = row["naive"]["wall_s"] / row["sanctions-watch"]["wall_s"]
        lines.append(
            f"| {row['feeds']:,} | {row['cycle']} | {row['new_items']:,} | "
            + " | ".join(cells)
            + f" | {ratio:.2f}× |"
        )
    lines += [
        "",
        "sw / naive speed: the naive script's wall time over sanctions-watch's (above 1: faster).",
        "",
        "## sanctions-watch per stage (seconds; fetch, parse, normalise are thread-seconds: with "
        "parse processes, parse is the fetch threads' wait for them)",
        "",
        "| feeds | cycle | startup | model load | fetch | parse | normalise | dedupe | store "
        "| score | stories | render | send | new | flagged | alerts | sent | pending | latency "
        "p50 / p95 | stage walls: ingest / classify / alerts / deliver | cores busy: ingest / "
        "classify / alerts / deliver | peak RSS: main / largest worker |",
        "|---|---|" + "---|" * 20,
    ]
    for row in result["cycles"]:
        sw = row["sanctions-watch"]
        st, s, lat = sw["stages"], sw["summary"], sw["latency"]
        keys = ("startup", "model_load", "fetch", "parse", "normalise", "dedupe", "store")
        keys2 = ("score", "stories", "render", "send")
        lines.append(
            f"| {row['feeds']:,} | {row['cycle']} | "
            + " | ".join(f"{st[k]:.2f}" for k in keys + keys2)
            + f" | {s['articles_new']} | {s['flagged']} | {s['alerts_new']} | {s['alerts_sent']} "
            f"| {s['alerts_pending']} | {_f(lat['p50_s'])} / {_f(lat['p95_s'])} s | "
            + " / ".join(
                f"{sw['wall'].get(k, 0.0):.1f}"
                for k in ("ingest", "classify", "record_alerts", "deliver")
            )
            + " s | "
            + " / ".join(
                _f(sw.get("busy", {}).get(k), "{:.0%}")
                for k in ("ingest", "classify", "record_alerts", "deliver")
            )
            + f" | {_f(sw.get('rss_main_mib'), '{:.0f}')} / "
            f"{_f(sw.get('rss_workers_mib'), '{:.0f}')} MiB |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feeds", default="100,1000,5000", help="comma-separated feed counts")
    ap.add_argument("--quick", action="store_true", help="100 feeds only")
    ap.add_argument("--profile", type=int, help="cProfile sanctions-watch's cycles at this size")
    ap.add_argument("--out-dir", type=Path, default=BENCH / "results")
    ap.add_argument("--note", default="", help="a note on the machine, written with the results")
    ap.add_argument("--tag", default="", help="suffix for the result file names")
    args = ap.parse_args(argv)
    sizes = [100] if args.quick else [int(x) for x in args.feeds.split(",") if x.strip()]
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    result: dict[str, Any] = {"date": date, "machine": machine(args.note), "cycles": []}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with TimedSink() as sink, tempfile.TemporaryDirectory(prefix="sw-bench-") as tmp:
        for size in sizes:
            work = Path(tmp) / str(size)
            work.mkdir()
            result["cycles"] += run_size(size, work, sink, args.profile == size)
            if args.profile == size:
                for prof in work.glob("*.prof"):
                    dest = args.out_dir / prof.name
                    dest.write_bytes(prof.read_bytes())
    stem = f"cycles-{date}{'-' + args.tag if args.tag else ''}"
    (args.out_dir / f"{stem}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (args.out_dir / f"{stem}.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    print(f"wrote {args.out_dir / stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
