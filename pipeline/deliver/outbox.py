"""The delivery outbox: rows recorded before sending, claimed with a lease, marked after.

Guarantees (see docs/architecture.md and docs/alerts.md):

* rows are created by :mod:`pipeline.alerts.record` (one per alert, channel and recipient) and
  :mod:`pipeline.alerts.digest` (one per digest), with insert-or-ignore on unique keys, so a retried or re-run
  task creates nothing twice;
* a row is *claimed* (status ``sending``, lease owner and expiry) in its own committed transaction
  before the conversation with the server (SMTP or webhook), and marked ``sent`` right after the reply;
  a worker killed in between leaves a lease that expires, and the row is sent again with the same
  Message-ID (email) or ``Idempotency-Key`` (webhook): at most two copies (only for a crash between the
  reply and the commit), never zero;
* transient failures (connection, timeout, SMTP 4xx, HTTP 408/429/5xx) go back to ``pending`` with
  exponential back-off (and at least the server's Retry-After); permanent ones (SMTP 5xx, other HTTP
  4xx, a refused address, or too many attempts) are ``failed`` and reported to operators as a notice,
  which :func:`send_notices` emails to ``config.operators``;
* each row's outcome is independent of the others'.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from markupsafe import escape
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.alerts.digest import digest_view
from pipeline.alerts.record import DesignationMatcher, matches, record_alerts
from pipeline.alerts.views import alert_view
from pipeline.config import Config, Subscription
from pipeline.deliver.mail import MailSender, build_message
from pipeline.deliver.render import RenderedMessage, render_alert, render_digest
from pipeline.deliver.webhook import (
    WebhookSender,
    choose_format,
    digest_payload,
    payload_for,
    recipient_label,
)
from pipeline.errors import DeliveryError
from pipeline.faults import checkpoint
from pipeline.knowledge.regimes import RegimeBook
from pipeline.store.articles import insert_ignore
from pipeline.store.schema import Alert, Delivery, Notice

__all__ = [
    "DeliveryReport",
    "alert_view",
    "deliver_pending",
    "display_recipient",
    "matches",
    "record_alerts",
    "record_notice",
    "send_notices",
]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    pending: int = 0
    webhook_sent: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "pending": self.pending,
            "webhook_sent": self.webhook_sent,
        }


def display_recipient(channel: str, recipient: str) -> str:
    """A recipient as logs, notices and operator mail may show it (webhook URLs are secrets)."""
    return recipient_label(recipient) if channel == "webhook" else recipient


def _due(now: datetime) -> Any:
    return or_(
        and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
        and_(Delivery.status == "sending", Delivery.lease_until < now),
    )


def _claim(
    session_factory: sessionmaker[Session],
    channel: str,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
) -> list[int]:
    """Claim due rows one by one with a conditional UPDATE, so two senders never claim the same row."""
    claimed: list[int] = []
    with session_factory.begin() as session:
        candidates = session.scalars(
            select(Delivery.id)
            .where(Delivery.channel == channel, _due(now))
            .order_by(Delivery.id)
            .limit(limit)
        ).all()
        for delivery_id in candidates:
            result = session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, _due(now))
                .values(status="sending", lease_owner=owner, lease_until=now + lease)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(delivery_id)
    return claimed


def _backoff(config: Config, attempts: int, retry_after: float | None = None) -> timedelta:
    base = config.alerts.backoff_base_seconds * (2 ** max(0, attempts - 1))
    jitter = 1 + random.uniform(-0.1, 0.1)
    seconds = min(config.alerts.backoff_max_seconds, base) * jitter
    if retry_after is not None:
        seconds = max(seconds, min(retry_after, config.alerts.backoff_max_seconds))
    return timedelta(seconds=seconds)


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


# --------------------------------------------------------------------------------------- deliver


def _prepare(
    session: Session,
    delivery: Delivery,
    config: Config,
    subscriptions: Mapping[str, Subscription],
    regimes: RegimeBook | None,
    designations: DesignationMatcher | None,
    now: datetime,
) -> Any:
    """The email message or webhook body for one outbox row."""
    if delivery.alert_id is not None:
        alert = session.get(Alert, delivery.alert_id)
        assert alert is not None
        view = alert_view(session, alert, regimes, config, designations)
        if delivery.channel == "webhook":
            sub = subscriptions.get(delivery.subscription_id)
            return payload_for(
                view, choose_format(delivery.recipient, sub.format if sub else "auto")
            )
        rendered = render_alert(view)
    else:
        assert delivery.digest_id is not None
        dview = digest_view(session, delivery.digest_id, regimes, config, designations, now=now)
        if delivery.channel == "webhook":
            sub = subscriptions.get(delivery.subscription_id)
            return digest_payload(
                dview, choose_format(delivery.recipient, sub.format if sub else "auto")
            )
        rendered = render_digest(dview)
    return build_message(
        rendered,
        sender=config.smtp.sender,
        recipient=delivery.recipient,
        message_id=delivery.message_id,
        date=now,
    )


def deliver_pending(
    session_factory: sessionmaker[Session],
    config: Config,
    sender: MailSender,
    *,
    now: datetime,
    owner: str,
    regimes: RegimeBook | None = None,
    designations: DesignationMatcher | None = None,
    webhook: WebhookSender | None = None,
) -> DeliveryReport:
    """Send every due delivery (email through ``sender``; webhook rows when ``webhook`` is given).

    Each recipient's outcome is independent of the others'. The crash points
    ``deliver.before_send``, ``deliver.after_send`` and ``deliver.after_commit`` surround every
    send, email or webhook.
    """
    report = DeliveryReport()
    lease = timedelta(seconds=config.alerts.lease_seconds)
    subscriptions = {s.id: s for s in config.subscriptions}
    channels: list[tuple[str, Callable[[Any, Delivery], None]]] = []

    def send_mail(payload: EmailMessage, row: Delivery) -> None:
        sender.send(payload, row.recipient)

    channels.append(("email", send_mail))
    if webhook is not None:
        hook = webhook

        def send_hook(payload: dict[str, Any], row: Delivery) -> None:
            hook.send(payload, row.recipient, key=row.message_id, now=now)

        channels.append(("webhook", send_hook))
    try:
        for channel, send in channels:
            claimed = _claim(session_factory, channel, owner, now, lease, config.alerts.batch_size)
            for delivery_id in claimed:
                with session_factory() as session:
                    delivery = session.get(Delivery, delivery_id)
                    assert delivery is not None
                    payload = _prepare(
                        session, delivery, config, subscriptions, regimes, designations, now
                    )
                    session.expunge(delivery)
                attempts = delivery.attempts + 1
                who = display_recipient(channel, delivery.recipient)
                what = (
                    f"alert {delivery.alert_id}"
                    if delivery.alert_id is not None
                    else f"digest {delivery.digest_id}"
                )
                error: DeliveryError | None = None
                checkpoint("deliver.before_send")
                try:
                    send(payload, delivery)
                except DeliveryError as err:
                    error = err
                checkpoint("deliver.after_send")
                with session_factory.begin() as session:
                    mine = and_(Delivery.id == delivery_id, Delivery.lease_owner == owner)
                    if error is None:
                        values: dict[str, Any] = {
                            "status": "sent",
                            "sent_at": now,
                            "attempts": attempts,
                            "lease_until": None,
                            "last_error": None,
                        }
                        report.sent += 1
                        report.webhook_sent += channel == "webhook"
                    elif error.permanent or attempts >= config.alerts.max_attempts:
                        values = {
                            "status": "failed",
                            "attempts": attempts,
                            "lease_until": None,
                            "last_error": str(error),
                        }
                        report.failed += 1
                        record_notice(
                            session,
                            f"delivery-failed:{delivery_id}",
                            "delivery_failed",
                            f"Delivery {delivery_id} of {what} by {channel} to {who} failed "
                            f"permanently after {attempts} attempt(s): {error}",
                            now,
                        )
                        log.error("delivery %s failed permanently: %s", delivery_id, error)
                    else:
                        retry_after = getattr(error, "retry_after", None)
                        values = {
                            "status": "pending",
                            "attempts": attempts,
                            "lease_until": None,
                            "last_error": str(error),
                            "next_attempt_at": now + _backoff(config, attempts, retry_after),
                        }
                        report.retried += 1
                        log.warning("delivery %s will be retried: %s", delivery_id, error)
                    session.execute(update(Delivery).where(mine).values(**values))
                checkpoint("deliver.after_commit")
    finally:
        sender.close()
        if webhook is not None:
            webhook.close()
    with session_factory() as session:
        report.pending = (
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status.in_(("pending", "sending")))
            )
            or 0
        )
    return report


# ------------------------------------------------------------------------------ operator notices


def _notice_message(notices: list[Notice], operator: str) -> RenderedMessage:
    n = len(notices)
    subject = (
        f"[sanctions-watch] operator notice: {n} problem{'s' if n != 1 else ''} need attention"
    )
    lines = [
        f"sanctions-watch recorded {n} problem{'s' if n != 1 else ''} that need an operator:",
        "",
    ]
    items = []
    for notice in notices:
        when = notice.created_at.strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"- [{notice.kind}] {when}: {notice.message}")
        items.append(
            f'<li style="margin-bottom:6px;"><b>{escape(notice.kind)}</b> {escape(when)}: '
            f"{escape(notice.message)}</li>"
        )
    lines += ["", "Runbook: docs/operations.md. Each notice is sent once."]
    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        '<body style="font-family:Arial,Helvetica,sans-serif;color:#1c2833;">'
        f"<p>sanctions-watch recorded {n} problem{'s' if n != 1 else ''} that need an operator:</p>"
        f'<ul style="font-size:14px;line-height:1.5;">{"".join(items)}</ul>'
        '<p style="font-size:12px;color:#808b96;">Runbook: docs/operations.md. Each notice is sent '
        "once.</p></body></html>"
    )
    return RenderedMessage(subject=subject, text="\n".join(lines) + "\n", html=html)


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
    batch = ",".join(str(n.id) for n in notices)
    failures = 0
    try:
        for operator in config.operators:
            token = hashlib.sha256(f"{batch}\x00{operator.lower()}".encode()).hexdigest()[:20]
            domain = config.smtp.sender.rpartition("@")[2].rstrip(">") or "sanctions-watch.invalid"
            message = build_message(
                _notice_message(notices, operator),
                sender=config.smtp.sender,
                recipient=operator,
                message_id=f"<sw.notice.{token}@{domain}>",
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
