"""Hazards: a worker killed at a crash point, then re-run; retries, clears and backfills of a run.

The pipeline runs as ``sanctions-watch run-once`` in a subprocess with ``SANCTIONS_WATCH_CRASH_AT``
naming a point of :mod:`pipeline.faults` (the process ``os._exit``\\ s there: no cleanup, no commit),
against the real loopback feed server and the real SMTP sink; then it runs again without the
variable once the crashed worker's lease has expired (``alerts.lease_seconds: 5``), and the mails
are counted per Message-ID:

==========================  ==========================================================
killed                      after the re-run, per outbox row
==========================  ==========================================================
``deliver.before_send``     exactly 1 mail
``deliver.after_send``      the row being sent: 2 copies with the same Message-ID; others 1
``deliver.after_commit``    exactly 1 mail
``ingest.mid_batch``        nothing of the feed committed; integrity checks pass; the re-run
                            ingests everything and delivers 1 mail per alert
==========================  ==========================================================

Never 0: every outbox row ends ``sent`` and its Message-ID reached the recipient. Every point runs on
SQLite; on PostgreSQL the two whose outcome rests most on the backend (``ingest.mid_batch`` and
``deliver.after_send``). Each crash point gets its own pipeline (database, SMTP sink, config), and
the pipelines run side by side.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hazardkit import RECIPIENT, finish_cli, message_ids_to, start_cli
from helpers import NOW, sample_feeds, write_config
from sqlalchemy import func, select, text

from pipeline.devtools.mailsink import MailSink
from pipeline.jobs import Runtime, deliver, ingest, record_alerts, run_once
from pipeline.store.db import make_engine, make_sessionmaker
from pipeline.store.schema import Alert, Article, Delivery, Feed, FetchLog, Sighting, Story

LEASE = 5
SAMPLE_ARTICLES = 13  # the bundled sample feeds: 14 entries, one syndicated copy
# How many stories the active model flags in them is the classifier's business (6 when written):
# the tests count the outbox rows instead of assuming a number.

pytestmark = pytest.mark.timeout(180)


def _deliveries(url: str) -> list[Delivery]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            return list(s.scalars(select(Delivery).order_by(Delivery.id)))
    finally:
        engine.dispose()


def _wait_for_leases(url: str) -> None:
    """Sleep until every lease a killed worker left behind has expired (wall clock)."""
    leases = [d.lease_until for d in _deliveries(url) if d.status == "sending" and d.lease_until]
    if leases:
        delay = (max(leases) - datetime.now(UTC)).total_seconds() + 0.3
        time.sleep(max(0.0, delay))


def _summary(out) -> dict:
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


# Crash point -> mails the recipient has when the worker dies (then: copies of the row being sent).
POINTS = {
    "ingest.mid_batch": (0, 0),
    "deliver.before_send": (0, 0),
    "deliver.after_send": (1, 1),
    "deliver.after_commit": (1, 0),
}


@dataclass
class Scenario:
    point: str
    url: str
    config_dir: Path
    sink: MailSink
    sent_before: Counter[str] = field(default_factory=Counter)


def test_worker_killed_at_each_crash_point_then_rerun(
    db_url: str, more_db_urls, feed_server, tmp_path: Path
) -> None:
    """Every crash point, each in its own pipeline (database, SMTP sink, config), the pipelines
    run side by side to keep the suite fast."""
    # Every point on SQLite; on PostgreSQL the two whose outcome rests most on the backend's
    # transactions (a killed transaction, a commit lost after the SMTP reply), to keep it fast.
    points = (
        list(POINTS) if db_url.startswith("sqlite") else ["ingest.mid_batch", "deliver.after_send"]
    )
    urls = [db_url, *more_db_urls(len(points) - 1)]
    with ExitStack() as stack:
        scenarios = []
        for point, url in zip(points, urls, strict=True):
            folder = tmp_path / point
            sink = stack.enter_context(MailSink(folder / "received"))
            config_dir = write_config(
                folder / "config",
                database_url=url,
                feeds=sample_feeds(feed_server.url),
                smtp_port=sink.port,
                subscriptions=[{"id": "compliance", "recipients": [RECIPIENT]}],
                settings={"alerts": {"lease_seconds": LEASE, "backoff_base_seconds": 1}},
            )
            scenarios.append(Scenario(point, url, config_dir, sink))

        procs = [start_cli(s.config_dir, crash_at=s.point) for s in scenarios]
        for s, proc in zip(scenarios, procs, strict=True):
            crashed = finish_cli(proc)
            assert crashed.returncode == 70, (s.point, crashed.returncode, crashed.stderr[-3000:])
            s.sent_before = message_ids_to(s.sink.messages)
            assert sum(s.sent_before.values()) == POINTS[s.point][0], s.point
            if s.point == "ingest.mid_batch":
                _nothing_of_the_first_feed(s.url)
            _integrity(s.url)

        for s in scenarios:
            _wait_for_leases(s.url)
        procs = [start_cli(s.config_dir) for s in scenarios]
        for s, proc in zip(scenarios, procs, strict=True):
            summary = _summary(finish_cli(proc))
            _integrity(s.url)
            rows = _deliveries(s.url)
            received = message_ids_to(s.sink.messages)
            assert len(rows) >= 3, s.point  # several stories, so "the others" mean something
            if s.point == "ingest.mid_batch":  # the re-run completes the interrupted ingest
                assert (summary["feeds_ok"], summary["feeds_failed"]) == (3, 0)
                assert summary["articles_new"] == SAMPLE_ARTICLES
                assert summary["alerts_sent"] == len(rows)
            else:
                assert summary["alerts_new"] == 0, s.point  # recorded before the crash, once
            assert all(r.status == "sent" for r in rows), (
                s.point,
                [(r.id, r.status, r.last_error) for r in rows],
            )
            # Never 0: every outbox row's Message-ID reached the recipient; nothing else did.
            assert set(received) == {r.message_id for r in rows}, s.point
            copies = sorted(received.values(), reverse=True)
            if POINTS[s.point][1]:
                # Killed between the SMTP reply and the commit: that row went again, same Message-ID.
                assert copies == [2] + [1] * (len(rows) - 1), s.point
                assert received[next(iter(s.sent_before))] == 2
            else:
                assert copies == [1] * len(rows), (s.point, copies)


def _integrity(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
                assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
            # Referential checks that hold on both backends.
            orphans = conn.execute(
                text(
                    "SELECT count(*) FROM sightings s LEFT JOIN articles a ON a.id = s.article_id "
                    "WHERE a.id IS NULL"
                )
            ).scalar()
            unknown_feed = conn.execute(
                text(
                    "SELECT count(*) FROM articles a LEFT JOIN feeds f ON f.id = a.feed_id "
                    "WHERE f.id IS NULL"
                )
            ).scalar()
            assert (orphans, unknown_feed) == (0, 0)
    finally:
        engine.dispose()


def _nothing_of_the_first_feed(url: str) -> None:
    """After a kill inside the first feed's transaction: none of its rows (nor anything) stored."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            per_feed = dict(
                s.execute(select(Article.feed_id, func.count()).group_by(Article.feed_id)).all()
            )
            assert per_feed == {}
            assert s.scalar(select(func.count()).select_from(Sighting)) == 0
            assert s.scalar(select(func.count()).select_from(FetchLog)) == 0
            assert {f.last_fetch_at for f in s.scalars(select(Feed))} == {None}
    finally:
        engine.dispose()


# ---------------------------------------------------------------- retry, clear and backfill of a run


def test_retry_clear_and_backfill_send_one_mail_per_story(
    make_config, sqlite_url: str, feed_server, mail_sink: MailSink
) -> None:
    config = make_config(
        database_url=sqlite_url,
        feeds=sample_feeds(feed_server.url),
        smtp_port=mail_sink.port,
        subscriptions=[{"id": "compliance", "recipients": [RECIPIENT]}],
    )
    rt = Runtime.open(config)
    try:
        run_id = f"scheduled__{NOW.isoformat()}"
        first = run_once(rt, now=NOW, run_id=run_id)
        assert first["alerts_sent"] >= 3
        # Task retries of the same run: every stage again, in order, with the same logical date.
        ingest(rt, now=NOW, run_id=run_id)
        record_alerts(rt, now=NOW)
        record_alerts(rt, now=NOW)
        deliver(rt, now=NOW)
        # "Clear" in the UI: the whole run again, same run id and logical date.
        cleared = run_once(rt, now=NOW, run_id=run_id)
        # A backfill over the previous days (older logical dates, new run ids).
        backfills = [
            run_once(rt, now=NOW - timedelta(days=d), run_id=f"backfill__{d}") for d in (2, 1)
        ]
        later = run_once(rt, now=NOW + timedelta(hours=1), run_id="scheduled__later")
        for again in (cleared, *backfills, later):
            assert (again["alerts_new"], again["alerts_sent"]) == (0, 0)
        with rt.sessions() as s:
            stories = s.scalar(select(func.count(func.distinct(Alert.story_id))))
            alerts = s.scalar(select(func.count()).select_from(Alert))
            assert s.scalar(select(func.count()).select_from(Story)) == stories
    finally:
        rt.close()
    received = message_ids_to(mail_sink.messages)
    assert stories == alerts == first["alerts_sent"]
    assert sum(received.values()) == len(received) == stories
