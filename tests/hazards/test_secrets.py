"""Hazards: secrets in logs, task logs and error messages.

The SMTP password (and the AUTH exchange that carries it, base64-encoded), and credentials or tokens
in feed URLs (userinfo, ``token=``, ``api_key=``, ``sig=``), must never appear in:

* log records of any logger at DEBUG (``caplog``), nor in a CLI run's stderr at ``-v`` (what an
  Airflow task log would hold);
* error messages: the run report (XCom), ``fetch_log.error``, ``feeds.last_error``,
  ``deliveries.last_error``, operator notices and their emails;
* what recipients get: stored article links (a relative link resolved against a feed URL with a
  token) and the alert emails.

A database password is covered too: the CLI's error output when the database is unreachable.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from _httpfixtures import Exchange, MisbehavingServer, misbehaving_server
from hazardkit import OPERATOR, RECIPIENT, run_cli, sample_items
from helpers import NOW, write_config
from sqlalchemy import select

from pipeline.config import load_config
from pipeline.devtools.mailsink import MailSink
from pipeline.jobs import Runtime, run_once
from pipeline.store.schema import Article, Delivery, Feed, FetchLog, Notice

USER = "alerts-bot"
PASSWORD = "Pa55-w0rd-SECRET-smtp"
FEED_PASSWORD = "feedPa55SECRET"
TOKEN = "tok3nSECRETvalue123"
API_KEY = "KEYSECRET987"
SIGNATURE = "SIGSECRET555"
DB_PASSWORD = "hunter2SECRETdb"


def _encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRETS = [
    PASSWORD,
    _encoded(PASSWORD),  # AUTH LOGIN sends the password on its own
    _encoded(f"\0{USER}\0{PASSWORD}"),  # AUTH PLAIN
    FEED_PASSWORD,
    _encoded(f"user:{FEED_PASSWORD}"),  # HTTP Basic from the feed URL's userinfo
    TOKEN,
    API_KEY,
    SIGNATURE,
]

pytestmark = pytest.mark.timeout(120)


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def server() -> MisbehavingServer:
    with misbehaving_server() as srv:
        items = sample_items()

        def private_feed(ex: Exchange) -> None:
            # Relative links resolve against the feed URL, which carries the token.
            body = (
                '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>P</title>'
                f"<item><title>{items['origin']['title']}</title><link>#latest</link>"
                f"<description>{items['origin']['summary']}</description></item>"
                f"<item><title>{items['libya']['title']}</title><link>story/2?page=1</link>"
                f"<description>{items['libya']['summary']}</description></item></channel></rss>"
            ).encode()
            ex.respond(200, {"Content-Type": "application/rss+xml"}, body)

        srv.route("/private.xml", private_feed)
        yield srv


def _feeds(server: MisbehavingServer) -> list[dict[str, str]]:
    auth = f"user:{FEED_PASSWORD}@"
    port = server.port
    return [
        {"id": "private", "url": f"http://{auth}127.0.0.1:{port}/private.xml?token={TOKEN}"},
        {"id": "gone", "url": f"http://{auth}127.0.0.1:{port}/gone.xml?api_key={API_KEY}&x=1"},
        {
            "id": "broken",
            "url": f"http://127.0.0.1:{port}/status?code=500&retry_after=5&sig={SIGNATURE}",
        },
        {
            "id": "moved",
            "url": f"http://127.0.0.1:{port}/redirect?to=/gone.xml%3Ftoken%3D{TOKEN}&token={TOKEN}",
        },
    ]


def _config_dir(tmp_path: Path, server: MisbehavingServer, sink: MailSink) -> Path:
    return write_config(
        tmp_path / "config",
        database_url=f"sqlite:///{tmp_path / 'sw.db'}",
        feeds=_feeds(server),
        smtp_port=sink.port,
        subscriptions=[{"id": "compliance", "recipients": [RECIPIENT]}],
        settings={
            "smtp": {"username": USER},
            "alerts": {"pending_alarm_hours": 0},  # anything pending becomes an operator notice
            "operators": [OPERATOR],
        },
    )


def _stored_text(config_dir: Path) -> str:
    """Every error message and link the database holds."""
    rt = Runtime.open(load_config(config_dir, environ={}), migrate=False)
    try:
        with rt.sessions() as s:
            parts: list[Any] = []
            parts += s.scalars(select(FetchLog.error))
            parts += s.scalars(select(Feed.last_error))
            parts += s.scalars(select(Delivery.last_error))
            parts += s.scalars(select(Notice.message))
            parts += s.scalars(select(Article.url))
    finally:
        rt.close()
    return "\n".join(str(p) for p in parts if p)


def _log_text(records: list[logging.LogRecord]) -> str:
    out = []
    for r in records:
        if r.name.startswith("mail.log"):  # aiosmtpd: the test's SMTP server, not our process
            continue
        out.append(r.getMessage())
        if r.exc_info:
            out.append(logging.Formatter().formatException(r.exc_info))
    return "\n".join(out)


def test_secrets_stay_out_of_logs_errors_and_mail_in_process(
    tmp_path: Path, server: MisbehavingServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A wrong password first (AUTH refused), then the right one.
    with MailSink(tmp_path / "refusing", auth={USER: "another-password"}) as sink:
        config_dir = _config_dir(tmp_path, server, sink)
        config = load_config(config_dir, environ={"SANCTIONS_WATCH_SMTP_PASSWORD": PASSWORD})
        assert config.smtp.password == PASSWORD and PASSWORD not in repr(config)
        rt = Runtime.open(config)
        refused = run_once(rt, now=NOW, run_id="refused")
        rt.close()
        assert refused["alerts_sent"] == 0 and sink.messages == []
    port = sink.port
    with MailSink(tmp_path / "accepting", port=port, auth={USER: PASSWORD}) as sink:
        rt = Runtime.open(config)
        accepted = run_once(rt, now=NOW.replace(hour=18), run_id="accepted")
        rt.close()
        assert accepted["alerts_sent"] >= 1 and sink.logins
        received = b"\n".join(sink.messages).decode("utf-8", "replace")
    assert (refused["feeds_ok"], refused["feeds_failed"]) == (1, 3)

    logged = _log_text(caplog.records)
    assert "authentication refused" in logged  # the AUTH failure is reported, without the secret
    assert leaks(logged) == []
    assert leaks(json.dumps([refused.as_dict(), accepted.as_dict()])) == []
    assert leaks(_stored_text(config_dir)) == []
    assert leaks(received) == []  # neither the alerts nor the operator notices carry them
    rt = Runtime.open(config, migrate=False)
    with rt.sessions() as s:
        links = [u for u in s.scalars(select(Article.url)) if u]
    rt.close()
    assert links and all("@" not in u and "token" not in u for u in links), links


def test_secrets_stay_out_of_a_cli_runs_output(tmp_path: Path, server: MisbehavingServer) -> None:
    # The riskier path: AUTH refused (the error is logged and stored). The in-process test above
    # covers an accepted AUTH as well.
    with MailSink(tmp_path / "refusing", auth={USER: "another-password"}) as sink:
        config_dir = _config_dir(tmp_path, server, sink)
        out = run_cli(
            config_dir, "-v", "run-once", "--json", env={"SANCTIONS_WATCH_SMTP_PASSWORD": PASSWORD}
        )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "DEBUG" in out.stderr  # the most talkative level was on
    assert "authentication refused" in out.stderr
    assert leaks(out.stdout + out.stderr) == [], leaks(out.stdout + out.stderr)
    assert leaks(_stored_text(config_dir)) == []


def test_a_database_password_stays_out_of_the_error_output(tmp_path: Path) -> None:
    config_dir = write_config(
        tmp_path / "config",
        database_url=f"postgresql://sw:{DB_PASSWORD}@127.0.0.1:1/sanctions",
        feeds=[{"id": "f", "url": "http://127.0.0.1:9/feed.xml"}],
    )
    out = run_cli(config_dir, "-v", "run-once", "--json")
    assert out.returncode != 0
    assert "127.0.0.1" in out.stderr  # it says where it failed ...
    assert DB_PASSWORD not in out.stdout + out.stderr  # ... but not with what
