"""Parsing in worker processes (pipeline/ingest/parsepool.py): the same entries as in a thread, the
same errors, a dead worker failing only its feed, and an ingest run over enough feeds to use them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import NOW, SAMPLE_FEEDS
from sqlalchemy import func, select

from pipeline.devtools.feedserver import serve_directory
from pipeline.errors import FeedParseError
from pipeline.ingest.parse import ParseBudget, parse_feed
from pipeline.ingest.parsepool import MIN_FEEDS_PER_PROCESS, ParsePool, parse_processes
from pipeline.jobs import Runtime, ingest
from pipeline.store.schema import Article, Sighting

WIRE = (SAMPLE_FEEDS / "world-wire.xml").read_bytes()


def test_processes_follow_the_setting_and_the_work() -> None:
    assert parse_processes(2, 10) == 1  # too few feeds to repay a process
    assert parse_processes(2, 2 * MIN_FEEDS_PER_PROCESS) == 2
    assert parse_processes(1, 10_000) == 1
    assert parse_processes(0, 10_000) == (os.cpu_count() or 1)
    assert parse_processes(3, 2 * MIN_FEEDS_PER_PROCESS) == 2


def test_pool_parses_like_parse_feed_and_holds_the_budget() -> None:
    budget = ParseBudget(16 * 1024 * 1024)
    with ParsePool(2, budget) as pool:
        got = pool(WIRE, feed_id="w", now=NOW, language="en")
        assert pool._pool is not None  # it really ran in a worker process
    want = parse_feed(WIRE, feed_id="w", now=NOW, language="en")
    assert got == want and len(got.entries) > 3
    assert budget.peak == len(WIRE)


def _parse_in_a_daemon(queue) -> None:  # pragma: no cover - runs in a child process
    with ParsePool(2) as pool:
        parsed = pool(WIRE, feed_id="w", now=NOW, language="en")
        queue.put((pool.processes, pool._pool is None, len(parsed.entries)))


def test_a_daemonic_process_parses_in_its_threads() -> None:
    """A Celery prefork child (or any daemonic process) may not start processes: the pool parses in
    the calling thread rather than failing every feed."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_parse_in_a_daemon, args=(queue,), daemon=True)
    child.start()
    processes, no_workers, entries = queue.get(timeout=120)
    child.join(30)
    assert (processes, no_workers) == (1, True)
    assert entries == len(parse_feed(WIRE, feed_id="w", now=NOW, language="en").entries) > 3


def test_refused_document_raises_the_same_error_from_a_worker() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><rss><channel></channel></rss>'
    with ParsePool(2) as pool, pytest.raises(FeedParseError) as remote:
        pool(bomb, feed_id="b", now=NOW)
    with pytest.raises(FeedParseError) as local:
        parse_feed(bomb, feed_id="b", now=NOW)
    assert str(remote.value) == str(local.value)


def test_dead_worker_fails_its_feed_and_the_next_feed_parses() -> None:
    with ParsePool(2) as pool:
        pool(WIRE, feed_id="w", now=NOW)
        executor = pool._executor()
        with pytest.raises(Exception):  # noqa: B017 - the worker exits: the pool is broken
            executor.submit(os._exit, 3).result()
        with pytest.raises(FeedParseError, match="parser process died"):
            pool(WIRE, feed_id="w", now=NOW)
        assert len(pool(WIRE, feed_id="w", now=NOW).entries) > 3  # a new pool serves the next


def _feeds(folder: Path, count: int) -> list[dict[str, str]]:
    text = WIRE.decode()
    for n in range(count):  # the same stories under distinct links: new articles per feed
        (folder / f"f{n}.xml").write_text(text.replace("https://", f"https://f{n}.", -1))
    return [{"id": f"f{n}", "url": f"/f{n}.xml"} for n in range(count)]


@pytest.mark.slow
def test_ingest_in_worker_processes_stores_what_threads_store(make_config, tmp_path: Path) -> None:
    folder = tmp_path / "feeds"
    folder.mkdir()
    count = 2 * MIN_FEEDS_PER_PROCESS
    feeds = _feeds(folder, count)
    results = []
    with serve_directory(folder) as server:
        for processes in (2, 1):
            cfg = make_config(
                database_url=f"sqlite:///{tmp_path / f'p{processes}.db'}",
                feeds=[{**f, "url": server.url + f["url"]} for f in feeds],
                settings={"fetch": {"parse_processes": processes}},
            )
            with Runtime.open(cfg) as rt:
                report = ingest(rt, now=NOW, run_id=f"p{processes}")
                with rt.sessions() as s:
                    articles = s.scalar(select(func.count()).select_from(Article))
                    sightings = s.scalar(select(func.count()).select_from(Sighting))
            results.append((report.feeds_ok, report.articles_new, articles, sightings))
    assert results[0] == results[1]
    assert results[0][0] == count and results[0][1] > 3 and results[0][3] >= count
