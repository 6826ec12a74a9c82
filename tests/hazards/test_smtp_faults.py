"""Hazards: the mail server misbehaves, and things go quiet.

* one recipient refused (451, then 550), the server down, a silent socket, 421 (greeting and one
  recipient): the other recipients are delivered, every attempt ends within a bounded time, a
  transient failure is retried with exponential back-off and then delivered once, a permanent one
  is ``failed`` and reported to the operators;
* a feed silent, or a mail stuck pending, beyond its threshold: the operators are notified (a
  notice, emailed once).

Real SMTP on loopback: :class:`pipeline.devtools.mailsink.MailSink` (aiosmtpd), and a raw socket server for
what aiosmtpd will not do (never answer; 421 at the greeting).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from hazardkit import OPERATOR, flag_all, mails, message_ids_to, rss, sample_items, write_feed
from helpers import NOW
from sqlalchemy import select

from pipeline.devtools.mailsink import MailSink
from pipeline.jobs import Runtime, check_health, deliver, ingest, record_alerts
from pipeline.store.schema import Delivery, Notice

BASE = 60.0  # alerts.backoff_base_seconds
RECIPIENTS = ["a@example.org", "b@example.org", "c@example.org", "d@example.org"]

pytestmark = pytest.mark.timeout(90)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _scripted(port: int, mode: str) -> Iterator[list[socket.socket]]:
    """``silent``: accepts and never says a word. ``busy``: greets with 421 and hangs up."""
    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)
            if mode == "busy":
                conn.sendall(b"421 4.3.2 too busy, try later\r\n")
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield held
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


def _runtime(make_config, feed_dir: Path, server, port: int, **alerts) -> Runtime:
    s = sample_items()
    write_feed(
        feed_dir,
        "one.xml",
        rss(
            [
                {
                    "title": s["origin"]["title"],
                    "link": "https://n.example/1",
                    "description": s["origin"]["summary"],
                }
            ]
        ),
    )
    config = make_config(
        feeds=[{"id": "one", "url": server.url_for("one.xml"), "max_silence_hours": 1}],
        smtp_port=port,
        subscriptions=[{"id": "all", "recipients": RECIPIENTS}],
        settings={
            "smtp": {"timeout": 1},
            "alerts": {"backoff_base_seconds": BASE, "pending_alarm_hours": 1, **alerts},
            "operators": [OPERATOR],
        },
    )
    rt = Runtime.open(config)
    ingest(rt, now=NOW, run_id="seed")
    flag_all(rt.sessions)
    assert record_alerts(rt, now=NOW)["alerts_new"] == 1
    return rt


def _rows(rt: Runtime) -> dict[str, Delivery]:
    with rt.sessions() as s:
        return {d.recipient: d for d in s.scalars(select(Delivery))}


def _timed_deliver(rt: Runtime, now) -> tuple[dict, float]:
    started = time.monotonic()
    report = deliver(rt, now=now)
    return report, time.monotonic() - started


def test_one_recipient_451_then_550_the_others_delivered_backoff_and_failure_reported(
    make_config, feed_dir, feed_dir_server, tmp_path: Path
) -> None:
    port = _free_port()
    refuse = {
        "a@example.org": "451 4.3.0 mailbox busy, try later",
        "b@example.org": "550 5.1.1 no such user",
    }
    with MailSink(tmp_path / "box1", port=port, refuse=refuse) as sink:
        rt = _runtime(make_config, feed_dir, feed_dir_server, port)
        report, elapsed = _timed_deliver(rt, NOW)
        rows = _rows(rt)
        assert (report["sent"], report["retried"], report["failed"]) == (2, 1, 1)
        assert elapsed < 5
        assert sorted(str(m["To"]) for m in mails(sink.messages)) == [
            "c@example.org",
            "d@example.org",
        ]
        a, b = rows["a@example.org"], rows["b@example.org"]
        assert a.status == "pending" and "451" in a.last_error
        first_wait = (a.next_attempt_at - NOW).total_seconds()
        assert 0.85 * BASE <= first_wait <= 1.15 * BASE
        assert b.status == "failed" and "550" in b.last_error
        # Still refused at the next attempt: the wait doubles.
        retry_at = a.next_attempt_at
        assert deliver(rt, now=retry_at - timedelta(seconds=1))["sent"] == 0  # not due yet
        assert deliver(rt, now=retry_at)["retried"] == 1
        second_wait = (_rows(rt)["a@example.org"].next_attempt_at - retry_at).total_seconds()
        assert 1.7 * BASE <= second_wait <= 2.3 * BASE
        # The permanent failure is reported to the operators (once).
        health = check_health(rt, now=retry_at)
        notices = [m for m in mails(sink.messages) if OPERATOR in str(m["To"])]
        assert health["notices_emailed"] >= 1 and len(notices) == 1
        assert "b@example.org" in notices[0].get_body(("plain",)).get_content()
        check_health(rt, now=retry_at + timedelta(minutes=5))
        assert len([m for m in mails(sink.messages) if OPERATOR in str(m["To"])]) == 1
    # The mailbox frees up: delivered, once; nobody got anything twice.
    with MailSink(tmp_path / "box2", port=port) as sink2:
        later = retry_at + timedelta(hours=1)
        assert deliver(rt, now=later)["sent"] == 1
        assert deliver(rt, now=later + timedelta(hours=1))["sent"] == 0
        assert [str(m["To"]) for m in mails(sink2.messages)] == ["a@example.org"]
    rt.close()


@pytest.mark.parametrize("fault", ["down", "silent", "421-greeting", "421-one-recipient"])
def test_server_down_silent_or_421_is_bounded_backed_off_then_delivered_once(
    make_config, feed_dir, feed_dir_server, tmp_path: Path, fault: str
) -> None:
    port = _free_port()
    rt = _runtime(make_config, feed_dir, feed_dir_server, port)
    try:
        if fault == "down":
            report, elapsed = _timed_deliver(rt, NOW)
            first_sent: list[bytes] = []
        elif fault in ("silent", "421-greeting"):
            with _scripted(port, "silent" if fault == "silent" else "busy"):
                report, elapsed = _timed_deliver(rt, NOW)
            first_sent = []
        else:
            refuse = {"a@example.org": "421 4.7.0 closing connection, try later"}
            with MailSink(tmp_path / "box1", port=port, refuse=refuse) as sink:
                report, elapsed = _timed_deliver(rt, NOW)
                first_sent = sink.messages
        # Bounded: smtp.timeout is 1 s; a dead server is not retried for every recipient.
        assert elapsed < 6, elapsed
        pending = [r for r in _rows(rt).values() if r.status == "pending"]
        expected_pending = 1 if fault == "421-one-recipient" else len(RECIPIENTS)
        assert (report["retried"], report["failed"]) == (expected_pending, 0), report
        assert len(pending) == expected_pending
        assert all((r.next_attempt_at - NOW).total_seconds() >= 0.85 * BASE for r in pending)
        # The others (with 421 to one recipient) were delivered on a fresh connection.
        assert len(first_sent) == len(RECIPIENTS) - expected_pending
        with MailSink(tmp_path / "box2", port=port) as sink2:
            assert deliver(rt, now=NOW + timedelta(seconds=10))["sent"] == 0  # backing off
            assert deliver(rt, now=NOW + timedelta(minutes=5))["sent"] == expected_pending
            assert deliver(rt, now=NOW + timedelta(minutes=10))["sent"] == 0
            second_sent = sink2.messages
        received = message_ids_to(first_sent + second_sent, "a@example.org")
        for rcpt in RECIPIENTS:
            assert sum(message_ids_to(first_sent + second_sent, rcpt).values()) == 1, rcpt
        assert len(received) == 1
    finally:
        rt.close()


def test_a_silent_feed_and_a_stuck_mail_notify_the_operators_once(
    make_config, feed_dir, feed_dir_server, tmp_path: Path
) -> None:
    port = _free_port()
    rt = _runtime(make_config, feed_dir, feed_dir_server, port)
    try:
        deliver(rt, now=NOW)  # SMTP down: the deliveries stay pending
        (feed_dir / "one.xml").unlink()  # the feed starts failing (404) ...
        ingest(rt, now=NOW + timedelta(minutes=30), run_id="404")
        with MailSink(tmp_path / "ops", port=port) as sink:
            # ... within the thresholds (1 h): nothing to say yet.
            assert check_health(rt, now=NOW + timedelta(minutes=50))["notices_new"] == 0
            later = NOW + timedelta(hours=2)
            health = check_health(rt, now=later)
            again = check_health(rt, now=later + timedelta(minutes=15))
            operator_mail = [m for m in mails(sink.messages) if OPERATOR in str(m["To"])]
            alert_mail = [m for m in mails(sink.messages) if OPERATOR not in str(m["To"])]
        with rt.sessions() as s:
            kinds = sorted(n.kind for n in s.scalars(select(Notice)))
    finally:
        rt.close()
    assert kinds == ["delivery_stuck"] * len(RECIPIENTS) + ["feed_silent"]
    assert health["notices_new"] == len(RECIPIENTS) + 1 and again["notices_new"] == 0
    assert len(operator_mail) == 1 and alert_mail == []  # health never sends the alerts themselves
    body = operator_mail[0].get_body(("plain",)).get_content()
    assert "Feed one" in body and "still pending" in body
