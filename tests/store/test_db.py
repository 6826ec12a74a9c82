"""Engines and the schema check: migrate once, then every runtime only checks, quietly, that the
schema is current, and a database that is behind (or ahead) is refused with the revisions named."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from pipeline.errors import StoreError
from pipeline.jobs import Runtime, migrate
from pipeline.store.db import (
    current_revision,
    downgrade_database,
    head_revision,
    make_engine,
    require_current_schema,
    upgrade_database,
)


def test_an_unmigrated_database_is_refused_with_the_fix(make_config, db_url: str) -> None:
    config = make_config(database_url=db_url)
    with pytest.raises(StoreError) as refused:
        Runtime.open(config, migrate=False)
    message = str(refused.value)
    assert "has no schema yet" in message and head_revision() in message
    assert "sanctions-watch db upgrade" in message
    engine = make_engine(db_url)
    assert current_revision(engine) is None  # only checked, never migrated
    engine.dispose()


def test_a_database_behind_or_ahead_is_refused(make_config, db_url: str) -> None:
    config = make_config(database_url=db_url)
    engine = make_engine(db_url)
    upgrade_database(engine, "0001")
    with pytest.raises(StoreError, match=rf"at schema revision 0001, behind {head_revision()}"):
        Runtime.open(config, migrate=False)
    upgrade_database(engine)
    with engine.begin() as conn:  # as a newer release would leave it
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="revision 9999, which this code does not know"):
        require_current_schema(engine)
    engine.dispose()


def test_migrate_once_then_open_quietly(
    make_config, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(database_url=sqlite_url)
    assert migrate(config).revision == head_revision()
    assert migrate(config).as_dict() == {"revision": head_revision()}  # idempotent
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="alembic")  # whatever level an earlier test left it at
    with Runtime.open(config, migrate=False) as rt, rt.sessions() as session:
        assert session.execute(text("SELECT count(*) FROM feeds")).scalar() == 0
    # No Alembic environment ran: no Alembic log line, no upgrade logged.
    assert [r for r in caplog.records if r.name.startswith("alembic")] == []
    assert not any("database at revision" in r.getMessage() for r in caplog.records)


def test_downgrade_then_migrate_brings_it_back(make_config, sqlite_url: str) -> None:
    config = make_config(database_url=sqlite_url)
    migrate(config)
    engine = make_engine(sqlite_url)
    downgrade_database(engine, "0001")
    assert current_revision(engine) == "0001"
    assert migrate(config).revision == head_revision() == current_revision(engine)
    engine.dispose()
