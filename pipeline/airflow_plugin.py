"""The operator page as an Airflow 3 plugin: the one module of ``pipeline`` that imports Airflow.

Airflow's plugin manager imports it through the entry point ``airflow.plugins`` (pyproject.toml) in
every Airflow process, task runs included; nothing in ``pipeline`` imports it. So importing it is
cheap: it reads no config, opens no database and imports no other part of ``pipeline`` (the page,
:mod:`pipeline.health.web`, is imported by the API server on the first request). It mounts the page
under ``/sanctions-watch`` on Airflow's API server (``fastapi_apps``) and adds the nav entry
"Sanctions watch", which shows it inside the Airflow UI (``external_views``).

Airflow does not protect a plugin's FastAPI routes, so every request is checked here with Airflow's
own auth manager: the JWT of the UI session (cookie ``_token``, which the UI's login sets and the
browser sends with the iframe's requests) or an ``Authorization: Bearer`` token (API clients:
``POST /auth/token``), validated by ``get_auth_manager().get_user_from_token`` (signature, audience,
expiry, revocation), then ``is_authorized_view(WEBSITE)``. An explicit Bearer token wins over the
cookie, as in Airflow's own API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

    from pipeline.health.web.app import Verdict

__all__ = ["URL_PREFIX", "OperatorPage", "SanctionsWatchPlugin", "authenticate", "login_url"]

URL_PREFIX = "/sanctions-watch"
COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN


def _token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE) or None


async def authenticate(request: Request) -> Verdict:
    """Airflow's verdict on the request's token (see the module docstring)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from jwt import ExpiredSignatureError, InvalidTokenError

    from pipeline.health.web.app import Verdict

    token = _token(request)
    if token is None:
        return Verdict(status=401, reason="not authenticated", anonymous=True)
    manager = get_auth_manager()
    try:
        user = await manager.get_user_from_token(token)
    except ExpiredSignatureError:
        return Verdict(status=401, reason="token expired")
    except InvalidTokenError:
        return Verdict(status=403, reason="invalid token")
    if not manager.is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        return Verdict(status=403, reason="forbidden")
    return Verdict(user=user.get_name(), status=200, reason="")


def login_url(next_url: str) -> str:
    """Airflow's login page, coming back to ``next_url`` after signing in."""
    from airflow.api_fastapi.app import get_auth_manager

    return str(get_auth_manager().get_url_login(next_url=next_url))


def _build() -> ASGIApp:
    from pipeline.config import load_config
    from pipeline.health.web.app import create_app

    # The pipeline's config as the DAGs' tasks read it (SANCTIONS_WATCH_CONFIG), on first use.
    return create_app(authenticate=authenticate, login_url=login_url, config=load_config)


class OperatorPage:
    """The page's ASGI app, built on its first request (in a worker thread: the imports take a
    second or so), so that loading the plugin costs Airflow's processes nothing."""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            from starlette.concurrency import run_in_threadpool

            app = await run_in_threadpool(_build)
            if self._app is None:  # two first requests at once: keep one app
                self._app = app
        await self._app(scope, receive, send)


class SanctionsWatchPlugin(AirflowPlugin):
    """Registers the operator page with Airflow (entry point ``airflow.plugins``)."""

    name = "sanctions_watch"
    fastapi_apps: list[Any] = [  # noqa: RUF012 - Airflow's plugin interface is class attributes
        {"app": OperatorPage(), "url_prefix": URL_PREFIX, "name": "Sanctions watch operator view"}
    ]
    external_views: list[Any] = [  # noqa: RUF012
        {
            "name": "Sanctions watch",
            # Relative to Airflow's base URL (no leading slash), so a sub-path deployment works.
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "sanctions-watch",
            "destination": "nav",
        }
    ]
