"""The operator page (issue 11 item 3): rendered from a real database (values present, feed text
escaped), served by its FastAPI app with every route authenticated, and, end to end, as the Airflow 3
plugin inside a real ``airflow api-server``: signed in through Airflow's login page in headless
chromium, opened from the nav entry; anonymous, forged and expired tokens refused."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from builders import BASE, BASE_TITLE, FEEDS, OTHER, OTHER_TITLE, add_article
from fastapi import Request
from helpers import NOW, write_config
from sqlalchemy import select, update

from pipeline.config import Config, load_config
from pipeline.health import check_feeds
from pipeline.health.overview import operator_overview
from pipeline.health.web import Verdict, create_app, overview_json, render_overview
from pipeline.jobs import Runtime, record_alerts
from pipeline.store.articles import record_fetch
from pipeline.store.schema import Delivery

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> HTTP 404 & gone'
SUBS = [{"id": "all", "recipients": ["a@example.org", "b@example.org"]}]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def seed(config: Config, now: datetime) -> None:
    """Two alerts (dprk), one delivery sent and one failed; ``wire`` fetched fine (6 entries),
    ``gazette`` failing three times in a row with a hostile error text (its alarm open)."""
    with Runtime.open(config) as rt:
        add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://w/1", now=now)
        add_article(rt, feed="daily", title=OTHER_TITLE, summary=OTHER, url="https://d/1", now=now)
        assert record_alerts(rt, now=now).alerts_new == 2
        with rt.sessions.begin() as s:
            record_fetch(
                s, run_id="r0", feed_id="wire", started_at=now, finished_at=now, outcome="ok",
                entries_seen=6, articles_new=1,
            )  # fmt: skip
            for i in range(3):
                at = now + timedelta(minutes=i)
                record_fetch(
                    s, run_id=f"r{i}", feed_id="gazette", started_at=at, finished_at=at,
                    outcome="error", http_status=404, error=HOSTILE,
                )  # fmt: skip
            ids = list(s.scalars(select(Delivery.id).order_by(Delivery.id)))
            s.execute(
                update(Delivery)
                .where(Delivery.id == ids[0])
                .values(status="sent", sent_at=now + timedelta(minutes=30))
            )
            s.execute(
                update(Delivery)
                .where(Delivery.id == ids[1])
                .values(status="failed", last_error="550 <b>mailbox</b> unavailable")
            )
        with rt.sessions.begin() as s:
            check_feeds(s, config, now=now + timedelta(minutes=5))


@pytest.fixture
def seeded(make_config, tmp_path: Path) -> Config:
    config = make_config(
        database_url=f"sqlite:///{tmp_path / 'sw.db'}",
        feeds=FEEDS,
        subscriptions=SUBS,
        settings={"alerts": {"late_after_days": 0}, "health": {"failures_to_notify": 3}},
    )
    seed(config, NOW)
    return config


def overview(config: Config):
    with Runtime.open(config) as rt, rt.sessions() as s:
        return operator_overview(s, config, now=NOW + timedelta(hours=1), days=7)


# ------------------------------------------------------------------------------------ rendering


def test_page_shows_every_panel_with_values_and_escapes_feed_text(seeded: Config) -> None:
    view = overview(seeded)
    html = render_overview(view, feed_names={f.id: f.name for f in seeded.feeds}, user="ops")
    assert '<b id="model-version">test-v1</b>' in html
    assert '<b id="feeds-in-alarm">1 of 4</b>' in html
    # Feed health: one row per feed, in the feeds file's order; the failing one marked.
    rows = [line for line in html.splitlines() if '<tr class="feed' in line]
    assert [r.split('data-feed="')[1].split('"')[0] for r in rows] == [f["id"] for f in FEEDS]
    assert 'class="feed alarm" data-feed="gazette"' in html
    gazette = html.split('data-feed="gazette"')[1].split("</tr>")[0]
    assert '<td class="num">3</td>' in gazette and "failing</span>" in gazette
    wire = html.split('data-feed="wire"')[1].split("</tr>")[0]
    assert '<td class="num">6</td>' in wire and "World Wire" in wire
    # Alerts by day and regime; the outbox with the failed row; the latency panel.
    day = NOW.strftime("%Y-%m-%d")
    assert f'<tr data-day="{day}"><td>{day}</td><td class="num">2</td>' in html
    assert '<td class="num" data-status="failed">1</td>' in html
    assert '<td class="num" data-status="pending">2</td>' in html
    assert "0.5 h" in html  # sent 30 min after first sight
    # Feed and server text is text: no element, no attribute, no script survives.
    assert "<script>" not in html and "<img" not in html and "<b>mailbox" not in html
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    )
    assert "550 &lt;b&gt;mailbox&lt;/b&gt; unavailable" in html
    assert "signed in as ops" in html


def test_json_variant_carries_the_same_values(seeded: Config) -> None:
    data = json.loads(json.dumps(overview_json(overview(seeded))))
    assert data["model_version"] == "test-v1"
    assert data["alerts_by_day_regime"] == {NOW.strftime("%Y-%m-%d"): {"dprk": 2}}
    assert data["outbox"] == {"sent": 1, "failed": 1, "pending": 2}
    gazette = next(f for f in data["feeds"] if f["feed_id"] == "gazette")
    assert gazette["alarm"] == "failing" and gazette["consecutive_failures"] == 3
    assert gazette["last_error"] == HOSTILE  # data, not markup: JSON carries it as it is
    assert data["latency"]["sent"] == 1 and data["latency"]["from_first_seen_median_h"] == 0.5


# ------------------------------------------------------------------------- the app, every route


@dataclass
class Gate:
    """An authenticate callable for the app without Airflow: the request's ``x-test-user``."""

    calls: int = 0

    async def __call__(self, request: Request) -> Verdict:
        self.calls += 1
        who = request.headers.get("x-test-user")
        if who is None:
            return Verdict(status=401, reason="not authenticated", anonymous=True)
        if who == "forged":
            return Verdict(status=403, reason="invalid token")
        return Verdict(user=who, status=200, reason="")


@pytest.fixture
def client(seeded: Config) -> Iterator[tuple[httpx.Client, Gate, object]]:
    """The app under uvicorn on loopback (as Airflow serves it, minus Airflow)."""
    import uvicorn

    gate = Gate()
    app = create_app(
        authenticate=gate,
        login_url=lambda nxt: "/auth/login?next=" + nxt,
        config=lambda: seeded,
        clock=lambda: NOW + timedelta(hours=1),
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "operator page server did not start"
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            yield c, gate, app.state.database
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.database.close()


def test_every_route_refuses_anonymous_and_forged_requests_before_reading(client) -> None:
    c, gate, database = client
    page = c.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/auth/login?next=")
    assert c.get("/api/overview").status_code == 401
    forged = c.get("/", headers={"x-test-user": "forged"}, follow_redirects=False)
    assert (
        forged.status_code == 403 and "test-v1" not in forged.text and "gazette" not in forged.text
    )
    assert c.get("/api/overview", headers={"x-test-user": "forged"}).status_code == 403
    assert gate.calls == 4
    assert database._sessions is None  # nothing was read for them


def test_signed_in_operator_gets_the_page_and_json_with_strict_headers(client) -> None:
    c, _, _ = client
    page = c.get("/", headers={"x-test-user": "ops"})
    assert page.status_code == 200 and "test-v1" in page.text and "gazette" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'self'" in csp and "script" not in csp
    data = c.get("/api/overview?days=30", headers={"x-test-user": "ops"}).json()
    assert data["days"] == 30 and data["model_version"] == "test-v1"
    assert c.get("/api/overview?days=0", headers={"x-test-user": "ops"}).status_code == 422


def test_a_database_behind_the_code_shows_unavailable_not_a_traceback(
    make_config, tmp_path
) -> None:
    from sqlalchemy import create_engine, text

    config = make_config(database_url=f"sqlite:///{tmp_path / 'old.db'}", feeds=FEEDS)
    engine = create_engine(config.database_url)  # a database nobody migrated
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    app = create_app(authenticate=Gate(), login_url=lambda nxt: "/login", config=lambda: config)

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get(path, headers={"x-test-user": "ops"})

    page, api = asyncio.run(get("/")), asyncio.run(get("/api/overview"))
    assert page.status_code == 503 and "not ready" in page.text and "Traceback" not in page.text
    assert api.status_code == 503 and api.json() == {"detail": "database not ready"}
    assert str(tmp_path) not in page.text  # no database URL shown


# ------------------------------------------------------------------------------- the plugin


def test_plugin_module_is_cheap_to_import_and_registers_page_and_nav_entry() -> None:
    """Airflow imports every plugin in every process (each task run too): ours loads no other part
    of ``pipeline`` (no config, no database, no feedparser or scikit-learn) until the page is asked
    for (SQLAlchemy and FastAPI are Airflow's own)."""
    code = (
        "import json, sys\n"
        "from importlib.metadata import entry_points\n"
        "(ep,) = [e for e in entry_points(group='airflow.plugins') if e.name == 'sanctions_watch']\n"
        "plugin = ep.load()\n"
        "print(json.dumps({'value': ep.value, 'name': plugin.name,\n"
        "  'loaded': sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "                   ('pipeline', 'sklearn', 'feedparser', 'skops', 'datasketch')),\n"
        "  'apps': [[a['url_prefix'], type(a['app']).__name__] for a in plugin.fastapi_apps],\n"
        "  'views': plugin.external_views}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["value"] == "pipeline.airflow_plugin:SanctionsWatchPlugin"
    assert info["loaded"] == ["pipeline", "pipeline.airflow_plugin"]
    assert info["apps"] == [["/sanctions-watch", "OperatorPage"]]
    (view,) = info["views"]
    assert view["name"] == "Sanctions watch" and view["destination"] == "nav"
    assert view["href"] == "sanctions-watch/"  # relative to Airflow's base URL


# ----------------------------------------------------------------- end to end: Airflow api-server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "op-Zq7-pass-3f9"
JWT_SECRET = "test-jwt-secret-" + "0123456789abcdef" * 4  # 80 bytes: HS512 wants 64+


@dataclass
class AirflowServer:
    url: str
    log: Path


@pytest.fixture(scope="module")
def airflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    """One ``airflow api-server`` (SQLite metadata, SimpleAuthManager with one admin) for the
    module's end-to-end tests, the plugin found through its entry point, the pipeline's config
    pointing at a seeded SQLite database."""
    tmp_path = tmp_path_factory.mktemp("airflow-ui")
    now = datetime.now(UTC)
    config_dir = write_config(
        tmp_path / "config",
        database_url=f"sqlite:///{tmp_path / 'sw.db'}",
        feeds=FEEDS,
        subscriptions=SUBS,
        settings={"alerts": {"late_after_days": 0}, "health": {"failures_to_notify": 3}},
    )
    seed(load_config(config_dir, environ={}), now - timedelta(hours=2))
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": PASSWORD}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SANCTIONS_WATCH"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path / "no-dags"),
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple."
        "simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        AIRFLOW__API_AUTH__JWT_SECRET=JWT_SECRET,
        AIRFLOW__API__SECRET_KEY=JWT_SECRET,
        SANCTIONS_WATCH_CONFIG=str(config_dir),
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    migrate = subprocess.run(
        [airflow, "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    port = _free_port()
    log = tmp_path / "api-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(url + "/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        yield AirflowServer(url, log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (its workers too)
        try:  # uvicorn stops at once; Airflow's exit hooks can take seconds more: not waited for
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _token(url: str) -> str:
    reply = httpx.post(url + "/auth/token", json={"username": "admin", "password": PASSWORD})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["access_token"])


def _resigned(token: str, *, key: str, **claims: object) -> str:
    """``token`` with ``claims`` changed, signed with ``key`` (its own algorithm)."""
    import jwt

    header = jwt.get_unverified_header(token)
    payload = {**jwt.decode(token, options={"verify_signature": False}), **claims}
    extra = {"kid": header["kid"]} if header.get("kid") else None
    return jwt.encode(payload, key, algorithm=header["alg"], headers=extra)


@pytest.mark.slow
@pytest.mark.airflow
def test_plugin_page_in_airflow_ui_signed_in_through_airflow_login(airflow_server) -> None:
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    url = airflow_server.url
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/sanctions-watch/")  # anonymous: sent to Airflow's login, no data
            page.wait_for_url("**/auth/login**")
            assert "gazette" not in page.content()
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(url + "/sanctions-watch/")  # back where it was going, signed in
            assert "signed in as admin" in page.content()
            page.goto(url + "/")
            page.get_by_role("link", name="Sanctions watch").click()  # the nav entry
            page.wait_for_url("**/plugin/sanctions-watch")
            frame = page.frame_locator("iframe").first
            assert frame.locator("#model-version").inner_text() == "test-v1"
            rows = frame.locator("tr.feed")
            assert rows.count() == len(FEEDS)
            assert [rows.nth(i).get_attribute("data-feed") for i in range(rows.count())] == [
                f["id"] for f in FEEDS
            ]
            gazette = frame.locator('tr[data-feed="gazette"]')
            assert "alarm" in (gazette.get_attribute("class") or "")
            assert "failing" in gazette.inner_text()
            assert HOSTILE in gazette.inner_text()  # shown as text ...
            assert frame.locator("script, img").count() == 0  # ... never as markup
            assert frame.locator('td[data-status="failed"]').inner_text() == "1"
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.airflow
def test_plugin_routes_refuse_anonymous_forged_and_expired_tokens(airflow_server) -> None:
    url = airflow_server.url
    api, page = url + "/sanctions-watch/api/overview", url + "/sanctions-watch/"
    assert httpx.get(api).status_code == 401
    anonymous = httpx.get(page, follow_redirects=False)
    assert anonymous.status_code == 303 and "/auth/login?next=" in anonymous.headers["location"]
    token = _token(url)
    ok = httpx.get(api, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json()["model_version"] == "test-v1"
    assert httpx.get(page, cookies={"_token": token}).status_code == 200
    forged = _resigned(token, key="not-the-secret-" * 5)
    promoted = _resigned(token, key="not-the-secret-" * 5, sub="mallory")
    expired = _resigned(token, key=JWT_SECRET, exp=int(time.time()) - 3600)
    for bad in (forged, promoted, "garbage", token[:-4] + "AAAA"):
        reply = httpx.get(api, headers={"Authorization": f"Bearer {bad}"})
        assert reply.status_code == 403 and "feeds" not in reply.text, bad
        refused = httpx.get(page, cookies={"_token": bad}, follow_redirects=False)
        assert refused.status_code == 403 and "gazette" not in refused.text
    assert httpx.get(api, headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    assert httpx.get(page, cookies={"_token": expired}).status_code == 401
