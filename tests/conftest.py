"""Shared fixtures.

Fixtures strategy (reuse these before writing new ones):

* **Real parts, loopback only.** ``feed_server`` serves ``data/sample_feeds`` (or any folder) over a real
  HTTP server on 127.0.0.1; ``mail_sink`` is a real aiosmtpd SMTP server writing ``.eml`` files;
  databases are real SQLite files (``sqlite_url``) and the machine's PostgreSQL (``pg_url``, a fresh
  database per test). ``db_url`` is parametrised over both backends: use it for anything that writes.
* **No internet.** ``_no_internet`` (autouse) refuses any socket connection outside loopback, so a test
  that would reach the internet fails loudly instead of hanging.
* **Config.** ``make_config(...)`` writes a complete config folder into ``tmp_path`` (settings, feeds,
  subscriptions, regimes) pointing at the fixtures above, and returns the loaded :class:`Config`.
* **Model.** ``active_model_dir`` is the repo's ``models/`` (the shipped model). ``tiny_model_dir``
  trains a small model in a temp folder once per session, for registry tests that tamper with files.
* **Article pages.** ``tests/pagekit.py``: the long test article (breach in paragraph four), HTML
  around it, a summary-only feed, and ``page_server()``, a loopback server that timestamps each
  request on its own side (for politeness assertions).
* **Command line.** ``run_cli("models", "list", "--config", DIR)`` runs ``sanctions-watch`` in this
  process and returns (exit code, stdout, stderr); use a subprocess only to test stdin or exit paths.
* **PostgreSQL.** Unreachable → skip with the reason; ``SANCTIONS_WATCH_REQUIRE_POSTGRES=1`` (set by
  ``.ci/run``) turns that skip into a failure, so CI always proves the production path.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import NOW, ROOT, SAMPLE_FEEDS, write_config  # noqa: F401 - re-exported for fixtures

from pipeline.config import Config, load_config

PG_URL = os.environ.get(
    "SANCTIONS_WATCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_PG = os.environ.get("SANCTIONS_WATCH_REQUIRE_POSTGRES") == "1"


# ------------------------------------------------------------------------------------ network guard

_real_connect = socket.socket.connect


def _is_local(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX
        return True
    host = address[0]
    if host in ("localhost",):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    def guarded(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            raise OSError(f"test tried to reach {address!r}: tests run offline (loopback only)")
        return _real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


# ------------------------------------------------------------------------------------- databases


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sw.db'}"


def _pg_admin() -> Any:
    import psycopg

    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)


@pytest.fixture
def pg_url() -> Iterator[str]:
    try:
        admin = _pg_admin()
    except Exception as err:
        if REQUIRE_PG:
            pytest.fail(
                f"PostgreSQL required (SANCTIONS_WATCH_REQUIRE_POSTGRES=1) but unreachable: {err}"
            )
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {err}")
    name = f"sw_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sw.db'}"
    return request.getfixturevalue("pg_url")


# -------------------------------------------------------------------------------- servers on loopback


@pytest.fixture
def feed_server() -> Iterator[Any]:
    from pipeline.devtools.feedserver import serve_directory

    with serve_directory(SAMPLE_FEEDS) as server:
        yield server


@pytest.fixture
def mail_sink(tmp_path: Path) -> Iterator[Any]:
    from pipeline.devtools.mailsink import MailSink

    with MailSink(tmp_path / "outbox") as sink:
        yield sink


# ------------------------------------------------------------------------------------------ config


@pytest.fixture
def active_model_dir() -> Path:
    return ROOT / "models"


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    def make(**kwargs: Any) -> Config:
        kwargs.setdefault("database_url", f"sqlite:///{tmp_path / 'sw.db'}")
        kwargs.setdefault("feeds", [{"id": "f1", "url": "http://127.0.0.1:9/feed.xml"}])
        return load_config(write_config(tmp_path / "config", **kwargs), environ={})

    return make


# ------------------------------------------------------------------------------ the command line


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., tuple[int, str, str]]]:
    """``sanctions-watch ARGS`` in this process: (exit code, stdout, stderr). ``main`` sets the
    alembic and httpx loggers' levels; they are put back afterwards."""
    names = ("alembic", "httpx")
    levels = {n: logging.getLogger(n).level for n in names}

    def run(*argv: str) -> tuple[int, str, str]:
        from pipeline.cli import main

        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
