"""Hazard: migrations upgrade → downgrade → upgrade with rows present, SQLite and PostgreSQL.

A database filled by a real cycle (feeds, fetch log, articles, sightings, classifications, stories,
alerts, deliveries sent and pending, notices) goes down one revision at a time to the initial schema
and back up to head. The rows survive, ``alembic check`` finds the tables and the migrations in
agreement, and the pipeline carries on from where it was: nothing re-alerted, nothing sent twice,
the pending mail sent once.
"""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from alembic.script import ScriptDirectory
from hazardkit import RECIPIENT, flag_all, message_ids_to
from helpers import NOW, sample_feeds
from sqlalchemy import func, select, text

from pipeline.devtools.mailsink import MailSink
from pipeline.jobs import Runtime, deliver, ingest, record_alerts, run_once
from pipeline.store.db import _alembic_config, downgrade_database, upgrade_database
from pipeline.store.schema import Alert, Article, Classification, Delivery, Feed, FetchLog, Sighting

TABLES = (Feed, FetchLog, Article, Sighting, Classification, Alert, Delivery)


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(_alembic_config(None))  # type: ignore[arg-type]
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _snapshot(rt: Runtime) -> dict[str, object]:
    with rt.sessions() as s:
        counts = {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in TABLES}
        rows = {
            "articles": sorted(
                s.execute(select(Article.key, Article.title, Article.revision)).all()
            ),
            "deliveries": sorted(
                s.execute(select(Delivery.message_id, Delivery.status, Delivery.recipient)).all()
            ),
            "alerts": sorted(s.execute(select(Alert.article_id, Alert.severity)).all()),
        }
    return {"counts": counts, **rows}


def test_upgrade_downgrade_upgrade_keeps_the_rows_and_the_pipeline_state(
    make_config, db_url: str, feed_server, tmp_path
) -> None:
    revisions = _revisions()
    assert len(revisions) >= 2, revisions
    busy = {"analyst@example.org": "451 4.2.1 mailbox busy, try later"}
    with MailSink(tmp_path / "box", refuse=busy) as sink:
        config = make_config(
            database_url=db_url,
            feeds=sample_feeds(feed_server.url),
            smtp_port=sink.port,
            subscriptions=[{"id": "c", "recipients": [RECIPIENT, "analyst@example.org"]}],
        )
        rt = Runtime.open(config)
        ingest(rt, now=NOW, run_id="fill")
        flag_all(rt.sessions)
        record_alerts(rt, now=NOW)
        report = deliver(rt, now=NOW)  # one recipient's mails stay pending (451)
        assert report["sent"] == report["retried"] > 0
        first = list(sink.messages)
    before = _snapshot(rt)

    for revision in reversed(revisions[:-1]):  # down, one revision at a time, to the first
        downgrade_database(rt.engine, revision)
    with rt.engine.connect() as conn:
        kept = conn.execute(text("SELECT count(*) FROM articles")).scalar()
    assert kept == before["counts"]["articles"]
    upgrade_database(rt.engine)
    command.check(_alembic_config(rt.engine))  # raises if tables and migrations disagree
    assert _snapshot(rt) == before

    # The pipeline goes on: the pending mails are sent once, nothing is alerted or sent again.
    with MailSink(tmp_path / "box2", port=sink.port) as sink2:
        again = run_once(rt, now=NOW + timedelta(hours=1), run_id="after-migration")
        second = list(sink2.messages)
    rt.close()
    assert (again["alerts_new"], again["alerts_sent"]) == (0, report["retried"])
    for rcpt in (RECIPIENT, "analyst@example.org"):
        copies = message_ids_to(first + second, rcpt)
        assert len(copies) == report["sent"] and set(copies.values()) == {1}, rcpt
