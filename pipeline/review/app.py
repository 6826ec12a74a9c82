"""The analysts' review page: its own FastAPI app with its own login (``make run`` starts it on
127.0.0.1:8081; ``sanctions-watch review serve``). See docs/analyst-guide.md.

Guarantees:

* **Every route but the login form is authenticated**: a request without a valid signed session
  cookie (absent, forged, altered, expired) gets a redirect to ``/login`` (GET) or 403 (POST), and
  never any item data.
* **CSRF**: every POST carries its session's CSRF token (constant-time compare); the cookie is
  ``HttpOnly``, ``SameSite=Strict`` and (unless ``review.secure_cookies: false``) ``Secure``.
* **Escaping**: feed text reaches the page only through Jinja2 autoescaping; links only when they are
  http(s); a strict Content-Security-Policy (no scripts at all) and ``Referrer-Policy: no-referrer``
  (a link token in the URL never leaks to a source's site).
* **Email links** (:mod:`pipeline.review.tokens`) open a confirmation form with the label pre-filled;
  the label is recorded by the confirmation POST, once per link.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session as DbSession

from pipeline.config import Config
from pipeline.errors import ConfigError, InputError
from pipeline.ingest.normalise import safe_http_url
from pipeline.review.auth import check_password, csrf_ok, load_users, make_session, read_session
from pipeline.review.labels import record_label
from pipeline.review.queries import Filters, facets, list_items, uncertainty_queue
from pipeline.review.tokens import TokenError, read_token, token_digest
from pipeline.store.db import make_engine, make_sessionmaker, require_current_schema
from pipeline.store.schema import Alert

__all__ = ["COOKIE", "create_app"]

COOKIE = "sw_review"
MESSAGES = {
    "labelled": "Label recorded.",
    "spent": "This email link was already used; the label was not recorded again.",
}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["safe_url"] = safe_http_url
    return env


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _local(path: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme): no open redirect."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/"


def create_app(config: Config, *, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The review app over the pipeline's database; :class:`ConfigError` when the review secret is
    missing (sessions and links are signed with it)."""
    secret = config.review.secret
    if not secret:
        raise ConfigError("the review page needs SANCTIONS_WATCH_REVIEW_SECRET (32+ characters)")
    now = clock or (lambda: datetime.now(UTC))
    engine = make_engine(config.database_url)
    require_current_schema(engine)
    sessions = make_sessionmaker(engine)
    env = _env()
    app = FastAPI(title="sanctions-watch review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine

    def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = env.get_template(name).render(**values)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def current(request: Request) -> Any:
        return read_session(secret, request.cookies.get(COOKIE), now=now())

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", 303, headers=HEADERS)

    def refused() -> Response:
        return HTMLResponse("Forbidden", status_code=403, headers=HEADERS)

    @app.get("/login")
    def login_form(request: Request, next: str = "/") -> Response:
        return page("login.html.j2", title="Log in", analyst=None, next=_local(next))

    @app.post("/login")
    def login(
        username: str = Form(""), password: str = Form(""), next: str = Form("/")
    ) -> Response:
        users = load_users(config.review.users_file)
        if not check_password(users, username, password):
            return page(
                "login.html.j2", 401, title="Log in", analyst=None, next=_local(next),
                error="Unknown analyst or wrong password.",
            )  # fmt: skip
        cookie, _ = make_session(secret, username, now=now())
        response = RedirectResponse(_local(next), 303, headers=HEADERS)
        response.set_cookie(
            COOKIE, cookie, httponly=True, samesite="strict",
            secure=config.review.secure_cookies, path="/",
        )  # fmt: skip
        return response

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form("")) -> Response:
        if not csrf_ok(current(request), csrf):
            return refused()
        response = RedirectResponse("/login", 303, headers=HEADERS)
        response.delete_cookie(COOKIE, path="/")
        return response

    def listing(
        request: Request, title: str, items: Any, filters: Filters | None, **kw: Any
    ) -> Response:
        s = current(request)
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return page(
            "items.html.j2", title=title, items=items, filters=filters, analyst=s.analyst,
            csrf=s.csrf, back=back, message=MESSAGES.get(request.query_params.get("done", "")),
            **kw,
        )  # fmt: skip

    @app.get("/")
    def index(
        request: Request, regime: str = "", since: str = "", until: str = "", band: str = "",
        label: str = "", feed: str = "", lang: str = "",
    ) -> Response:  # fmt: skip
        if current(request) is None:
            return to_login(request)
        filters = Filters(regime, _date(since), _date(until), band, label, feed, lang)
        with sessions() as db:
            everything = list_items(db, Filters())
            items = list_items(db, filters)
        return listing(request, "Recent alerts and scored articles", items, filters,
                       facets=facets(everything))  # fmt: skip

    @app.get("/queue")
    def queue(request: Request) -> Response:
        if current(request) is None:
            return to_login(request)
        with sessions() as db:
            items = uncertainty_queue(db)
        return listing(request, "Uncertainty queue: most informative first", items, None, facets={})

    def _article_of(db: DbSession, alert_id: int) -> int | None:
        alert = db.get(Alert, alert_id)
        return alert.article_id if alert else None

    @app.get("/feedback")
    def feedback(request: Request, t: str = "") -> Response:
        s = current(request)
        if s is None:
            return to_login(request)
        try:
            claims = read_token(secret, t, now=now())
        except TokenError as err:
            return page("items.html.j2", 400, title="Feedback link", items=[], filters=None,
                        analyst=s.analyst, csrf=s.csrf, error=str(err), back="/")  # fmt: skip
        with sessions() as db:
            article_id = _article_of(db, claims.alert_id)
            items = [i for i in list_items(db, Filters()) if i.article_id == article_id]
        if not items:
            return page("items.html.j2", 404, title="Feedback link", items=[], filters=None,
                        analyst=s.analyst, csrf=s.csrf, error="That alert is no longer stored.",
                        back="/")  # fmt: skip
        return page(
            "feedback.html.j2", title="Confirm label", analyst=s.analyst, csrf=s.csrf,
            item=items[0], alert_id=claims.alert_id, label=claims.label, token=t,
        )  # fmt: skip

    @app.post("/label")
    def label(
        request: Request, csrf: str = Form(""), article_id: int = Form(...),
        label: str = Form(...), note: str = Form(""), token: str = Form(""), back: str = Form("/"),
    ) -> Response:  # fmt: skip
        s = current(request)
        if not csrf_ok(s, csrf):
            return refused()
        alert_id = None
        digest = None
        if token:
            try:
                claims = read_token(secret, token, now=now())
            except TokenError as err:
                return HTMLResponse(str(err), status_code=400, headers=HEADERS)
            alert_id = claims.alert_id
            if claims.label == label:  # the link's own label: spent once
                digest = token_digest(token)
        try:
            with sessions.begin() as db:
                if alert_id is not None and _article_of(db, alert_id) != article_id:
                    return HTMLResponse("The link is for another item", 400, headers=HEADERS)
                recorded = record_label(
                    db, article_id=article_id, alert_id=alert_id, label=label,
                    analyst=s.analyst, note=note, now=now(),
                    via="email" if digest else "review", token_sha256=digest,
                )  # fmt: skip
        except InputError as err:
            return HTMLResponse(str(err), status_code=400, headers=HEADERS)
        # A fixed message by code: a crafted URL cannot put words on the analyst's page.
        target = _local(back)
        joiner = "&" if "?" in target else "?"
        done = "labelled" if recorded else "spent"
        return RedirectResponse(f"{target}{joiner}done={done}", 303, headers=HEADERS)

    return app
