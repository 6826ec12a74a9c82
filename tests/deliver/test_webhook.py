"""The webhook channel against a real HTTP server on loopback: Slack, Teams and JSON payloads with
hostile feed text, the outbox's retry rules (5xx, 429 with Retry-After, connection errors, a server
that never answers), permanent failures reported with the URL masked, the address policy, digests,
and two senders on one outbox."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from builders import BASE, BASE_TITLE, FEEDS, OTHER, OTHER_TITLE, add_article
from helpers import NOW
from sqlalchemy import select

from pipeline.deliver.webhook import WebhookPolicy, WebhookSender, choose_format
from pipeline.errors import DeliveryError
from pipeline.jobs import Runtime, compose_digests, deliver, record_alerts
from pipeline.store.schema import Delivery, Notice

HOSTILE_TITLE = "Arms seized <!channel> <script>alert(1)</script> <javascript:alert(1)|click here> & [x](https://evil.example)"
HOSTILE = BASE + ' <img src="https://tracker.example/p.gif"> <a href="javascript:alert(2)">more</a>'
TOKEN_PATH = "/services/T0001/B0002/SeCrEtToKeN42"


@dataclass
class Hook:
    """What the loopback webhook server received, and what it answers next."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)


@contextmanager
def webhook_server() -> Iterator[tuple[str, Hook]]:
    hook = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with hook.lock:
                hook.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                status, headers, payload = hook.replies.pop(0) if hook.replies else (200, {}, b"ok")
            if hook.delay:
                hook.release.wait(hook.delay)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hook
    finally:
        hook.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def hook_server():
    with webhook_server() as pair:
        yield pair


def hook_runtime(
    make_config,
    db_url: str,
    url: str,
    *,
    fmt: str | None = None,
    mode: str = "immediate",
    settings=None,
) -> Runtime:
    sub: dict[str, Any] = {"id": "chat", "channel": "webhook", "recipients": [url], "mode": mode}
    if fmt:
        sub["format"] = fmt
    return Runtime.open(
        make_config(database_url=db_url, feeds=FEEDS, subscriptions=[sub], settings=settings)
    )


def test_slack_payload_escapes_feed_text(make_config, db_url: str, hook_server) -> None:
    base, hook = hook_server
    rt = hook_runtime(make_config, db_url, base + TOKEN_PATH)
    add_article(
        rt,
        feed="wire",
        title=HOSTILE_TITLE,
        summary=HOSTILE,
        url="https://wire.example/a?x=1|y",
        sentences=("<@U123> ships met <here>",),
    )
    record_alerts(rt, now=NOW)
    report = deliver(rt, now=NOW)
    assert (report["sent"], report["webhook_sent"]) == (1, 1)
    (req,) = hook.requests
    assert req["path"] == TOKEN_PATH and req["headers"]["Content-Type"].startswith(
        "application/json"
    )
    assert req["headers"]["Idempotency-Key"].startswith("<sw.")
    body = req["body"]
    assert set(body) == {"text", "blocks"} and body["blocks"][0]["type"] == "header"
    raw = json.dumps(body)
    assert (
        "<!channel>" not in raw
        and "<javascript:" not in raw
        and "<@U123>" not in raw
        and "<script>" not in raw
    )
    assert "&lt;!channel&gt;" in raw and "&amp;" in raw
    assert body["blocks"][1]["text"]["text"].startswith("*What is alleged:* Kind: ")
    section = body["blocks"][2]["text"]["text"]
    assert section.startswith(
        "*<https://wire.example/a?x=1%7Cy|Arms seized &lt;!channel&gt;"
    )  # one safe link
    assert "tracker.example" not in raw and "javascript:alert(2)" not in raw
    assert "Alert 1" in body["blocks"][-1]["elements"][0]["text"]
    rt.close()


def test_teams_adaptive_card_keeps_feed_text_out_of_markdown(
    make_config, sqlite_url: str, hook_server
) -> None:
    base, hook = hook_server
    rt = hook_runtime(make_config, sqlite_url, base + "/workflows/abc", fmt="teams")
    add_article(rt, feed="wire", title=HOSTILE_TITLE, summary=HOSTILE, url="javascript:alert(3)")
    record_alerts(rt, now=NOW)
    assert deliver(rt, now=NOW)["webhook_sent"] == 1
    body = hook.requests[0]["body"]
    assert body["type"] == "message"
    card = body["attachments"][0]["content"]
    assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    # Feed text only in RichTextBlock text runs (rendered literally), never in a markdown TextBlock.
    assert {b["type"] for b in card["body"]} == {"RichTextBlock"}
    title_runs = [
        r["text"] for b in card["body"] for r in b["inlines"] if "Arms seized" in r["text"]
    ]
    assert title_runs and title_runs[0].startswith("Arms seized <!channel>")
    urls = [a["url"] for a in card["actions"]]
    assert all(u.startswith("https://") for u in urls) and not any("javascript" in u for u in urls)
    assert "https://main.un.org/securitycouncil/en/sanctions/1718" in urls
    rt.close()


def test_json_format_and_format_by_host(make_config, sqlite_url: str, hook_server) -> None:
    base, hook = hook_server
    rt = hook_runtime(make_config, sqlite_url, base + "/hook", fmt="json")
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1")
    record_alerts(rt, now=NOW)
    deliver(rt, now=NOW)
    body = hook.requests[0]["body"]
    assert (
        body["type"] == "sanctions-watch.alert"
        and body["severity"] == "high"
        and body["kind"] == "new"
    )
    assert (
        body["regimes"][0]["resolutions"][0] == 1718
        and body["sources"][0]["url"] == "https://wire.example/1"
    )
    assert choose_format("https://hooks.slack.com/services/T/B/X") == "slack"
    assert choose_format("https://contoso.webhook.office.com/webhookb2/x") == "teams"
    assert choose_format("https://prod-12.westeurope.logic.azure.com/workflows/x") == "teams"
    assert choose_format("https://chat.example.org/hooks/x") == "slack"
    rt.close()


def test_5xx_and_429_are_retried_with_retry_after_then_sent(
    make_config, db_url: str, hook_server
) -> None:
    base, hook = hook_server
    rt = hook_runtime(make_config, db_url, base + TOKEN_PATH)
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1")
    record_alerts(rt, now=NOW)
    hook.replies += [(503, {}, b"maintenance"), (429, {"Retry-After": "3600"}, b"rate_limited")]
    assert deliver(rt, now=NOW)["retried"] == 1
    with rt.sessions() as s:
        row = s.scalars(select(Delivery)).one()
        assert (
            row.status == "pending"
            and "HTTP 503" in row.last_error
            and TOKEN_PATH not in row.last_error
        )
    t1 = NOW + timedelta(hours=1)
    assert deliver(rt, now=t1)["retried"] == 1
    with rt.sessions() as s:
        row = s.scalars(select(Delivery)).one()
        assert row.next_attempt_at >= t1 + timedelta(seconds=3600) and "429" in row.last_error
    assert deliver(rt, now=t1 + timedelta(minutes=30))["sent"] == 0  # Retry-After honoured
    assert deliver(rt, now=t1 + timedelta(hours=2))["sent"] == 1
    keys = {r["headers"]["Idempotency-Key"] for r in hook.requests}
    assert len(hook.requests) == 3 and len(keys) == 1
    rt.close()


def test_4xx_fails_permanently_and_the_notice_masks_the_url(
    make_config, sqlite_url: str, hook_server
) -> None:
    base, hook = hook_server
    rt = hook_runtime(make_config, sqlite_url, base + TOKEN_PATH)
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1")
    record_alerts(rt, now=NOW)
    hook.replies.append((404, {}, b"no_service"))
    assert deliver(rt, now=NOW)["failed"] == 1
    with rt.sessions() as s:
        (notice,) = s.scalars(select(Notice.message)).all()
        row = s.scalars(select(Delivery)).one()
    assert row.status == "failed" and "HTTP 404 no_service" in row.last_error
    assert "SeCrEtToKeN42" not in notice and f"{base}/…" in notice
    assert deliver(rt, now=NOW + timedelta(days=1))["sent"] == 0 and len(hook.requests) == 1
    rt.close()


def test_redirect_is_not_followed(make_config, sqlite_url: str, hook_server) -> None:
    base, hook = hook_server
    rt = hook_runtime(make_config, sqlite_url, base + "/hook")
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1")
    record_alerts(rt, now=NOW)
    hook.replies.append((302, {"Location": "http://169.254.169.254/latest"}, b""))
    assert deliver(rt, now=NOW)["failed"] == 1 and len(hook.requests) == 1
    rt.close()


def test_connection_refused_is_retried(make_config, sqlite_url: str) -> None:
    with webhook_server() as (base, _):
        pass  # the port is closed now
    rt = hook_runtime(make_config, sqlite_url, base + "/hook")
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1")
    record_alerts(rt, now=NOW)
    report = deliver(rt, now=NOW)
    assert (report["retried"], report["failed"]) == (1, 0)
    rt.close()


def test_a_webhook_that_never_answers_is_given_up_within_the_timeout(
    make_config, sqlite_url: str, hook_server
) -> None:
    base, hook = hook_server
    hook.delay = 30
    rt = hook_runtime(
        make_config, sqlite_url, base + "/slow", settings={"alerts": {"webhook_timeout": 1}}
    )
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1")
    record_alerts(rt, now=NOW)
    started = time.monotonic()
    report = deliver(rt, now=NOW)
    assert time.monotonic() - started < 3
    assert report["retried"] == 1
    with rt.sessions() as s:
        assert "no answer within 1s" in s.scalars(select(Delivery.last_error)).one()
    rt.close()


def test_address_policy_refuses_private_targets_before_any_request(hook_server) -> None:
    base, hook = hook_server
    port = base.rsplit(":", 1)[1]
    strict = WebhookSender(WebhookPolicy(timeout=2))
    for url in (f"https://127.0.0.1:{port}/hook", f"http://127.0.0.1:{port}/hook"):
        with pytest.raises(DeliveryError) as err:
            strict.send({"text": "x"}, url, key="k", now=NOW)
        assert err.value.permanent
    rebinding = WebhookSender(
        WebhookPolicy(timeout=2), resolver=lambda host, p: ("93.184.216.34", "10.0.0.5")
    )
    with pytest.raises(DeliveryError) as err:
        rebinding.send({"text": "x"}, "https://hooks.example.org/x", key="k", now=NOW)
    assert err.value.permanent and "10.0.0.5" in str(err.value) and "private" in str(err.value)
    assert hook.requests == []


def test_webhook_digest(make_config, sqlite_url: str, hook_server) -> None:
    base, hook = hook_server
    rt = hook_runtime(make_config, sqlite_url, base + TOKEN_PATH, mode="digest")
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1")
    add_article(
        rt, feed="wire", title=OTHER_TITLE, summary=OTHER, url="https://wire.example/2", score=0.6
    )
    record_alerts(rt, now=NOW)
    assert deliver(rt, now=NOW)["sent"] == 0
    morning = NOW.replace(hour=7, minute=5) + timedelta(days=1)
    assert compose_digests(rt, now=morning)["digests_new"] == 1
    assert deliver(rt, now=morning)["webhook_sent"] == 1
    body = hook.requests[0]["body"]
    assert body["text"].startswith("[sanctions-watch] Daily digest 2026-11-28 · 2 stories")
    section = body["blocks"][1]["text"]["text"]
    assert section.index("*HIGH*") < section.index("*MEDIUM*")
    rt.close()


def test_two_senders_on_one_webhook_outbox_post_each_row_once(
    make_config, db_url: str, hook_server
) -> None:
    base, hook = hook_server
    rt = hook_runtime(make_config, db_url, base + "/hook")
    from builders import EVENTS

    for i, event in enumerate(EVENTS[:6]):
        add_article(
            rt, feed="wire", title=f"Event {i}", summary=event, url=f"https://wire.example/{i}"
        )
    assert record_alerts(rt, now=NOW)["alerts_new"] == 6
    results: list[dict[str, int]] = []

    def run() -> None:
        results.append(deliver(rt, now=NOW))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["webhook_sent"] for r in results) == 6
    assert (
        len(hook.requests) == 6
        and len({r["headers"]["Idempotency-Key"] for r in hook.requests}) == 6
    )
    rt.close()


CRASHING_DELIVER = """
import sys
from datetime import datetime
from pipeline.config import load_config
from pipeline.jobs import Runtime, deliver
rt = Runtime.open(load_config(sys.argv[1], environ={}))
deliver(rt, now=datetime.fromisoformat(sys.argv[2]))
"""


@pytest.mark.parametrize(
    "point", ["deliver.before_send", "deliver.after_send", "deliver.after_commit"]
)
def test_crash_points_surround_the_webhook_send(
    make_config, sqlite_url: str, hook_server, point: str
) -> None:
    """A worker killed at each point: nothing lost; at most one extra POST, with the same key."""
    import os
    import subprocess
    import sys

    base, hook = hook_server
    rt = hook_runtime(make_config, sqlite_url, base + "/hook")
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1")
    record_alerts(rt, now=NOW)
    env = {**os.environ, "SANCTIONS_WATCH_CRASH_AT": point}
    out = subprocess.run(
        [sys.executable, "-c", CRASHING_DELIVER, str(rt.config.config_dir), NOW.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 70, out.stderr[-2000:]
    posted = len(hook.requests)
    assert posted == (0 if point == "deliver.before_send" else 1)
    later = NOW + timedelta(seconds=rt.config.alerts.lease_seconds + 1)
    deliver(rt, now=later)
    deliver(rt, now=later + timedelta(hours=1))
    expected = (
        1 if point != "deliver.after_send" else 2
    )  # only a crash between reply and commit repeats
    assert len(hook.requests) == expected
    assert len({r["headers"]["Idempotency-Key"] for r in hook.requests}) == 1
    with rt.sessions() as s:
        assert s.scalars(select(Delivery.status)).one() == "sent"
    rt.close()


KOREAN_TITLE = '북한, 나진항서 러시아에 포탄 컨테이너 300여 개 보내…정부 "안보리 결의 위반"'
KOREAN = (
    "정부 소식통은 15일 위성사진 분석 결과 북한이 러시아에 포탄과 탄약이 담긴 컨테이너 약 300개를 "
    "보냈다고 밝혔다. 컨테이너는 나진항에서 블라디보스토크로 옮겨졌다."
)


def test_json_webhook_carries_facts_kinds_and_the_latency_it_records(
    make_config, db_url: str, hook_server
) -> None:
    """A Korean story through the JSON webhook: the English facts line and the kinds are in the body,
    the latency is counted to the send that succeeded (a retried row shows the later figure), and
    the delivery row records exactly the figures the body shows."""
    base, hook = hook_server
    rt = hook_runtime(make_config, db_url, base + "/hook", fmt="json")
    add_article(
        rt, feed="daily", title=KOREAN_TITLE, summary=KOREAN, url="https://daily.example/ko/1",
        lang="ko",
    )  # fmt: skip
    record_alerts(rt, now=NOW)
    hook.replies.append((503, {}, b"busy"))
    assert deliver(rt, now=NOW + timedelta(minutes=2))["retried"] == 1
    with rt.sessions() as s:
        row = s.scalars(select(Delivery)).one()
        assert (row.latency_published_s, row.latency_first_seen_s) == (None, None)
    sent_at = NOW + timedelta(hours=2, minutes=5)
    assert deliver(rt, now=sent_at)["webhook_sent"] == 1
    first, second = (r["body"] for r in hook.requests)
    assert first["latency"]["from_first_seen_seconds"] == 120  # what the failed attempt said
    body = second
    assert body["facts"].startswith("Kind: arms transfer · Regime: DPRK")
    assert "Who: North Korea → Russia" in body["facts"] and "Rajin" in body["facts"]
    assert body["allegation"]["kinds"] == ["arms-transfer"]
    assert body["allegation"]["kind_labels"] == ["arms transfer"]
    assert body["breach_kinds"] == "arms transfer" and body["title"] == KOREAN_TITLE
    # builders.add_article: published 30 min before first sight (NOW)
    assert body["latency"] == {
        "sent_at": sent_at.isoformat(),
        "from_published_seconds": (2 * 3600 + 35 * 60),
        "from_first_seen_seconds": (2 * 3600 + 5 * 60),
        "text": "Published 2 h 35 min before this alert was sent; first seen by us 2 h 5 min before.",
    }
    with rt.sessions() as s:
        row = s.scalars(select(Delivery)).one()
        assert row.status == "sent" and row.sent_at == sent_at
        assert (row.latency_published_s, row.latency_first_seen_s) == (9300, 7500)
    rt.close()


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_chat_webhooks_show_the_english_facts_line_and_latency(
    make_config, sqlite_url: str, hook_server, fmt: str
) -> None:
    base, hook = hook_server
    rt = hook_runtime(make_config, sqlite_url, base + "/hook", fmt=fmt)
    add_article(
        rt, feed="daily", title=KOREAN_TITLE, summary=KOREAN, url="https://daily.example/ko/1",
        lang="ko",
    )  # fmt: skip
    record_alerts(rt, now=NOW)
    assert deliver(rt, now=NOW + timedelta(minutes=4))["webhook_sent"] == 1
    raw = json.dumps(hook.requests[0]["body"], ensure_ascii=False)
    assert "What is alleged:" in raw and "Kind: arms transfer · Regime: DPRK" in raw
    assert "North Korea → Russia" in raw
    assert "Original headline (Korean)" in raw
    assert "Published 34 min before this alert was sent; first seen by us 4 min before." in raw
    rt.close()
