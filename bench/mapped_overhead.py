"""What one mapped ``ingest_feeds`` instance costs on top of its work (docs/operations.md, "Why 25").

    .venv/bin/python bench/mapped_overhead.py [--batch 1 3 5] [--runs 2]

For each batch size: a fresh Airflow home and SQLite database, the sample feeds on a loopback server
plus a 404 feed and a refused feed, the mail sink, then ``runs`` runs of the DAG through
``dag.test()`` in a subprocess (as tests/dags/test_dag.py does). From each run's output, per
``ingest_feeds`` instance: time from "[DAG TEST] starting" to "end task", minus the time inside
``pipeline.jobs.ingest`` (from the task's first log line to the ingest summary line). Prints the
overhead per instance of the last run (the first also migrates both databases).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from helpers import SAMPLE_FEEDS, sample_feeds, write_config  # noqa: E402

from pipeline.devtools.feedserver import serve_directory  # noqa: E402
from pipeline.devtools.mailsink import MailSink  # noqa: E402

RUN = """
import importlib.util
spec = importlib.util.spec_from_file_location("dagmod", {dag!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.ingest_dag().test()
"""


def _overhead(output: str) -> tuple[int, float, float]:
    """(instances, total seconds, seconds of ingest work) of ingest_feeds in one run's output."""
    rows: list[dict[str, datetime]] = []
    cur: dict[str, datetime] | None = None
    for line in output.splitlines():
        at = line[:26]
        if "[DAG TEST] starting task_id=ingest_feeds" in line:
            cur = {"start": datetime.fromisoformat(at)}
        elif cur is not None and "::endgroup::" in line and "work0" not in cur:
            cur["work0"] = datetime.fromisoformat(at)
        elif cur is not None and re.search(r"\] ingest .*: \d+ ok", line):
            cur["work1"] = datetime.fromisoformat(at)
        elif cur is not None and "[DAG TEST] end task" in line:
            cur["end"] = datetime.fromisoformat(at)
            rows.append(cur)
            cur = None
    total = sum((r["end"] - r["start"]).total_seconds() for r in rows)
    work = sum((r["work1"] - r["work0"]).total_seconds() for r in rows)
    return len(rows), total, work


def measure(batch: int, runs: int, tmp: Path) -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead = probe.getsockname()[1]
    probe.close()
    with serve_directory(SAMPLE_FEEDS) as server, MailSink(tmp / "outbox") as sink:
        feeds = [
            *sample_feeds(server.url),
            {"id": "gone", "url": f"{server.url}/no-such-feed.xml"},
            {"id": "refused", "url": f"http://127.0.0.1:{dead}/feed.xml"},
        ]
        cfg = write_config(
            tmp / "config",
            database_url=f"sqlite:///{tmp / 'sw.db'}",
            feeds=feeds,
            smtp_port=sink.port,
            settings={"health": {"feed_batch_size": batch}},
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            AIRFLOW_HOME=str(tmp / "airflow"),
            AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "dags")]),  # as Airflow does
            SANCTIONS_WATCH_CONFIG=str(cfg),
        )
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        code = RUN.format(dag=str(ROOT / "dags" / "sanctions_watch.py"))
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
            )
        n, total, work = _overhead(out.stdout + out.stderr)
    return (
        f"batch {batch}: {n} instances, {total:.2f} s in all, {work:.2f} s of ingest work, "
        f"overhead {(total - work) / max(n, 1):.2f} s per instance"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 3, 5])
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    for batch in args.batch:
        with tempfile.TemporaryDirectory() as tmp:
            print(measure(batch, args.runs, Path(tmp)))


if __name__ == "__main__":
    main()
