"""Fixtures of the review tests: a config with the review page's secret, base URL and one analyst,
a database with two alerts, and the app served by uvicorn on loopback (``review_server``)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from builders import BASE, BASE_TITLE, FEEDS, OTHER, OTHER_TITLE, add_article
from helpers import NOW, write_config

from pipeline.config import Config, load_config
from pipeline.jobs import Runtime, record_alerts
from pipeline.review.auth import add_user

SECRET = "s" * 40
PASSWORD = "correct horse battery"
HOSTILE_TITLE = 'Tanker <script>alert("x")</script> off Nampo <img src=x onerror=alert(1)>'


@dataclass
class Review:
    config: Config
    alerts: list[int]
    articles: list[int]
    url: str = ""


def review_config(tmp_path: Path, *, port: int = 8081, database_url: str | None = None) -> Config:
    directory = write_config(
        tmp_path / "config",
        database_url=database_url or f"sqlite:///{tmp_path / 'sw.db'}",
        feeds=FEEDS,
        settings={
            "review": {"base_url": f"http://127.0.0.1:{port}", "secure_cookies": False,
                       "users_file": str(tmp_path / "users.json")},
            "smtp": {"reply_to": "analysts@example.org"},
        },
    )  # fmt: skip
    config = load_config(directory, environ={"SANCTIONS_WATCH_REVIEW_SECRET": SECRET})
    add_user(tmp_path / "users.json", "ana", PASSWORD)
    return config


def fill(config: Config) -> tuple[list[int], list[int]]:
    """Three scored articles: two flagged (alerted), one near the threshold (hostile title)."""
    with Runtime.open(config) as rt:
        a = add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://w.example/1")
        b = add_article(rt, feed="daily", title=OTHER_TITLE, summary=OTHER, url="https://d.example/2",
                        regimes=("iran",), score=0.81)  # fmt: skip
        c = add_article(rt, feed="gazette", title=HOSTILE_TITLE, summary="<b>bold</b> text",
                        url="javascript:alert(1)", score=0.46, regimes=())  # fmt: skip
        record_alerts(rt, now=NOW)
        from sqlalchemy import select

        from pipeline.store.schema import Alert

        with rt.sessions() as s:
            alerts = list(s.scalars(select(Alert.id).order_by(Alert.id)))
    assert a and b and c
    return alerts, [a, b, c]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def review(tmp_path: Path) -> Review:
    config = review_config(tmp_path)
    alerts, articles = fill(config)
    return Review(config, alerts, articles)


@pytest.fixture
def review_server(tmp_path: Path) -> Iterator[Review]:
    import uvicorn

    from pipeline.review.app import create_app

    port = _free_port()
    config = review_config(tmp_path, port=port)
    alerts, articles = fill(config)
    app = create_app(config, clock=lambda: NOW)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("review server did not start")
        time.sleep(0.05)
    try:
        yield Review(config, alerts, articles, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.engine.dispose()


def form_value(html: str, name: str) -> Any:
    import re

    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    return match.group(1) if match else None
