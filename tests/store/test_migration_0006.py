"""Migration 0006 (delivery latency) up and down with rows present, SQLite and PostgreSQL: existing
deliveries keep NULL figures (their latency is still derivable from ``sent_at``), new figures are
stored, and going down loses no delivery."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from helpers import NOW
from sqlalchemy import inspect, text

from pipeline.store.db import downgrade_database, make_engine, upgrade_database
from pipeline.store.schema import Base

T = NOW.replace(tzinfo=None)
COLUMNS = {"latency_published_s", "latency_first_seen_s"}


def _columns(engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("deliveries")}


def test_0006_upgrade_and_downgrade_with_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade_database(engine, "0005")
    assert not COLUMNS & _columns(engine)
    with engine.begin() as conn:
        for i in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO deliveries (id, subscription_id, channel, recipient, status, attempts, "
                    "next_attempt_at, message_id, created_at, sent_at) VALUES (:i, 's', 'email', "
                    ":r, 'sent', 1, :now, :m, :now, :now)"
                ),
                {"i": i, "r": f"r{i}@example.org", "m": f"<m{i}@x>", "now": T},
            )
    upgrade_database(engine, "0006")
    assert _columns(engine) >= COLUMNS
    with engine.begin() as conn:
        rows = conn.execute(
            text("SELECT latency_published_s, latency_first_seen_s FROM deliveries ORDER BY id")
        ).all()
        assert [tuple(r) for r in rows] == [(None, None), (None, None)]
        conn.execute(
            text(
                "UPDATE deliveries SET latency_published_s = 11400, latency_first_seen_s = 240 "
                "WHERE id = 1"
            )
        )
        assert conn.execute(
            text("SELECT latency_published_s, latency_first_seen_s FROM deliveries WHERE id = 1")
        ).one() == (11400, 240)
    downgrade_database(engine, "0005")
    assert not COLUMNS & _columns(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM deliveries")).scalar() == 2
    upgrade_database(engine)
    assert _columns(engine) >= COLUMNS
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM deliveries")).scalar() == 2
        # the migration and schema.py agree on the deliveries table
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert [d for d in diff if "deliveries" in repr(d)] == []
    engine.dispose()
