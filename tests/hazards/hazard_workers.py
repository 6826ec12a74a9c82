"""Worker processes for test_concurrency.py (started with ``spawn`` behind a barrier), kept apart
so that a child imports only what it runs: the storage layer for the upserts (importing the test
module would load pipeline.jobs, and with it scikit-learn), the jobs for ingest and delivery."""

from __future__ import annotations

import traceback
from typing import Any

from hazardkit import entry
from helpers import NOW

from pipeline.store.articles import record_fetch, upsert_entries
from pipeline.store.db import make_engine, make_sessionmaker


def upsert_worker(barrier: Any, results: Any, url: str, worker: int, n: int) -> None:
    errors: list[str] = []
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    barrier.wait(timeout=60)
    for i in range(n):
        key = str(i) if i % 2 == 0 else f"{worker}-{i}"  # half shared by every worker, half own
        try:
            with factory.begin() as s:  # one transaction per upsert, as ingest does per feed
                upsert_entries(s, [entry("a", key)], now=NOW)
                record_fetch(
                    s,
                    run_id=f"w{worker}",
                    feed_id="a",
                    started_at=NOW,
                    finished_at=NOW,
                    outcome="ok",
                    articles_new=1,
                )
        except Exception as err:  # reported to the test, which fails on any
            errors.append(f"{type(err).__name__}: {err}")
    engine.dispose()
    results.put({"worker": worker, "errors": errors})


def ingest_worker(barrier: Any, results: Any, config_dir: str, name: str) -> None:
    try:
        from pipeline.config import load_config
        from pipeline.jobs import Runtime, ingest

        config = load_config(config_dir, environ={})
        rt = Runtime.open(config, migrate=False)
        barrier.wait(timeout=60)
        report = ingest(rt, now=NOW, run_id=name)
        rt.close()
        results.put({"name": name, "report": report})
    except BaseException:
        results.put({"name": name, "error": traceback.format_exc()})


def deliver_worker(barrier: Any, results: Any, config_dir: str, owner: str) -> None:
    try:
        from pipeline.config import load_config
        from pipeline.jobs import Runtime, deliver

        rt = Runtime.open(load_config(config_dir, environ={}), migrate=False)
        barrier.wait(timeout=60)  # lease owners differ: host:pid
        report = deliver(rt, now=NOW)
        rt.close()
        results.put({"owner": owner, "report": report})
    except BaseException:
        results.put({"owner": owner, "error": traceback.format_exc()})
