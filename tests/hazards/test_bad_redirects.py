"""Hazard: one bad redirect stops every feed (issue 10).

httpx builds the *next* request of every 30x response, even when the caller follows redirects
itself; a ``Location`` it cannot turn into a URL (``javascript:...``, ``mailto:``, ``data:``,
``http:moved.xml``, a host that is not valid IDNA) raises ``httpx.InvalidURL`` or
``idna.IDNAError`` from ``client.send``, which no transport-error handler catches: the exception
left ``ingest`` and the whole cycle exited 1 with nothing stored or mailed.

Pass criterion: every error the HTTP client raises while sending, following or refusing a redirect
is that feed's :class:`~pipeline.errors.FetchError` (the webhook sender's: a permanent
:class:`~pipeline.deliver.webhook.WebhookError`); a cycle with several such feeds and a good one
stores and mails the good one, records the others' errors, and exits 0. A property-based run over
arbitrary ``Location`` values (httpx ``MockTransport``, a fake resolver: nothing leaves the process)
finds no other exception.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from _httpfixtures import FEED_XML, MisbehavingServer, install_fake_dns, misbehaving_server
from hazardkit import RECIPIENT, rss, run_cli, sample_items, write_feed
from helpers import write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from pipeline.config import FetchPolicy
from pipeline.deliver.webhook import WebhookError, WebhookPolicy, WebhookSender
from pipeline.errors import FetchError
from pipeline.ingest.fetch import fetch_feed
from pipeline.store.db import make_engine, make_sessionmaker
from pipeline.store.schema import Article, FetchLog

pytestmark = pytest.mark.timeout(180)

# Locations httpx cannot build a request for (each raised out of client.send before the fix).
BAD_LOCATIONS = {
    "javascript": "javascript:alert(document.cookie)",
    "mailto": "mailto:editor@news.example",
    "data": "data:text/xml,<rss/>",
    "scheme-relative-path": "http:moved.xml",
    "idna-invalid": "http://xn--a.example/feed.xml",
    "idna-emoji": "http://xn--ls8h.la/feed.xml",
    "idna-bad-label": "https://xn--zz-.example/rss",
}
POLICY = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), total_deadline=5)


@pytest.fixture
def server() -> MisbehavingServer:
    with misbehaving_server() as srv:
        yield srv


def _redirect_to(server: MisbehavingServer, location: str, code: int = 302) -> str:
    return server.url(f"/redirect?code={code}&to={quote(location, safe='')}")


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("name", sorted(BAD_LOCATIONS))
def test_a_location_the_http_client_cannot_use_is_that_feeds_fetch_error(
    server: MisbehavingServer, name: str, code: int
) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_feed(_redirect_to(server, BAD_LOCATIONS[name], code), policy=POLICY)
    message = str(caught.value)
    assert "redirect" in message, message
    assert server.paths() == ["/redirect"]  # nothing was requested from the bad target


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    location=st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda scheme, rest: scheme + rest,
            st.sampled_from(
                ["http:", "https:", "http://", "https://", "//", "javascript:", "HTTP://", "/"]
            ),
            st.text(max_size=60),
        ),
        st.sampled_from(sorted(BAD_LOCATIONS.values())),
    ),
    code=st.sampled_from([301, 302, 303, 307, 308]),
)
def test_any_location_ends_as_a_result_or_a_fetch_error(
    location: str, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/start":
            return httpx.Response(code, headers=[(b"Location", location.encode("utf-8"))])
        return httpx.Response(200, content=FEED_XML)

    with monkeypatch.context() as patch:
        install_fake_dns(patch, {"feeds.example": ["127.0.0.1"]})
        client = httpx.Client(transport=httpx.MockTransport(handler))
        with client, contextlib.suppress(FetchError):  # that feed's error: what ingest records
            fetch_feed("http://127.0.0.1/start", policy=POLICY, client=client)


@pytest.mark.parametrize("name", sorted(BAD_LOCATIONS))
def test_a_webhook_receiver_redirecting_anywhere_is_a_permanent_webhook_error(
    server: MisbehavingServer, name: str
) -> None:
    sender = WebhookSender(WebhookPolicy(timeout=5, allow_hosts=frozenset({"127.0.0.1"})))
    with pytest.raises(WebhookError) as caught:
        sender.send(
            {"text": "alert"},
            _redirect_to(server, BAD_LOCATIONS[name]),
            key="k1",
            now=datetime(2026, 11, 27, tzinfo=UTC),
        )
    assert caught.value.permanent


@pytest.mark.slow
def test_bad_redirects_fail_their_feeds_only_and_the_cycle_mails_the_good_one(
    server: MisbehavingServer, feed_dir: Path, feed_dir_server, mail_sink, tmp_path: Path
) -> None:
    s = sample_items()
    good = rss(
        [
            {
                "title": s["origin"]["title"],
                "link": "https://good.example/1",
                "description": s["origin"]["summary"],
            }
        ]
    )
    write_feed(feed_dir, "good.xml", good)
    feeds = [
        {"id": f"bad-{name}", "url": _redirect_to(server, location)}
        for name, location in sorted(BAD_LOCATIONS.items())
    ]
    feeds.append({"id": "good", "url": feed_dir_server.url_for("good.xml"), "language": "en"})
    database = tmp_path / "sw.db"
    config_dir = write_config(
        tmp_path / "config",
        database_url=f"sqlite:///{database}",
        feeds=feeds,
        smtp_port=mail_sink.port,
        subscriptions=[{"id": "compliance", "recipients": [RECIPIENT]}],
    )
    out = run_cli(config_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["feeds_ok"] == 1 and summary["feeds_failed"] == len(BAD_LOCATIONS), summary
    assert summary["articles_new"] == 1 and summary["alerts_sent"] >= 1, summary
    assert any(RECIPIENT.encode() in m for m in mail_sink.messages)
    engine = make_engine(f"sqlite:///{database}")
    try:
        with make_sessionmaker(engine)() as db:
            log = {row.feed_id: row for row in db.scalars(select(FetchLog))}
            stored = list(db.scalars(select(Article.feed_id)))
    finally:
        engine.dispose()
    assert stored == ["good"]
    for name in BAD_LOCATIONS:
        row = log[f"bad-{name}"]
        assert row.outcome == "error" and "redirect" in (row.error or ""), (name, row.error)
    assert log["good"].outcome == "ok"
