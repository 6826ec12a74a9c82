"""Operator notices: recorded once per problem, emailed to ``config.operators`` once each.

* **What is recorded.** A permanently failed delivery (:mod:`pipeline.deliver.outbox` records it), a
  feed in trouble (recorded by :mod:`pipeline.health.feeds`, with this module's :func:`record_notice`)
  and a delivery still waiting after ``alerts.pending_alarm_hours`` (:func:`record_health_notices`,
  called by ``check_health``), and a pipeline task that failed after its retries
  (:func:`report_task_failure`, Airflow's on-failure hook). Each has a deterministic key
  (insert-or-ignore), so a re-run records nothing twice. The wording of every notice is here, but
  feed health's, which is with the rule that raises it.
* **How it is sent.** :func:`send_notices` emails one message per operator listing every unsent
  notice, rendered from ``templates/notice.*.j2`` with autoescaping (notice texts quote servers'
  replies), under a Message-ID from :func:`pipeline.alerts.ids.message_id_for`. The notices are
  marked sent only when every operator's message was accepted; a failure leaves them for the next
  run, under the same Message-ID, so a copy an operator already has can be collapsed.
* **Secrets.** Webhook recipients appear only as :func:`display_recipient` shows them (their URLs
  carry tokens), feed URLs through :func:`~pipeline.net.policy.redact_url`.
* :func:`report_task_failure` never raises: it runs when something has already gone wrong (the
  database or SMTP may be the cause), so every failure there is logged and swallowed.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.alerts.ids import message_id_for
from pipeline.config import Config
from pipeline.deliver.mail import MailSender, SmtpSender, build_message
from pipeline.deliver.render import NoticeItem, render_notices
from pipeline.deliver.webhook import recipient_label
from pipeline.errors import DeliveryError
from pipeline.ingest.normalise import clean_text
from pipeline.store.articles import insert_ignore
from pipeline.store.db import make_engine, make_sessionmaker
from pipeline.store.deliveries import stuck_deliveries
from pipeline.store.schema import Delivery, Notice

__all__ = [
    "delivery_failed_notice",
    "display_recipient",
    "record_health_notices",
    "record_notice",
    "report_task_failure",
    "send_notices",
]

log = logging.getLogger(__name__)


def display_recipient(channel: str, recipient: str) -> str:
    """A recipient as logs, notices and operator mail may show it (webhook URLs are secrets)."""
    return recipient_label(recipient) if channel == "webhook" else recipient


def record_notice(session: Session, key: str, kind: str, message: str, now: datetime) -> bool:
    """Record an operator notice once per ``key``; True when it is new."""
    return bool(
        insert_ignore(
            session,
            Notice,
            [{"key": key, "kind": kind, "message": message, "created_at": now}],
            ["key"],
        )
    )


def _what(delivery: Delivery) -> str:
    if delivery.alert_id is not None:
        return f"alert {delivery.alert_id}"
    return f"digest {delivery.digest_id}"


# ------------------------------------------------------------------------------------ the notices


def delivery_failed_notice(
    session: Session, delivery: Delivery, *, attempts: int, error: str, now: datetime
) -> bool:
    """Record that ``delivery`` failed for good (SMTP 5xx, HTTP 4xx, too many attempts)."""
    who = display_recipient(delivery.channel, delivery.recipient)
    message = (
        f"Delivery {delivery.id} of {_what(delivery)} by {delivery.channel} to {who} failed "
        f"permanently after {attempts} attempt(s): {error}"
    )
    return record_notice(session, f"delivery-failed:{delivery.id}", "delivery_failed", message, now)


def record_health_notices(session: Session, config: Config, *, now: datetime) -> list[str]:
    """Record a notice for every delivery still waiting after ``alerts.pending_alarm_hours`` (once
    per delivery); returns the new ones' texts. Feeds in trouble (failing, silent, too few items)
    are pipeline.health's: :func:`pipeline.health.check_feeds` notifies once per problem."""
    new: list[str] = []
    limit = now - timedelta(hours=config.alerts.pending_alarm_hours)
    for d in stuck_deliveries(session, created_before=limit):
        message = (
            f"Delivery {d.id} ({_what(d)} to {display_recipient(d.channel, d.recipient)}) is still "
            f"{d.status} after {d.attempts} attempt(s) since {d.created_at:%Y-%m-%d %H:%M} UTC; "
            f"last error: {d.last_error}"
        )
        if record_notice(session, f"delivery-stuck:{d.id}", "delivery_stuck", message, now):
            new.append(message)
    return new


def _task_failed_message(
    *, dag_id: str, task_id: str, run_id: str, try_number: int | None, error: object
) -> str:
    reason = clean_text(f"{type(error).__name__}: {error}", max_chars=1500) if error else "unknown"
    return (
        f"Task {task_id} of DAG {dag_id} failed (run {run_id}, try {try_number or '?'}): {reason}. "
        "See the task log in the Airflow UI and docs/operations.md."
    )


# ------------------------------------------------------------------------------------ sending them


def send_notices(
    session_factory: sessionmaker[Session], config: Config, sender: MailSender, *, now: datetime
) -> int:
    """Email every unsent operator notice to ``config.operators``; returns how many were sent.

    One message per operator lists all unsent notices; the notices are marked sent only when every
    operator's message was accepted (a failure leaves them for the next run, with the same
    Message-ID, so a copy an operator already has can be collapsed).
    """
    if not config.operators:
        return 0
    with session_factory() as session:
        notices = list(
            session.scalars(select(Notice).where(Notice.sent_at.is_(None)).order_by(Notice.id))
        )
    if not notices:
        return 0
    rendered = render_notices([NoticeItem(n.kind, n.created_at, n.message) for n in notices])
    batch = hashlib.sha256(",".join(str(n.id) for n in notices).encode()).hexdigest()[:16]
    failures = 0
    try:
        for operator in config.operators:
            message = build_message(
                rendered,
                sender=config.smtp.sender,
                recipient=operator,
                message_id=message_id_for(f"notice.{batch}", operator, config.smtp.sender),
                date=now,
            )
            try:
                sender.send(message, operator)
            except DeliveryError as err:
                failures += 1
                log.error("operator notice to %s not sent: %s", operator, err)
    finally:
        sender.close()
    if failures:
        return 0
    with session_factory.begin() as session:
        session.execute(
            update(Notice)
            .where(Notice.id.in_([n.id for n in notices]), Notice.sent_at.is_(None))
            .values(sent_at=now)
        )
    log.info("emailed %d operator notice(s) to %d operator(s)", len(notices), len(config.operators))
    return len(notices)


def report_task_failure(
    config: Config,
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    try_number: int | None,
    error: object,
    now: datetime,
    sender: MailSender | None = None,
) -> bool:
    """Record and email a notice about a failed task; True when the notice was recorded."""
    message = _task_failed_message(
        dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=try_number, error=error
    )
    engine = None
    try:
        engine = make_engine(config.database_url)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            recorded = record_notice(
                session, f"task-failed:{dag_id}:{run_id}:{task_id}", "task_failed", message, now
            )
        send_notices(sessions, config, sender or SmtpSender(config.smtp), now=now)
        return recorded
    except Exception as err:  # noqa: BLE001 - a failure hook must not fail; the error is logged
        log.error("could not report the failure of %s.%s to operators: %s", dag_id, task_id, err)
        return False
    finally:
        if engine is not None:
            engine.dispose()
