"""A failed task is reported to the operators: a notice, an email, and never an exception."""

from __future__ import annotations

import dataclasses
import email
from email import policy

from helpers import NOW
from sqlalchemy import select

from pipeline.deliver.mail import SmtpSender
from pipeline.deliver.notices import record_notice, report_task_failure, send_notices
from pipeline.devtools.mailsink import MailSink
from pipeline.jobs import Runtime, migrate
from pipeline.store.schema import Notice


def test_failed_task_is_recorded_and_emailed_once(make_config, sqlite_url, mail_sink) -> None:
    config = make_config(database_url=sqlite_url, smtp_port=mail_sink.port)
    migrate(config)
    args = {"dag_id": "sanctions_watch", "task_id": "classify_articles", "run_id": "scheduled__1",
            "try_number": 4, "error": RuntimeError("no servable model"), "now": NOW}  # fmt: skip
    assert report_task_failure(config, **args) is True
    assert report_task_failure(config, **args) is False  # the same failure is not reported twice
    with Runtime.open(config, migrate=False) as rt, rt.sessions() as s:
        notices = s.scalars(select(Notice)).all()
    assert len(notices) == 1 and notices[0].kind == "task_failed" and notices[0].sent_at is not None
    assert "classify_articles" in notices[0].message and "no servable model" in notices[0].message
    (raw,) = mail_sink.messages
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["To"] == "ops@example.org"
    assert "classify_articles" in msg.get_body(("plain",)).get_content()


def test_unreachable_database_is_logged_not_raised(make_config, caplog) -> None:
    config = dataclasses.replace(make_config(), database_url="postgresql://nobody@127.0.0.1:1/none")
    assert report_task_failure(config, dag_id="d", task_id="t", run_id="r", try_number=1,
                               error=ValueError("x"), now=NOW) is False  # fmt: skip
    assert any("could not report the failure" in r.getMessage() for r in caplog.records)


HOSTILE = 'SMTP said: 550 <script>alert("x")</script> & <img src=https://evil.example/t.gif>'


def test_notice_email_is_rendered_escaped_under_one_message_id_scheme(
    make_config, sqlite_url, tmp_path
) -> None:
    ops = ["ops@example.org", "oncall@example.org"]
    busy = {"oncall@example.org": "451 4.2.1 mailbox busy, try later"}
    with MailSink(tmp_path / "first", refuse=busy) as sink:
        config = make_config(
            database_url=sqlite_url,
            smtp_port=sink.port,
            settings={"operators": ops, "smtp": {"sender": "sw <alerts@watch.example>"}},
        )
        with Runtime.open(config) as rt:
            with rt.sessions.begin() as s:
                assert record_notice(s, "k1", "delivery_failed", HOSTILE, NOW)
                assert record_notice(s, "k2", "feed_silent", "Feed f is silent.", NOW)
            # One operator's server refused: nothing is marked sent, both are tried again.
            assert send_notices(rt.sessions, config, SmtpSender(config.smtp), now=NOW) == 0
            first = [email.message_from_bytes(m, policy=policy.default) for m in sink.messages]
    with (
        MailSink(tmp_path / "second", port=sink.port) as sink2,
        Runtime.open(config, migrate=False) as rt,
    ):
        assert send_notices(rt.sessions, config, SmtpSender(config.smtp), now=NOW) == 2
        assert send_notices(rt.sessions, config, SmtpSender(config.smtp), now=NOW) == 0
        second = [email.message_from_bytes(m, policy=policy.default) for m in sink2.messages]
    assert [str(m["To"]) for m in first] == ["ops@example.org"]
    assert sorted(str(m["To"]) for m in second) == sorted(ops)
    again = next(m for m in second if str(m["To"]) == "ops@example.org")
    assert again["Message-ID"] == first[0]["Message-ID"]  # the copy can be collapsed
    ids = {str(m["To"]): m["Message-ID"] for m in second}
    assert ids["ops@example.org"] != ids["oncall@example.org"]
    for message_id in ids.values():  # alerts/ids.py's scheme, the sender's domain
        assert message_id.startswith("<sw.notice.") and message_id.endswith("@watch.example>")
    assert again["Subject"] == "[sanctions-watch] operator notice: 2 problems need attention"
    html = again.get_body(("html",)).get_content()
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img" in html
    text = again.get_body(("plain",)).get_content()
    assert "- [delivery_failed] 2026-11-27 12:00 UTC: " + HOSTILE in text
    assert "2 problems that need an operator" in text and "Feed f is silent." in text
