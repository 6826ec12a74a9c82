"""Migration 0008 (story prints) up and down with rows present, SQLite and PostgreSQL: the table is
created empty (the next stories step fills it), prints go with their article (ON DELETE CASCADE), and
going down drops only the prints."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from builders import entry
from helpers import NOW
from sqlalchemy import inspect, text

from pipeline.config import FeedConfig
from pipeline.store.articles import upsert_entries
from pipeline.store.db import downgrade_database, make_engine, make_sessionmaker, upgrade_database
from pipeline.store.schema import Base

SIGNATURE = bytes(range(16)) * 64  # 128 uint64
FEEDS = [FeedConfig(id="a", name="A", url="https://a.example/rss")]
# Written with SQL, not the ORM: the ORM's Feed has columns later migrations add (0009).
FEED_ROW = (
    "INSERT INTO feeds (id, url, name, consecutive_failures) "
    "VALUES ('a', 'https://a.example/rss', 'A', 0)"
)


def test_0008_upgrade_and_downgrade_with_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade_database(engine, "0007")
    assert "story_prints" not in inspect(engine).get_table_names()
    factory = make_sessionmaker(engine)
    feed = FEEDS[0].id
    with (
        factory.begin() as s
    ):  # the feed as schema 0007 holds it, articles as the pipeline stores them
        s.execute(text(FEED_ROW))
        ids = upsert_entries(s, [entry(feed, "One"), entry(feed, "Two")], now=NOW).new_ids
    assert len(ids) == 2
    upgrade_database(engine, "0008")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM story_prints")).scalar() == 0
        for i in ids:
            conn.execute(
                text(
                    "INSERT INTO story_prints (article_id, revision, scheme, signature, anchors) "
                    "VALUES (:i, 1, 'x', :sig, '[]')"
                ),
                {"i": i, "sig": SIGNATURE},
            )
        conn.execute(text("DELETE FROM articles WHERE id = :i"), {"i": ids[1]})
        rows = conn.execute(text("SELECT article_id, signature FROM story_prints")).all()
        assert [(r[0], bytes(r[1])) for r in rows] == [(ids[0], SIGNATURE)]
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert [d for d in diff if "story_prints" in repr(d)] == []
    downgrade_database(engine, "0007")
    assert "story_prints" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM articles")).scalar() == 1
    upgrade_database(engine)
    assert "story_prints" in inspect(engine).get_table_names()
    engine.dispose()
