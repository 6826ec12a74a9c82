"""The operator page as a FastAPI app: ``GET /`` (HTML) and ``GET /api/overview`` (JSON), mounted by
the Airflow plugin (:mod:`pipeline.airflow_plugin`) under ``/sanctions-watch``.

Guarantees:

* **Every route checks who is asking** through the ``authenticate`` callable it is given (the plugin
  passes one that validates Airflow's own JWT with Airflow's auth manager), before any database
  read. Anonymous: the page redirects to the login URL, the JSON route answers 401. A token that
  is expired (401), forged, revoked or of a user without access (403): refused, with no data.
* **Escaping**: everything from feeds and servers reaches the HTML through Jinja2 autoescaping
  (:mod:`pipeline.health.web.page`); no script on the page, a Content-Security-Policy that allows
  none, and framing only by the same origin (the Airflow UI shows the page in an iframe).
* **Reads only**: one engine per process, opened on the first authenticated request (never when
  Airflow loads the plugin), its schema checked, kept for the life of the process; database work
  runs in a worker thread, off the server's event loop.

Nothing here imports Airflow: ``authenticate``, ``login_url``, the config and the clock are
arguments, so tests run the app with their own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from pipeline.config import Config
from pipeline.errors import SanctionsWatchError
from pipeline.health.overview import Overview, operator_overview
from pipeline.health.web.page import overview_json, render_overview
from pipeline.store.db import make_engine, make_sessionmaker, require_current_schema

__all__ = ["HEADERS", "Authenticate", "Verdict", "create_app"]

log = logging.getLogger(__name__)

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Who is asking: ``user`` when allowed; otherwise ``status`` 401 (no credentials, or expired)
    or 403 (invalid, revoked, or not allowed to see the page) and the ``reason``."""

    user: str | None = None
    status: int = 401
    reason: str = "not authenticated"
    anonymous: bool = False

    @property
    def allowed(self) -> bool:
        return self.user is not None


Authenticate = Callable[[Request], Awaitable[Verdict]]


class _Database:
    """The engine and sessions, opened once on first use (thread-safe)."""

    def __init__(self, config: Callable[[], Config]) -> None:
        self._config_fn = config
        self._lock = threading.Lock()
        self._config: Config | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    def open(self) -> tuple[Config, sessionmaker[Session]]:
        with self._lock:
            if self._sessions is None or self._config is None:
                config = self._config_fn()
                engine = make_engine(config.database_url)
                try:
                    require_current_schema(engine)
                except BaseException:
                    engine.dispose()
                    raise
                self._config, self._engine = config, engine
                self._sessions = make_sessionmaker(engine)
            return self._config, self._sessions

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._config = self._engine = self._sessions = None


def create_app(
    *,
    authenticate: Authenticate,
    login_url: Callable[[str], str],
    config: Callable[[], Config],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    """The operator page's app. ``authenticate`` decides every request; ``login_url(next)`` is
    where an anonymous browser is sent; ``config`` is called once, on the first authenticated
    request; ``clock`` gives ``now`` (the edge reads the clock)."""
    app = FastAPI(
        title="sanctions-watch operator view", docs_url=None, redoc_url=None, openapi_url=None
    )
    db = _Database(config)
    app.state.database = db

    def build(days: int) -> tuple[Overview, dict[str, str]]:
        cfg, sessions = db.open()
        with sessions() as session:
            view = operator_overview(session, cfg, now=clock(), days=days)
        return view, {f.id: f.name for f in cfg.feeds}

    async def load(days: int) -> tuple[Overview, dict[str, str]] | Response:
        try:
            return await run_in_threadpool(build, days)
        except (SanctionsWatchError, SQLAlchemyError) as err:  # config, schema, database down
            log.error("operator view unavailable: %s", err)
            return HTMLResponse(
                "<!doctype html><title>Unavailable</title>"
                "<p>The pipeline's database is not ready; see the API server's log.</p>",
                status_code=503,
                headers=HEADERS,
            )

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request, days: int = Query(14, ge=1, le=90)) -> Response:
        verdict = await authenticate(request)
        if not verdict.allowed:
            if verdict.anonymous:
                return RedirectResponse(
                    login_url(str(request.url)), status_code=303, headers=HEADERS
                )
            again = escape(login_url(str(request.url)))
            return HTMLResponse(
                "<!doctype html><title>Refused</title>"
                f"<p>Refused ({verdict.status}): please "
                f'<a href="{again}" target="_top">sign in to Airflow</a> again.</p>',
                status_code=verdict.status,
                headers=HEADERS,
            )
        loaded = await load(days)
        if isinstance(loaded, Response):
            return loaded
        view, names = loaded
        html = render_overview(view, feed_names=names, user=verdict.user)
        return HTMLResponse(html, headers=HEADERS)

    @app.get("/api/overview")
    async def api_overview(request: Request, days: int = Query(14, ge=1, le=90)) -> Response:
        verdict = await authenticate(request)
        if not verdict.allowed:
            return JSONResponse(
                {"detail": verdict.reason}, status_code=verdict.status, headers=HEADERS
            )
        loaded = await load(days)
        if isinstance(loaded, Response):
            return JSONResponse({"detail": "database not ready"}, status_code=503, headers=HEADERS)
        body: dict[str, Any] = overview_json(loaded[0])
        return JSONResponse(body, headers=HEADERS)

    return app
