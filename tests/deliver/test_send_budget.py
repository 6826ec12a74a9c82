"""One deliver run drains the outbox batch after batch (``alerts.batch_size`` rows claimed at a
time) within ``alerts.send_seconds``, over one SMTP connection (pipeline/deliver/outbox.py)."""

from __future__ import annotations

from builders import EVENTS, entry
from helpers import NOW
from sqlalchemy import func, select

from pipeline.classify.model import Evidence
from pipeline.deliver.mail import SmtpSender
from pipeline.deliver.outbox import deliver_pending
from pipeline.devtools.mailsink import MailSink
from pipeline.jobs import Runtime, record_alerts
from pipeline.store.articles import sync_feeds, upsert_entries
from pipeline.store.schema import Classification, Delivery


def _flag(rt: Runtime, count: int) -> None:
    """``count`` flagged articles of distinct events (one story, one alert each)."""
    with rt.sessions.begin() as s:
        sync_feeds(s, rt.config.feeds)
        entries = [
            entry(
                rt.config.feeds[0].id,
                f"Story {i}",
                url=f"https://x.example/{i}",
                summary=EVENTS[i % len(EVENTS)],
            )
            for i in range(count)
        ]
        ev = Evidence(sentences=("Shells reached the port.",), terms=("shells",), regimes=("dprk",))
        for article_id in upsert_entries(s, entries, now=NOW).new_ids:
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


def test_one_run_sends_every_batch_over_one_connection(
    make_config, sqlite_url: str, mail_sink: MailSink
) -> None:
    config = make_config(
        database_url=sqlite_url, smtp_port=mail_sink.port, settings={"alerts": {"batch_size": 2}}
    )
    with Runtime.open(config) as rt:
        _flag(rt, 3)
        assert record_alerts(rt, now=NOW).alerts_new == 3
        with rt.sessions() as s:
            rows = s.scalar(select(func.count()).select_from(Delivery))
        assert rows == 6  # 3 alerts x 2 recipients: three batches of 2
        sender = SmtpSender(rt.config.smtp)
        connects = 0
        connect = sender._connect

        def counted():  # type: ignore[no-untyped-def]
            nonlocal connects
            connects += 1
            return connect()

        sender._connect = counted  # type: ignore[method-assign]
        report = deliver_pending(rt.sessions, rt.config, sender, now=NOW, owner="w1")
    assert (report.sent, report.pending) == (6, 0)
    assert len(mail_sink.messages) == 6 and connects == 1


def test_the_send_budget_is_at_most_half_the_lease(
    make_config, sqlite_url: str, mail_sink: MailSink
) -> None:
    config = make_config(
        database_url=sqlite_url,
        smtp_port=mail_sink.port,
        settings={"alerts": {"batch_size": 1, "send_seconds": 3600, "lease_seconds": 5}},
    )
    assert config.alerts.send_seconds == 3600
    with Runtime.open(config) as rt:
        _flag(rt, 2)
        record_alerts(rt, now=NOW)
        sender = SmtpSender(rt.config.smtp)
        send = sender.send

        def slow(message, recipient):  # type: ignore[no-untyped-def]
            import time

            time.sleep(1.5)  # 4 rows x 1.5 s: past half the 5 s lease after the second batch
            send(message, recipient)

        sender.send = slow  # type: ignore[method-assign]
        report = deliver_pending(rt.sessions, rt.config, sender, now=NOW, owner="w1")
    assert report.sent == 2 and report.pending == 2  # the rest waits for the next run
