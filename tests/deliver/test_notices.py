"""A failed task is reported to the operators: a notice, an email, and never an exception."""

from __future__ import annotations

import dataclasses
import email
from email import policy

from helpers import NOW
from sqlalchemy import select

from pipeline.deliver.notices import report_task_failure
from pipeline.jobs import Runtime
from pipeline.store.schema import Notice


def test_failed_task_is_recorded_and_emailed_once(make_config, sqlite_url, mail_sink) -> None:
    config = make_config(database_url=sqlite_url, smtp_port=mail_sink.port)
    Runtime.open(config).close()  # schema
    args = {"dag_id": "sanctions_watch", "task_id": "classify_articles", "run_id": "scheduled__1",
            "try_number": 4, "error": RuntimeError("no servable model"), "now": NOW}  # fmt: skip
    assert report_task_failure(config, **args) is True
    assert report_task_failure(config, **args) is False  # the same failure is not reported twice
    rt = Runtime.open(config)
    with rt.sessions() as s:
        notices = s.scalars(select(Notice)).all()
    rt.close()
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
