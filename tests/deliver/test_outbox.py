"""Alerts and the outbox against a real SMTP server (aiosmtpd on loopback) and real databases."""

from __future__ import annotations

import email
import threading
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from builders import EVENTS, entry
from helpers import NOW
from sqlalchemy import func, select, update

from pipeline.classify.model import Evidence
from pipeline.deliver.mail import SmtpSender
from pipeline.deliver.outbox import deliver_pending
from pipeline.devtools.mailsink import MailSink
from pipeline.jobs import Runtime, record_alerts
from pipeline.store.articles import sync_feeds, upsert_entries
from pipeline.store.schema import Alert, Article, Classification, Delivery, Notice

HOSTILE_TITLE = 'Arms seized <script>alert("t")</script>\r\nBcc: victim@example.org'
HOSTILE_SUMMARY = (
    '<form action="https://evil.example"><input type="password"></form>'
    '<img src="https://tracker.example/pixel.gif"> <a href="javascript:alert(1)">click</a> Shells reached the port.'
)


# Distinct events, so that distinct titles are distinct stories (near-duplicates are grouped).


def seed(rt: Runtime, titles: list[str], *, summary: str | None = None) -> list[int]:
    """Store articles and a flagged classification for each, as the classify stage would.

    Without ``summary`` each title gets a different event's text (one story each).
    """
    with rt.sessions.begin() as s:
        sync_feeds(s, rt.config.feeds)
        ids = upsert_entries(
            s,
            [
                entry(
                    rt.config.feeds[0].id,
                    t,
                    url=f"https://x.example/{i}",
                    summary=summary or EVENTS[i % len(EVENTS)],
                )
                for i, t in enumerate(titles)
            ],
            now=NOW,
        ).new_ids
        for article_id in ids:
            ev = Evidence(
                sentences=("Shells reached the port.",), terms=("shells",), regimes=("dprk",)
            )
            s.add(
                Classification(
                    article_id=article_id,
                    revision=1,
                    model_version="test-v1",
                    score=0.97,
                    threshold=0.5,
                    flagged=True,
                    regimes=["dprk"],
                    evidence=ev.as_dict(),
                    classified_at=NOW,
                )
            )
    return list(ids)


@pytest.fixture
def runtime(make_config, db_url: str, mail_sink: MailSink, tmp_path: Path):
    config = make_config(database_url=db_url, smtp_port=mail_sink.port)
    with Runtime.open(config) as rt:
        yield rt


def deliver(rt: Runtime, *, now=NOW, owner="w1"):
    return deliver_pending(
        rt.sessions, rt.config, SmtpSender(rt.config.smtp), now=now, owner=owner, regimes=rt.regimes
    )


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def test_one_mail_per_alert_per_recipient_multipart_and_escaped(
    runtime: Runtime, mail_sink: MailSink
) -> None:
    seed(runtime, [HOSTILE_TITLE], summary=HOSTILE_SUMMARY)
    assert record_alerts(runtime, now=NOW)["alerts_new"] == 1
    report = deliver(runtime)
    assert report.sent == 2 and report.pending == 0
    msgs = [parse(m) for m in mail_sink.messages]
    assert sorted(m["To"] for m in msgs) == ["analyst@example.org", "compliance@example.org"]
    for m in msgs:
        assert m.get_content_type() == "multipart/alternative"
        subject = m["Subject"]
        assert (
            "\n" not in subject
            and "\r" not in subject
            and subject.startswith("[sanctions-watch] HIGH")
        )
        assert m["Bcc"] is None
        html = m.get_body(("html",)).get_content()
        text = m.get_body(("plain",)).get_content()
        assert "<script>" not in html and "&lt;script&gt;" in html
        # Feed text appears only as escaped text: no active markup, no javascript: link, no remote image.
        assert 'href="javascript' not in html and "<form" not in html and "<img" not in html
        assert "<input" not in html and "<script" not in html
        assert "https://main.un.org/securitycouncil/en/sanctions/1718" in html
        assert "Shells reached the port." in text and "1718" in text
    ids = {m["Message-ID"] for m in msgs}
    assert len(ids) == 2 and all(i.startswith("<sw.") for i in ids)


def test_rerun_and_retry_send_nothing_twice(runtime: Runtime, mail_sink: MailSink) -> None:
    seed(runtime, ["Story one", "Story two"])
    record_alerts(runtime, now=NOW)
    record_alerts(runtime, now=NOW)  # a retried task
    deliver(runtime)
    deliver(runtime, now=NOW + timedelta(hours=1))  # a re-run
    assert len(mail_sink.messages) == 4
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 2


def test_smtp_down_leaves_pending_then_delivers(runtime: Runtime, mail_sink: MailSink) -> None:
    seed(runtime, ["Story"])
    record_alerts(runtime, now=NOW)
    mail_sink.stop()
    report = deliver(runtime)
    assert (report.sent, report.retried, report.pending) == (0, 2, 2)
    with runtime.sessions() as s:
        d = s.scalars(select(Delivery)).first()
        assert (
            d.status == "pending"
            and d.attempts == 1
            and d.next_attempt_at > NOW
            and "unreachable" in d.last_error
        )
    # Not due yet: nothing is tried. After the back-off: delivered.
    mail_sink.start()
    assert deliver(runtime, now=NOW + timedelta(seconds=10)).sent == 0
    assert deliver(runtime, now=NOW + timedelta(hours=1)).sent == 2


def test_one_recipient_451_others_delivered_then_550_fails_and_notifies(
    make_config, sqlite_url: str, tmp_path: Path
) -> None:
    refuse = {
        "analyst@example.org": "451 4.3.0 mailbox busy, try later",
        "gone@example.org": "550 5.1.1 no such user",
    }
    with MailSink(tmp_path / "box", refuse=refuse) as sink:
        subs = [
            {
                "id": "s",
                "recipients": ["compliance@example.org", "analyst@example.org", "gone@example.org"],
            }
        ]
        rt = Runtime.open(
            make_config(database_url=sqlite_url, smtp_port=sink.port, subscriptions=subs)
        )
        seed(rt, ["Story"])
        record_alerts(rt, now=NOW)
        report = deliver(rt)
        assert (report.sent, report.retried, report.failed) == (1, 1, 1)
        assert [parse(m)["To"] for m in sink.messages] == ["compliance@example.org"]
        with rt.sessions() as s:
            status = dict(s.execute(select(Delivery.recipient, Delivery.status)).all())
            notices = s.scalars(select(Notice.message)).all()
        assert status == {
            "compliance@example.org": "sent",
            "analyst@example.org": "pending",
            "gone@example.org": "failed",
        }
        assert len(notices) == 1 and "gone@example.org" in notices[0] and "550" in notices[0]
        rt.close()


def test_two_senders_on_one_outbox_send_each_row_once(
    runtime: Runtime, mail_sink: MailSink
) -> None:
    seed(runtime, [f"Story {i}" for i in range(10)])
    record_alerts(runtime, now=NOW)
    results = []
    threads = [
        threading.Thread(target=lambda o=o: results.append(deliver(runtime, owner=o)))
        for o in ("w1", "w2")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in results) == 20
    assert len(mail_sink.messages) == 20
    assert len({parse(m)["Message-ID"] for m in mail_sink.messages}) == 20


def test_expired_lease_is_reclaimed_with_same_message_id(
    runtime: Runtime, mail_sink: MailSink
) -> None:
    seed(runtime, ["Story"])
    record_alerts(runtime, now=NOW)
    with runtime.sessions.begin() as s:  # a worker claimed the rows and died
        s.execute(
            update(Delivery).values(
                status="sending", lease_owner="dead", lease_until=NOW + timedelta(seconds=60)
            )
        )
        expected = set(s.scalars(select(Delivery.message_id)))
    assert deliver(runtime).sent == 0  # lease still held
    assert deliver(runtime, now=NOW + timedelta(minutes=2)).sent == 2
    assert {parse(m)["Message-ID"] for m in mail_sink.messages} == expected


def test_subscription_filters(make_config, sqlite_url: str, mail_sink: MailSink) -> None:
    subs = [
        {"id": "korea", "recipients": ["korea@example.org"], "regimes": ["dprk"]},
        {"id": "libya", "recipients": ["libya@example.org"], "regimes": ["libya"]},
        {"id": "critical", "recipients": ["crit@example.org"], "min_severity": "critical"},
        {"id": "kw", "recipients": ["kw@example.org"], "keywords": ["tanker"]},
        {"id": "fr", "recipients": ["fr@example.org"], "languages": ["fr"]},
        {"id": "digest", "recipients": ["digest@example.org"], "mode": "digest"},
    ]
    rt = Runtime.open(
        make_config(database_url=sqlite_url, smtp_port=mail_sink.port, subscriptions=subs)
    )
    seed(rt, ["Story about shells"])
    record_alerts(rt, now=NOW)
    with rt.sessions() as s:
        assert sorted(s.scalars(select(Delivery.recipient))) == ["korea@example.org"]
        assert s.scalar(select(Article.lang)) == "en"
    rt.close()


def test_huge_summary_in_the_database_is_capped_in_the_email(
    runtime: Runtime, mail_sink: MailSink
) -> None:
    seed(
        runtime,
        ["Story with a huge summary"],
        summary="Shells reached the port. " + "word " * 1_000_000,
    )
    record_alerts(runtime, now=NOW)
    deliver(runtime)
    sizes = [len(m) for m in mail_sink.messages]
    assert sizes and max(sizes) < 200_000


def test_messages_prepared_in_chunks_equal_those_prepared_one_by_one(
    runtime: Runtime, mail_sink: MailSink, monkeypatch
) -> None:
    """The stories of a chunk of outbox rows are read together; every message (headers, text and
    HTML) is the one the row alone would get, and every row is still sent once."""
    import pipeline.deliver.outbox as outbox

    seed(runtime, [f"Story {n}" for n in range(5)])
    assert record_alerts(runtime, now=NOW)["alerts_new"] == 5
    subs = {s.id: s for s in runtime.config.subscriptions}
    with runtime.sessions() as s:
        ids = list(s.scalars(select(Delivery.id).order_by(Delivery.id)))
        assert len(ids) == 10
        together = outbox._prepare_many(s, ids, runtime.config, subs, runtime.regimes, None, NOW)
    alone = []
    for delivery_id in ids:
        with runtime.sessions() as s:
            row = s.get(Delivery, delivery_id)
            alone.append(outbox._prepare(s, row, runtime.config, subs, runtime.regimes, None, NOW))
    assert [d.id for d, _, _ in together] == ids
    for (_, message, latency), (message1, latency1) in zip(together, alone, strict=True):
        # (MIME boundaries are random: compare headers and parts, not bytes)
        assert [(k, v) for k, v in message.items() if k != "Content-Type"] == [
            (k, v) for k, v in message1.items() if k != "Content-Type"
        ]
        for kind in ("plain", "html"):
            got, want = message.get_body((kind,)), message1.get_body((kind,))
            assert got.get_content() == want.get_content()
        assert latency == latency1
    monkeypatch.setattr(outbox, "PREPARE_CHUNK", 3)
    report = deliver(runtime)
    assert (report.sent, report.pending) == (10, 0)
    assert len({parse(m)["Message-ID"] for m in mail_sink.messages}) == 10
