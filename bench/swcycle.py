"""One sanctions-watch cycle for the benchmark: ``pipeline.jobs.run_once`` in this process, timed
per stage (run by bench/cycles.py in a subprocess, so its CPU and peak RSS are its own).

    python bench/swcycle.py --config DIR --run-id ID [--profile out.prof]   # prints one JSON object

Stage figures come from wrapping the functions ``run_once`` calls (the wrappers add well under 1 %):

- ``startup``: ``Runtime.open`` (engine, Alembic check/upgrade); ``model_load``: loading the model;
- ``fetch``: ``fetch_feed`` (conditional GET and body), ``parse``: parsing a body (the
  ``ParsePool`` call) minus ``normalise`` (the per-entry HTML→text, links, keys, hashes and language
  detection inside it); these run in the ingest threads, so they are *thread-seconds* (summed over
  the threads). When the run parses in worker processes (``calls.parse_processes`` > 1) the
  normalisation happens there and ``parse`` includes it (``normalise`` reads 0);
- ``dedupe``: ``upsert_entries`` minus its inserts (the key and content-hash look-ups and the
  decisions); ``store``: the inserts of articles and sightings plus ``record_fetch``;
- ``score``: ``TextModel.score_docs`` (classify minus score is reading work and writing results);
- ``stories``: ``record_story_alerts`` (grouping, alerts, outbox rows);
- ``render``: building each delivery's message (``outbox._prepare``); ``send``: ``SmtpSender.send``.

Each stage also reports ``calls``; the stage functions' wall times (``ingest``, ``classify``,
``record_alerts``, ``deliver``, ``check_health``) are in ``wall``, and in ``busy`` how busy the whole
machine's cores were during each of them (``/proc/stat``: 1.0 is every core busy the whole stage; it
counts every process, the benchmark's own feed server and mail sink included, so read it on an
otherwise idle machine).

Worker processes (parse and scoring pools) start from multiprocessing's forkserver, whose children
are not this process's children: before exiting, the forkserver is stopped and waited for, so that the
CPU and peak RSS ``wait4`` reports to bench/cycles.py include the workers (Python 3.11 leaves the
forkserver running on exit, and its workers' usage was lost from these figures before Dec 7).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot, from the first line of /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _stop_forkserver() -> None:
    """Stop multiprocessing's forkserver and wait for it (see the module docstring)."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if stop is not None:
        stop()


class Clock:
    """Seconds and calls per stage, summed over threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.busy: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.lock = threading.Lock()

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                with self.lock:
                    self.seconds[stage] += dt
                    self.calls[stage] += 1

        return timed

    def patch(self, owner: Any, name: str, stage: str) -> None:
        setattr(owner, name, self.wrap(stage, getattr(owner, name)))

    def patch_stage(self, owner: Any, name: str) -> None:
        """Like :meth:`patch` for a whole stage (``wall.<name>``), also noting how busy the
        machine's cores were while it ran."""
        timed = self.wrap(f"wall.{name}", getattr(owner, name))

        @functools.wraps(timed)
        def measured(*args: Any, **kwargs: Any) -> Any:
            b0, t0 = _machine_busy()
            try:
                return timed(*args, **kwargs)
            finally:
                b1, t1 = _machine_busy()
                with self.lock:
                    self.busy[name][0] += b1 - b0
                    self.busy[name][1] += t1 - t0

        setattr(owner, name, measured)


def instrument(clock: Clock) -> None:
    import pipeline.deliver.outbox as outbox
    import pipeline.ingest.cycle as ingest_cycle
    import pipeline.ingest.parse as parse
    import pipeline.jobs as jobs
    import pipeline.runtime as runtime
    import pipeline.store.articles as articles
    from pipeline.classify.model import TextModel
    from pipeline.deliver.mail import SmtpSender

    # Each name is patched where the code that calls it looks it up: the ingest stage in
    # pipeline.ingest.cycle, the model's loading in pipeline.runtime, the rest in pipeline.jobs.
    clock.patch(ingest_cycle, "fetch_feed", "fetch")
    import pipeline.ingest.parsepool as parsepool

    clock.patch(parsepool.ParsePool, "__call__", "_parse_total")
    chosen = ingest_cycle.parse_processes

    def processes(setting: int, due: int) -> int:
        clock.calls["parse_processes"] = n = chosen(setting, due)
        return n

    ingest_cycle.parse_processes = processes  # type: ignore[assignment]
    for name in ("html_to_text", "_entry_text", "_entry_link", "clean_text", "content_hash"):
        clock.patch(parse, name, "_normalise")
    for name in ("article_key", "detect_language"):
        clock.patch(parse, name, "_normalise")
    clock.patch(ingest_cycle, "upsert_entries", "_upsert_total")
    clock.patch(articles, "insert_ignore", "_inserts")
    clock.patch(ingest_cycle, "record_fetch", "_record_fetch")
    clock.patch(runtime, "load_active", "model_load")
    clock.patch(TextModel, "score_docs", "score")
    clock.patch(jobs, "record_story_alerts", "stories")
    clock.patch(outbox, "_prepare", "render")
    clock.patch(SmtpSender, "send", "send")
    for name in ("ingest", "classify", "record_alerts", "deliver", "check_health"):
        clock.patch_stage(jobs, name)


def stages(clock: Clock) -> dict[str, Any]:
    s = clock.seconds
    # html_to_text calls clean_text: nested normalise calls are counted twice; the nested share is
    # small (clean_text on already-short strings), and parse is what is left of parse_feed.
    normalise = s["_normalise"]
    out = {
        "startup": s["startup"],
        "model_load": s["model_load"],
        "fetch": s["fetch"],
        "parse": max(0.0, s["_parse_total"] - normalise),
        "normalise": normalise,
        "dedupe": max(0.0, s["_upsert_total"] - s["_inserts"]),
        "store": s["_inserts"] + s["_record_fetch"],
        "score": s["score"],
        "stories": s["stories"],
        "render": s["render"],
        "send": s["send"],
    }
    walls = {k.split(".", 1)[1]: v for k, v in s.items() if k.startswith("wall.")}
    busy = {k: round(b / t, 3) for k, (b, t) in clock.busy.items() if t > 0}
    return {"stages": out, "wall": walls, "busy": busy, "calls": dict(clock.calls)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--profile", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    from pipeline.config import load_config
    from pipeline.jobs import Runtime, run_once

    clock = Clock()
    instrument(clock)
    config = load_config(args.config)
    imports = time.perf_counter() - t0
    prof = cProfile.Profile() if args.profile else None
    if prof is not None:
        prof.enable()
    t1 = time.perf_counter()
    b0, j0 = _machine_busy()
    with Runtime.open(config) as rt:
        clock.seconds["startup"] = time.perf_counter() - t1
        summary = run_once(rt, now=datetime.now(UTC), run_id=args.run_id)
    b1, j1 = _machine_busy()
    if prof is not None:
        prof.disable()
        prof.dump_stats(str(args.profile))
    _stop_forkserver()
    import resource

    out = {
        "summary": summary.as_dict(),
        "imports_s": imports,
        "wall_s": time.perf_counter() - t0,
        "busy_run": round((b1 - b0) / (j1 - j0), 3) if j1 > j0 else None,
        # Peak RSS (MiB) of this process, and of the largest worker (parse or scoring) it had.
        "rss_main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_workers_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        **stages(clock),
    }
    out["summary"].pop("errors", None)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
