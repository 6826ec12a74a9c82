"""Hazards: the same feed ingested twice and by several processes at once; eight processes upserting
into one SQLite file; two sender processes on one outbox; an expired lease.

Processes are real (``multiprocessing`` with ``spawn``, each opening its own engine) and start
together behind a barrier, so their transactions overlap.
"""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hazard_workers import deliver_worker, ingest_worker, upsert_worker
from hazardkit import RECIPIENT, flag_all, message_ids_to
from helpers import NOW, sample_feeds
from sqlalchemy import func, select, text, update

from pipeline.devtools.mailsink import MailSink
from pipeline.jobs import Runtime, deliver, ingest, record_alerts
from pipeline.store.articles import sync_feeds
from pipeline.store.db import make_engine, make_sessionmaker, upgrade_database
from pipeline.store.schema import Article, Delivery, Feed, Sighting

SAMPLE_ENTRIES = 14
SAMPLE_ARTICLES = 13  # one entry is a syndicated copy of another feed's story: a sighting

pytestmark = pytest.mark.timeout(240)


def _spawn() -> Any:
    return multiprocessing.get_context("spawn")


def _run_workers(target: Any, args_list: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Start one process per args tuple behind a barrier; return what each put on the queue."""
    ctx = _spawn()
    barrier = ctx.Barrier(len(args_list))
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(barrier, results, *a)) for a in args_list]
    for p in procs:
        p.start()
    out = [results.get(timeout=200) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * len(procs), out
    return out


# ---------------------------------------------------------------------- the same feed, many times


def _counts(url: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        articles = s.scalar(select(func.count()).select_from(Article))
        keys = s.scalar(select(func.count(func.distinct(Article.key))))
        sightings = s.scalar(select(func.count()).select_from(Sighting))
    engine.dispose()
    return articles, keys, sightings


def test_same_feed_ingested_twice_and_by_three_processes_at_once(
    make_config, db_url: str, more_db_urls, feed_server, tmp_path: Path
) -> None:
    feeds = sample_feeds(feed_server.url)
    # Twice in a row, the second time without validators or the last body's hash (as after a
    # server that ignores conditional GET changed its bytes but not its entries): parsed again,
    # every entry a duplicate.
    rt = Runtime.open(make_config(database_url=db_url, feeds=feeds))
    first = ingest(rt, now=NOW, run_id="first")
    with rt.sessions.begin() as s:
        s.execute(update(Feed).values(etag=None, last_modified=None, body_sha256=None))
    second = ingest(rt, now=NOW + timedelta(minutes=15), run_id="second")
    rt.close()
    assert (first["articles_new"], first["entries_seen"]) == (SAMPLE_ARTICLES, SAMPLE_ENTRIES)
    assert (second["articles_new"], second["feeds_ok"], second["errors"]) == (0, 3, {})
    assert second["duplicates"] == SAMPLE_ENTRIES
    assert _counts(db_url) == (SAMPLE_ARTICLES, SAMPLE_ARTICLES, SAMPLE_ENTRIES)

    # Three processes at once on a fresh database: they race from the very first statement
    # (registering the feeds) to the last, and no integrity error may escape.
    (url,) = more_db_urls(1)
    config = make_config(database_url=url, feeds=feeds)
    engine = make_engine(url)
    upgrade_database(engine)  # schema first: a migration is a deploy step, not a race
    engine.dispose()
    out = _run_workers(ingest_worker, [(str(config.config_dir), f"p{i}") for i in range(3)])
    assert all("error" not in o for o in out), [o.get("error") for o in out]
    reports = [o["report"] for o in out]
    # A process that started after another committed may get 304s (the validators are stored).
    assert all(r["errors"] == {} for r in reports), reports
    assert all(r["feeds_ok"] + r["feeds_not_modified"] == 3 for r in reports), reports
    assert sum(r["articles_new"] for r in reports) == SAMPLE_ARTICLES
    assert _counts(url) == (SAMPLE_ARTICLES, SAMPLE_ARTICLES, SAMPLE_ENTRIES)


# ------------------------------------------------------------ 8 processes x 200 upserts on SQLite


@pytest.mark.slow
def test_eight_processes_times_200_upserts_on_one_sqlite_file(tmp_path: Path) -> None:
    from pipeline.config import FeedConfig

    url = f"sqlite:///{tmp_path / 'busy.db'}"
    engine = make_engine(url)
    upgrade_database(engine)
    with make_sessionmaker(engine).begin() as s:
        sync_feeds(s, [FeedConfig(id="a", name="A", url="https://a.example/rss")])
    out = _run_workers(upsert_worker, [(url, w, 200) for w in range(8)])
    errors = [e for o in out for e in o["errors"]]
    assert errors == [], errors[:5]
    assert not any("locked" in e for e in errors)
    with make_sessionmaker(engine)() as s:
        total = s.scalar(select(func.count()).select_from(Article))
        logged = s.execute(text("SELECT count(*) FROM fetch_log")).scalar()
        ok = s.execute(text("PRAGMA integrity_check")).scalar()
    engine.dispose()
    assert total == 100 + 8 * 100  # 100 shared even keys + 100 own odd keys per worker
    assert logged == 8 * 200
    assert ok == "ok"


# --------------------------------------------------------------- two sender processes, one outbox


def test_two_sender_processes_send_each_row_once_and_reclaim_an_expired_lease(
    make_config, db_url: str, feed_server, mail_sink: MailSink
) -> None:
    config = make_config(
        database_url=db_url,
        feeds=sample_feeds(feed_server.url),
        smtp_port=mail_sink.port,
        subscriptions=[{"id": "c", "recipients": [RECIPIENT, "analyst@example.org"]}],
        settings={"alerts": {"lease_seconds": 60}},
    )
    rt = Runtime.open(config)
    ingest(rt, now=NOW, run_id="seed")
    flag_all(rt.sessions)
    record_alerts(rt, now=NOW)
    with rt.sessions.begin() as s:
        rows = s.scalar(select(func.count()).select_from(Delivery))
        # One row was claimed by a worker that died: its lease runs until NOW + 30 s.
        dead = s.scalars(select(Delivery.id).order_by(Delivery.id)).first()
        s.execute(
            update(Delivery)
            .where(Delivery.id == dead)
            .values(status="sending", lease_owner="dead:1", lease_until=NOW + timedelta(seconds=30))
        )
    assert rows >= 10

    out = _run_workers(deliver_worker, [(str(config.config_dir), f"w{i}") for i in (1, 2)])
    assert all("error" not in o for o in out), [o.get("error") for o in out]
    assert sum(o["report"]["sent"] for o in out) == rows - 1  # the leased row is left alone
    received = message_ids_to(mail_sink.messages, RECIPIENT) + message_ids_to(
        mail_sink.messages, "analyst@example.org"
    )
    assert sorted(received.values()) == [1] * (rows - 1)

    # After the lease expires the row is reclaimed and sent, once, with its own Message-ID.
    assert deliver(rt, now=NOW + timedelta(seconds=10))["sent"] == 0
    assert deliver(rt, now=NOW + timedelta(seconds=31))["sent"] == 1
    with rt.sessions() as s:
        statuses = set(s.scalars(select(Delivery.status)))
        dead_row = s.get(Delivery, dead)
    rt.close()
    assert statuses == {"sent"}
    received = message_ids_to(mail_sink.messages, RECIPIENT) + message_ids_to(
        mail_sink.messages, "analyst@example.org"
    )
    assert sorted(received.values()) == [1] * rows
    assert dead_row.message_id in received
