"""Storage on real SQLite and PostgreSQL: dedup across feeds and runs, edits, migrations, concurrency."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from builders import entry
from helpers import NOW
from sqlalchemy import func, inspect, select

from pipeline.config import FeedConfig
from pipeline.store.articles import articles_to_classify, record_fetch, sync_feeds, upsert_entries
from pipeline.store.db import (
    downgrade_database,
    make_engine,
    make_sessionmaker,
    redact_db_url,
    upgrade_database,
)
from pipeline.store.schema import Article, Feed, FetchLog, Sighting

FEEDS = [
    FeedConfig(id="a", name="A", url="https://a.example/rss"),
    FeedConfig(id="b", name="B", url="https://b.example/rss"),
]


@pytest.fixture
def sessions(db_url: str):
    engine = make_engine(db_url)
    upgrade_database(engine)
    factory = make_sessionmaker(engine)
    with factory.begin() as s:
        sync_feeds(s, FEEDS)
    yield factory
    engine.dispose()


def count(factory, table) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(table))


def test_dedup_within_feed_across_feeds_and_runs(sessions) -> None:
    first = [
        entry("a", "One", url="https://x.example/1"),
        entry("a", "Two", url="https://x.example/2"),
    ]
    with sessions.begin() as s:
        r1 = upsert_entries(s, first, now=NOW)
    assert len(r1.new_ids) == 2 and r1.duplicates == 0
    # Same URL from another feed (tracking params differ), a syndicated copy with another URL, a re-run.
    second = [
        entry("b", "One", url="https://x.example/1?utm_source=b"),
        entry("b", "Two", url="https://mirror.example/two"),
        entry("b", "Three", url="https://x.example/3"),
    ]
    with sessions.begin() as s:
        r2 = upsert_entries(s, second, now=NOW)
    with sessions.begin() as s:
        r3 = upsert_entries(s, first, now=NOW)
    assert len(r2.new_ids) == 1 and r2.duplicates == 2
    assert r3.new_ids == () and r3.duplicates == 2
    assert count(sessions, Article) == 3
    with sessions() as s:
        feeds_of_one = s.scalars(
            select(Sighting.feed_id).join(Article).where(Article.url == "https://x.example/1")
        ).all()
    assert sorted(feeds_of_one) == ["a", "b"]


def test_edit_after_publication_bumps_revision(sessions) -> None:
    with sessions.begin() as s:
        (article_id,) = upsert_entries(
            s, [entry("a", "Draft", guid="g-1", summary="first text")], now=NOW
        ).new_ids
    edited = entry("a", "Draft, updated", guid="g-1", summary="first text, corrected")
    with sessions.begin() as s:
        r = upsert_entries(s, [edited], now=NOW + timedelta(minutes=5))
    assert r.updated_ids == (article_id,) and r.new_ids == ()
    with sessions() as s:
        a = s.get(Article, article_id)
        assert (a.revision, a.title) == (2, "Draft, updated")
        assert a.updated_at == NOW + timedelta(minutes=5)
        assert [x.id for x in articles_to_classify(s, "m1")] == [article_id]


def test_nul_and_surrogates_are_cleaned_before_storage(sessions) -> None:
    from pipeline.ingest.normalise import clean_text

    dirty = clean_text("Arms\x00 seized\ud800 at port")
    with sessions.begin() as s:
        upsert_entries(
            s,
            [entry("a", dirty, url="https://x.example/nul", summary=clean_text("x\x00y\udfff"))],
            now=NOW,
        )
    with sessions() as s:
        assert s.scalar(select(Article.title)) == "Arms seized at port"


def test_fetch_log_and_feed_state(sessions) -> None:
    with sessions.begin() as s:
        record_fetch(
            s,
            run_id="r1",
            feed_id="a",
            started_at=NOW,
            finished_at=NOW,
            outcome="ok",
            http_status=200,
            etag='"v1"',
            last_modified="Tue, 27 Feb 2024 08:10:00 GMT",
            articles_new=2,
        )
        record_fetch(
            s,
            run_id="r1",
            feed_id="b",
            started_at=NOW,
            finished_at=NOW,
            outcome="error",
            http_status=429,
            error="HTTP 429",
            next_fetch_after=NOW + timedelta(minutes=10),
        )
    with sessions() as s:
        a, b = s.get(Feed, "a"), s.get(Feed, "b")
        assert (a.etag, a.consecutive_failures, a.last_new_at) == ('"v1"', 0, NOW)
        assert (b.consecutive_failures, b.last_error, b.next_fetch_after) == (
            1,
            "HTTP 429",
            NOW + timedelta(minutes=10),
        )
        assert s.scalar(select(func.count()).select_from(FetchLog)) == 2


def test_feed_url_change_drops_validators(sessions) -> None:
    with sessions.begin() as s:
        record_fetch(
            s, run_id="r", feed_id="a", started_at=NOW, finished_at=NOW, outcome="ok", etag='"v1"'
        )
    with sessions.begin() as s:
        sync_feeds(s, [replace(FEEDS[0], url="https://a.example/new-rss"), FEEDS[1]])
    with sessions() as s:
        assert s.get(Feed, "a").etag is None


def test_migrations_down_and_up_keep_data(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade_database(engine)
    factory = make_sessionmaker(engine)
    with factory.begin() as s:
        sync_feeds(s, FEEDS)
        upsert_entries(s, [entry("a", "Kept", url="https://x.example/kept")], now=NOW)
    # 0001 is the initial schema: downgrading to base drops everything, so exercise head -> head-1 -> head
    # whenever there are later revisions, and base -> head on an empty database otherwise.
    heads = _revisions()
    if len(heads) > 1:
        downgrade_database(engine, heads[-2])
        upgrade_database(engine)
        with factory() as s:
            assert s.scalar(select(Article.title)) == "Kept"
    else:
        downgrade_database(engine, "base")
        assert "articles" not in inspect(engine).get_table_names()
        upgrade_database(engine)
    engine.dispose()


def _revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    from pipeline.store.db import MIGRATIONS, _alembic_config

    script = ScriptDirectory.from_config(_alembic_config(None))  # type: ignore[arg-type]
    assert script.dir == str(MIGRATIONS)
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_schema_matches_migrations_alembic_check(db_url: str) -> None:
    from alembic import command

    from pipeline.store.db import _alembic_config

    engine = make_engine(db_url)
    upgrade_database(engine)
    command.check(_alembic_config(engine))  # raises if the tables and the migrations disagree
    engine.dispose()


def test_redact_db_url_hides_password() -> None:
    assert "hunter2" not in redact_db_url("postgresql://sw:hunter2@db.example/sw")


# Eight processes upserting one SQLite file: tests/hazards/test_concurrency.py.


def test_cli_db_upgrade(tmp_path: Path, make_config) -> None:
    config = make_config()
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config.config_dir), "db", "upgrade"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "at head" in out.stdout
    engine = make_engine(config.database_url)
    assert "deliveries" in inspect(engine).get_table_names()
    engine.dispose()


def test_a_new_model_does_not_pick_up_what_another_model_scored(sessions) -> None:
    """History is re-scored by the rescore DAG only: after a promotion, classify takes the new and
    edited articles, not every article the previous model scored."""
    from pipeline.store.articles import add_classification

    with sessions.begin() as s:
        ids = upsert_entries(
            s, [entry("a", "Old", guid="g-1"), entry("a", "Also old", guid="g-2")], now=NOW
        ).new_ids
    with sessions.begin() as s:
        for article in articles_to_classify(s, "m1"):
            add_classification(
                s, article, model_version="m1", score=0.1, threshold=0.5, flagged=False,
                regimes=[], evidence={}, now=NOW,
            )  # fmt: skip
    with sessions() as s:
        assert articles_to_classify(s, "m2") == []
    edited = entry("a", "Old, corrected", guid="g-1", summary="new text")
    with sessions.begin() as s:
        upsert_entries(s, [edited], now=NOW + timedelta(minutes=5))
    with sessions() as s:
        assert [x.id for x in articles_to_classify(s, "m2")] == [ids[0]]


def _feed_state(factory) -> dict[str, tuple]:
    with factory() as s:
        return {
            f.id: (
                f.last_fetch_at,
                f.last_ok_at,
                f.next_fetch_after,
                f.consecutive_failures,
                f.last_error,
                f.etag,
                f.last_modified,
            )
            for f in s.scalars(select(Feed))
        }


def _logs(factory) -> list[tuple]:
    with factory() as s:
        return [
            (r.run_id, r.feed_id, r.outcome, r.http_status, r.bytes, r.entries_seen, r.error)
            for r in s.scalars(select(FetchLog).order_by(FetchLog.feed_id))
        ]


def test_many_not_modified_fetches_are_stored_as_one_by_one(db_url: str, tmp_path: Path) -> None:
    """record_not_modified (two statements for a whole quiet cycle) leaves the same feed state and
    fetch log as record_fetch called once a feed, on SQLite and PostgreSQL."""
    from pipeline.store.articles import NotModified, record_not_modified

    later = NOW + timedelta(hours=1)
    fetches = [
        NotModified("a", 304, '"v2"', None),  # new validator: replaces both
        NotModified("b", 200, None, None),  # the same body, no validators: keeps the stored ones
    ]
    states, logs = [], []
    for bulk in (False, True):
        engine = make_engine(db_url)
        if bulk:  # a fresh database for the second way
            downgrade_database(engine, "base")
        upgrade_database(engine)
        factory = make_sessionmaker(engine)
        with factory.begin() as s:
            sync_feeds(s, FEEDS)
            for feed_id in ("a", "b"):  # a failing past, to be cleared
                record_fetch(s, run_id="r0", feed_id=feed_id, started_at=NOW, finished_at=NOW,
                             outcome="error", error="HTTP 503", etag='"v1"', last_modified="Mon")  # fmt: skip
            s.get(Feed, "a").etag = s.get(Feed, "b").etag = '"v1"'
        with factory.begin() as s:
            if bulk:
                record_not_modified(s, fetches, run_id="r1", at=later)
            else:
                for f in fetches:
                    record_fetch(s, run_id="r1", feed_id=f.feed_id, started_at=later,
                                 finished_at=later, outcome="not_modified", http_status=f.http_status,
                                 etag=f.etag, last_modified=f.last_modified)  # fmt: skip
        states.append(_feed_state(factory))
        logs.append(_logs(factory))
        engine.dispose()
    assert states[0] == states[1]
    assert logs[0] == logs[1]
    state = states[1]
    assert state["a"][3:] == (0, None, '"v2"', None) and state["b"][3:] == (0, None, '"v1"', None)
    assert state["a"][0].replace(tzinfo=None) == later.replace(tzinfo=None)
    assert [row[:4] for row in logs[1] if row[0] == "r1"] == [
        ("r1", "a", "not_modified", 304),
        ("r1", "b", "not_modified", 200),
    ]


def test_a_not_modified_fetch_of_an_unknown_feed_is_refused(sessions) -> None:
    from sqlalchemy.exc import IntegrityError

    from pipeline.store.articles import NotModified, record_not_modified

    with pytest.raises(IntegrityError), sessions.begin() as s:
        record_not_modified(s, [NotModified("gone", 304, None, None)], run_id="r", at=NOW)
    assert count(sessions, FetchLog) == 0


def test_many_verdicts_are_stored_as_one_by_one(sessions) -> None:
    """add_classifications (one multi-row INSERT) stores exactly the rows add_classification adds
    one by one: same columns, JSON evidence and regimes intact, on SQLite and PostgreSQL."""
    from pipeline.store.articles import (
        ArticleRevision,
        Verdict,
        add_classification,
        add_classifications,
    )
    from pipeline.store.schema import Classification

    with sessions.begin() as s:
        ids = upsert_entries(
            s, [entry("a", f"Item {n}", guid=f"v-{n}") for n in range(4)], now=NOW
        ).new_ids
    verdicts = [
        Verdict(
            ArticleRevision(article_id, 1),
            score=0.1 + n / 10,
            flagged=n % 2 == 1,
            regimes=["dprk", "libya"][: n % 3],
            evidence={"sentences": [f"sentence {n} — «quoted»"], "terms": ["t"], "n": n},
        )
        for n, article_id in enumerate(ids)
    ]
    with sessions.begin() as s:
        add_classifications(s, verdicts, model_version="bulk", threshold=0.4, now=NOW)
        add_classifications(s, [], model_version="bulk", threshold=0.4, now=NOW)  # nothing
        for v in verdicts:
            add_classification(
                s, v.article, model_version="single", score=v.score, threshold=0.4,
                flagged=v.flagged, regimes=v.regimes, evidence=v.evidence, now=NOW,
            )  # fmt: skip

    def rows(version: str) -> list[tuple]:
        with sessions() as s:
            return [
                (c.article_id, c.revision, c.score, c.threshold, c.flagged, c.regimes, c.evidence,
                 c.classified_at.replace(tzinfo=None))
                for c in s.scalars(
                    select(Classification)
                    .where(Classification.model_version == version)
                    .order_by(Classification.article_id)
                )
            ]  # fmt: skip

    assert rows("bulk") == rows("single") and len(rows("bulk")) == 4
    assert rows("bulk")[1][4] is True and rows("bulk")[2][5] == ["dprk", "libya"]
