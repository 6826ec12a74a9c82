"""Migration 0009 (feed entry prints) up and down with rows present, SQLite and PostgreSQL: the column
is added empty (a feed's next successful parse fills it), matches the ORM, and going down drops only
it."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from pipeline.store.db import downgrade_database, make_engine, upgrade_database
from pipeline.store.schema import Base

FEED_ROW = (
    "INSERT INTO feeds (id, url, name, consecutive_failures, body_sha256) "
    "VALUES ('a', 'https://a.example/rss', 'A', 0, 'abc')"
)


def _columns(engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("feeds")}


def test_0009_upgrade_and_downgrade_with_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade_database(engine, "0008")
    assert "entry_prints" not in _columns(engine)
    with engine.begin() as conn:
        conn.execute(text(FEED_ROW))
    upgrade_database(engine, "0009")
    with engine.begin() as conn:
        row = conn.execute(text("SELECT body_sha256, entry_prints FROM feeds")).one()
        assert tuple(row) == ("abc", None)
        conn.execute(text("UPDATE feeds SET entry_prints = :p"), {"p": "p1 " + "0" * 16})
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert [d for d in diff if "feeds" in repr(d)] == []
    downgrade_database(engine, "0008")
    assert "entry_prints" not in _columns(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT body_sha256 FROM feeds")).scalar() == "abc"
    upgrade_database(engine)
    assert "entry_prints" in _columns(engine)
    engine.dispose()
