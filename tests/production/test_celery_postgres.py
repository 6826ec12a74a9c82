"""The production path, for real (issue 11 item 6): Airflow's CeleryExecutor with the machine's Redis
(127.0.0.1:6379) as broker, PostgreSQL (127.0.0.1:5432) as both Airflow's metadata database and the
pipeline's, the project's DAG files unchanged.

The test starts real processes, each in its own process group: ``airflow db migrate``, then the
scheduler, the DAG processor, the API server (a free port) and a Celery worker (concurrency 2), with
``AIRFLOW_HOME`` in ``tmp_path``. Feeds come from the loopback feed server, mail goes to the aiosmtpd
sink; the pipeline reads the shipped ``config/`` (copied) with environment overrides, as a
deployment does. It unpauses ``alert`` and ``ingest`` and triggers ``ingest`` over the REST API with
a JWT from ``/auth/token``, waits for that run and then for the ``alert`` run its asset event starts,
and checks articles and alerts in the pipeline database and mails in the sink.

Skipped with the reason when PostgreSQL or Redis is unreachable, unless
``SANCTIONS_WATCH_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which turns the skip into a failure.
Every process group is killed and both databases are dropped at the end, pass or fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, SAMPLE_FEEDS

# Start-up (~30 s), then at most RUNS_WITHIN for the runs, then teardown (~20 s): above the 300 s default.
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(480)]

PG_URL = os.environ.get(
    "SANCTIONS_WATCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 5  # a DB number of its own, flushed first
REQUIRED = os.environ.get("SANCTIONS_WATCH_REQUIRE_POSTGRES") == "1"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
RUNS_WITHIN = 240.0  # seconds for the triggered ingest run and the alert run it starts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unreachable() -> str | None:
    """Why the services cannot be used, or None. Redis must answer PING, PostgreSQL a query."""
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("select 1")
    except psycopg.Error as err:
        return f"PostgreSQL not reachable at {PG_URL}: {err}"
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=3) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(16)
    except OSError as err:
        return f"Redis not reachable at {REDIS_HOST}:{REDIS_PORT}: {err}"
    if not reply.startswith(b"+PONG"):
        return f"Redis at {REDIS_HOST}:{REDIS_PORT} answered PING with {reply!r}"
    return None


def _admin() -> Any:
    import psycopg

    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)


@dataclass
class Stack:
    """The running processes (by name), their log files, and what the test needs to reach them."""

    home: Path
    env: dict[str, str]
    api: str
    pipeline_db: str
    airflow_db: str
    password: str
    sink: Any
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start(self, name: str, *args: str) -> None:
        with self.log(name).open("ab") as out:
            self.procs[name] = subprocess.Popen(
                [AIRFLOW, *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: killed whole at the end
            )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            # The whole group: celery's pool, the task supervisors, uvicorn's workers.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def tails(self, lines: int = 40) -> str:
        """The last lines of every process log and of every task log, for a failure message."""
        parts = []
        for path in [self.log(n) for n in ("migrate", *self.procs)] + sorted(
            (self.home / "logs").rglob("*.log")
        ):
            if path.is_file():
                text = path.read_text("utf-8", "replace").splitlines()[-lines:]
                parts.append(f"----- {path.relative_to(self.home)} -----\n" + "\n".join(text))
        return "\n".join(parts)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    reason = _unreachable()
    if reason:
        if REQUIRED:
            pytest.fail(f"SANCTIONS_WATCH_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    import redis
    from cryptography.fernet import Fernet

    from pipeline.devtools.feedserver import serve_directory
    from pipeline.devtools.mailsink import MailSink

    suffix = uuid.uuid4().hex[:10]
    names = {"airflow": f"sw_e2e_airflow_{suffix}", "pipeline": f"sw_e2e_pipeline_{suffix}"}
    base = PG_URL.rsplit("/", 1)[0].split("://", 1)[1]  # postgres@127.0.0.1:5432
    with _admin() as admin:
        for name in names.values():
            admin.execute(f'CREATE DATABASE "{name}"')
    broker = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    broker.flushdb()

    home = tmp_path / "airflow"
    home.mkdir()
    # The shipped config, copied; what differs here comes from the environment, as in a deployment.
    config_dir = tmp_path / "config"
    shutil.copytree(ROOT / "config", config_dir)
    feed_server = serve_directory(SAMPLE_FEEDS)
    feeds = config_dir / "feeds.sample.yaml"
    feeds.write_text(
        feeds.read_text("utf-8").replace("http://127.0.0.1:8765/", feed_server.url), "utf-8"
    )
    sink = MailSink(tmp_path / "mail").start()
    print(f"feed server {feed_server.url}, mail sink {sink.port}")
    port = _free_port()
    password = secrets.token_urlsafe(16)
    (home / "passwords.json").write_text(json.dumps({"admin": password}), "utf-8")
    airflow_db = f"postgresql+psycopg://{base}/{names['airflow']}"
    pipeline_db = f"postgresql://{base}/{names['pipeline']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SANCTIONS_WATCH"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=airflow_db,
        # psycopg 3 serves the async engine too (no asyncpg needed).
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=airflow_db.replace(
            "+psycopg://", "+psycopg_async://"
        ),
        AIRFLOW__CELERY__BROKER_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+{airflow_db}",
        AIRFLOW__CELERY__WORKER_CONCURRENCY="2",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__API__SECRET_KEY=secrets.token_hex(16),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),  # shared: the worker's task tokens
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(_free_port()),
        SANCTIONS_WATCH_CONFIG=str(config_dir),
        SANCTIONS_WATCH_DATABASE_URL=pipeline_db,
        SANCTIONS_WATCH_MODEL_DIR=str(ROOT / "models"),
        SANCTIONS_WATCH_DESIGNATIONS_PATH=str(
            ROOT / "data/designations/un_consolidated_sample.xml"
        ),
        SANCTIONS_WATCH_OUTBOX_DIR=str(tmp_path / "outbox"),
        SANCTIONS_WATCH_SMTP__PORT=str(sink.port),
        # The sample items link to pages nobody serves; page fetching is not what this test is about.
        SANCTIONS_WATCH_FULL_TEXT__MAX_PAGES="0",
    )
    running = Stack(
        home=home,
        env=env,
        api=f"http://127.0.0.1:{port}",
        pipeline_db=pipeline_db,
        airflow_db=airflow_db.replace("+psycopg", ""),
        password=password,
        sink=sink,
    )
    try:
        with running.log("migrate").open("wb") as out:
            migrate = subprocess.run(
                [AIRFLOW, "db", "migrate"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        assert migrate.returncode == 0, running.tails(80)
        running.start("scheduler", "scheduler")
        running.start("dag-processor", "dag-processor")
        running.start("api-server", "api-server", "--port", str(port), "--host", "127.0.0.1")
        running.start("celery-worker", "celery", "worker", "--concurrency", "2", "--without-gossip")
        yield running
    finally:
        running.stop()
        sink.stop()
        feed_server.close()
        broker.flushdb()
        broker.close()
        with _admin() as admin:
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait(stack: Stack, what: str, until: float, probe: Callable[[], Any]) -> Any:
    """Poll ``probe`` until it returns something truthy; fail if a process died or at ``until``."""
    while True:
        stack.check_alive()
        value = probe()
        if value:
            return value
        if time.monotonic() > until:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(2)


def _query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, connect_timeout=3) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
def client(stack: Stack) -> Iterator[Any]:
    import httpx

    with httpx.Client(base_url=stack.api, timeout=30) as client:
        yield client


def test_ingest_and_alert_run_on_celery_with_postgres_and_redis(stack: Stack, client: Any) -> None:
    try:
        _trigger_and_check(stack, client)
    except Exception as err:  # with every process's and task's log tail, to see why
        raise AssertionError(f"{type(err).__name__}: {err}\n{stack.tails()}") from err


def _trigger_and_check(stack: Stack, client: Any) -> None:
    import httpx

    started = time.monotonic()

    def api_up() -> bool:
        try:
            return client.get("/api/v2/monitor/health").status_code == 200
        except httpx.TransportError:
            return False

    _wait(stack, "the API server", started + 120, api_up)
    token = client.post("/auth/token", json={"username": "admin", "password": stack.password})
    assert token.status_code == 201, token.text
    client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    _wait(
        stack,
        "the DAG processor to parse dags/",
        started + 180,
        lambda: all(
            client.get(f"/api/v2/dags/{d}").status_code == 200 for d in ("ingest", "alert")
        ),
    )
    errors = client.get("/api/v2/importErrors").json()
    assert errors["total_entries"] == 0, errors

    # Triggered while paused (the run waits, queued), then unpaused: unpausing also makes the
    # scheduler create the latest scheduled run, and with one active run at a time the queued runs
    # start in run_after order, so the triggered run gets an early one and goes first. The alert
    # DAG is unpaused before ingest runs, so the asset event finds it.
    run_id = f"e2e_{uuid.uuid4().hex[:8]}"
    r = client.post(
        "/api/v2/dags/ingest/dagRuns",
        json={"dag_run_id": run_id, "logical_date": None, "run_after": "2026-01-01T00:00:00Z"},
    )
    assert r.status_code == 200, r.text
    for dag_id in ("alert", "ingest"):
        r = client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        assert r.status_code == 200, r.text

    until = time.monotonic() + RUNS_WITHIN

    def ingest_state() -> str | None:
        state = client.get(f"/api/v2/dags/ingest/dagRuns/{run_id}").json()["state"]
        return state if state in ("success", "failed") else None

    assert _wait(stack, f"ingest run {run_id}", until, ingest_state) == "success"

    def alert_state() -> str | None:
        # The alert run that consumed the asset event of our ingest run.
        rows = _query(
            stack.airflow_db,
            "select dr.state from dag_run dr"
            " join dagrun_asset_event dae on dae.dag_run_id = dr.id"
            " join asset_event ae on ae.id = dae.event_id"
            " where dr.dag_id = 'alert' and ae.source_dag_id = 'ingest' and ae.source_run_id = %s",
            run_id,
        )
        return rows[0][0] if rows and rows[0][0] in ("success", "failed") else None

    alert = _wait(stack, "the alert run started by the asset", until, alert_state)
    tis = _query(
        stack.airflow_db,
        "select dag_id, task_id, map_index, state, hostname from task_instance"
        " where run_id = %s or dag_id = 'alert' order by start_date",
        run_id,
    )
    assert alert == "success", tis
    # The tasks really ran on the Celery worker (a hostname per task instance, from the worker).
    ingest_tis = [t for t in tis if t[0] == "ingest"]
    assert {t[1] for t in ingest_tis} == {
        "migrate_database",
        "plan_feed_batches",
        "ingest_feeds",
        "announce_articles",
    }
    assert all(t[3] == "success" and t[4] for t in ingest_tis), tis

    # What the pipeline stored in its own PostgreSQL database, and what the sink received.
    articles = _query(stack.pipeline_db, "select count(*) from articles")[0][0]
    feeds = dict(_query(stack.pipeline_db, "select feed_id, count(*) from articles group by 1"))
    alerts = _query(stack.pipeline_db, "select count(*) from alerts")[0][0]
    sent = _query(
        stack.pipeline_db,
        "select recipient from deliveries where status = 'sent' and channel = 'email'",
    )
    assert articles == 13, feeds
    assert set(feeds) == {"sample-world-wire", "sample-asia-desk", "sample-africa-desk"}
    assert alerts >= 1
    assert sent, "no delivery was sent"
    mails = [m.decode("utf-8", "replace") for m in stack.sink.messages]
    for (recipient,) in sent:
        assert any(recipient in m for m in mails), recipient
    assert any("compliance@example.org" in m for m in mails)
