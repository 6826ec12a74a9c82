"""Fixtures for the hardening tests; the helpers they use are in ``hazardkit.py`` (see there)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.devtools.feedserver import FeedServer, serve_directory


@pytest.fixture
def feed_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "served"
    folder.mkdir()
    return folder


@pytest.fixture
def feed_dir_server(feed_dir: Path) -> Iterator[FeedServer]:
    with serve_directory(feed_dir) as server:
        yield server


@pytest.fixture
def more_db_urls(db_url: str, tmp_path: Path) -> Iterator[Callable[[int], list[str]]]:
    """``more_db_urls(n)``: ``n`` fresh, empty databases on the backend ``db_url`` is on (the
    fixture's parameter), for tests that run several independent pipelines side by side."""
    import psycopg

    created: list[str] = []

    def make(n: int) -> list[str]:
        urls = []
        for _ in range(n):
            if db_url.startswith("sqlite"):
                urls.append(f"sqlite:///{tmp_path / f'extra-{uuid.uuid4().hex[:8]}.db'}")
                continue
            base, _, _ = db_url.rpartition("/")
            name = f"sw_test_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(db_url, autocommit=True, connect_timeout=3) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            created.append(name)
            urls.append(f"{base}/{name}")
        return urls

    yield make
    for name in created:
        with psycopg.connect(db_url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
