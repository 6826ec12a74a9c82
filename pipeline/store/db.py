"""Engines and migrations: SQLite (embedded default) and PostgreSQL (production).

SQLite runs in WAL mode with a busy timeout, and every transaction starts with ``BEGIN IMMEDIATE`` so
that concurrent writers queue for the lock instead of failing with "database is locked" when a read
transaction tries to upgrade. The schema is owned by Alembic (``sanctions-watch db upgrade``).

Migrations run once per process that sets up (``run-once`` at its start, the DAG's
``migrate_database`` task, ``db upgrade``); everything else calls :func:`require_current_schema`, a
quiet read of the ``alembic_version`` table that raises :class:`~pipeline.errors.StoreError` naming
the revision found and the one needed when the schema is behind.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import StoreError

__all__ = [
    "current_revision",
    "downgrade_database",
    "head_revision",
    "make_engine",
    "make_sessionmaker",
    "redact_db_url",
    "require_current_schema",
    "upgrade_database",
]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def redact_db_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL is logged as a placeholder, never raw
        return "<unparseable database URL>"


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 60}, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent)."""
    command.upgrade(_alembic_config(engine), revision)
    log.info("database at revision %s (%s)", revision, redact_db_url(str(engine.url)))


def downgrade_database(engine: Engine, revision: str) -> None:
    command.downgrade(_alembic_config(engine), revision)


def _scripts() -> ScriptDirectory:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def head_revision() -> str:
    """The newest schema revision this code knows (the migrations folder's head)."""
    head = _scripts().get_current_head()
    assert head is not None, "the migrations folder has no head revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision, read from ``alembic_version`` (None when never migrated).

    Quiet and cheap: no Alembic environment, no log lines; used on every runtime open.
    """
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


def require_current_schema(engine: Engine) -> str:
    """Return the head revision, or raise :class:`StoreError` when the database is not at it."""
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return head
    where = f"database {redact_db_url(str(engine.url))}"
    fix = (
        "run `sanctions-watch db upgrade` (the DAG's migrate_database task does it before each run)"
    )
    if current is None:
        raise StoreError(f"{where} has no schema yet; this code needs revision {head}: {fix}")
    try:
        known = _scripts().get_revision(current) is not None
    except CommandError:
        known = False
    if not known:
        raise StoreError(
            f"{where} is at schema revision {current}, which this code does not know (written by "
            f"a newer release?); this code needs revision {head}"
        )
    raise StoreError(f"{where} is at schema revision {current}, behind {head}: {fix}")
