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
  4xx, a refused address, or too many attempts) are ``failed`` and reported to operators as a notice
  (:mod:`pipeline.deliver.notices` words, records and emails it);
* each row's outcome is independent of the others';
* one run drains the backlog: it claims ``alerts.batch_size`` rows at a time, batch after batch,
  until none is due or ``alerts.send_seconds`` (at most half the lease) have passed; one SMTP
  connection serves the whole run;
* a message is rendered just before it is sent (with the other rows of its chunk of
  :data:`PREPARE_CHUNK`, whose stories are read together), at the run's ``now`` (its ``Date`` and
  ``sent_at``), so the latency it shows from publication and first sight is true of that send; an
  alert row marked ``sent`` records the same figures (``latency_published_s``,
  ``latency_first_seen_s``).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.alerts.digest import digest_view
from pipeline.alerts.facts import DesignationMatcher, StoryFacts, story_facts_many
from pipeline.alerts.views import alert_view
from pipeline.config import Config, Subscription
from pipeline.deliver.mail import MailSender, build_message
from pipeline.deliver.notices import delivery_failed_notice
from pipeline.deliver.render import Latency, latency_for, render_alert, render_digest
from pipeline.deliver.webhook import WebhookSender, choose_format, digest_payload, payload_for
from pipeline.errors import DeliveryError
from pipeline.faults import checkpoint
from pipeline.knowledge.regimes import RegimeBook
from pipeline.reports import DeliveryReport
from pipeline.review.tokens import feedback_links
from pipeline.store.deliveries import count_pending
from pipeline.store.schema import Alert, Classification, Delivery, Story

__all__ = ["deliver_pending"]

log = logging.getLogger(__name__)

# Outbox rows whose messages are prepared together (their stories read with one set of queries).
PREPARE_CHUNK = 50


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


def _claimed(
    session_factory: sessionmaker[Session],
    channel: str,
    owner: str,
    now: datetime,
    config: Config,
) -> Iterator[list[int]]:
    """Due rows of ``channel``, claimed ``alerts.batch_size`` at a time, batch after batch until
    none is due or ``alerts.send_seconds`` have passed (so a burst drains in one run, not over many
    runs of 200). Every lease ends at ``now + lease_seconds`` (``now`` is the run's): no batch is
    claimed after half the lease has gone, so a batch is sent well before its lease can lapse and
    another sender take its rows."""
    settings = config.alerts
    lease = timedelta(seconds=settings.lease_seconds)
    budget = min(settings.send_seconds, settings.lease_seconds / 2)
    started = time.monotonic()
    while True:
        batch = _claim(session_factory, channel, owner, now, lease, settings.batch_size)
        if batch:
            yield batch
        if len(batch) < settings.batch_size or time.monotonic() - started >= budget:
            return


def _prepared(
    session_factory: sessionmaker[Session],
    channel: str,
    owner: str,
    now: datetime,
    config: Config,
    subscriptions: Mapping[str, Subscription],
    regimes: RegimeBook | None,
    designations: DesignationMatcher | None,
) -> Iterator[tuple[Delivery, Any, Latency | None]]:
    """Every claimed row of ``channel`` with its message, prepared :data:`PREPARE_CHUNK` rows at a
    time in one session (so memory holds one chunk of messages whatever ``alerts.batch_size``)."""
    for batch in _claimed(session_factory, channel, owner, now, config):
        for start in range(0, len(batch), PREPARE_CHUNK):
            with session_factory() as session:
                prepared = _prepare_many(
                    session,
                    batch[start : start + PREPARE_CHUNK],
                    config,
                    subscriptions,
                    regimes,
                    designations,
                    now,
                )
            yield from prepared


def _backoff(config: Config, attempts: int, retry_after: float | None = None) -> timedelta:
    base = config.alerts.backoff_base_seconds * (2 ** max(0, attempts - 1))
    jitter = 1 + random.uniform(-0.1, 0.1)
    seconds = min(config.alerts.backoff_max_seconds, base) * jitter
    if retry_after is not None:
        seconds = max(seconds, min(retry_after, config.alerts.backoff_max_seconds))
    return timedelta(seconds=seconds)


# --------------------------------------------------------------------------------------- deliver


def _prepare(
    session: Session,
    delivery: Delivery,
    config: Config,
    subscriptions: Mapping[str, Subscription],
    regimes: RegimeBook | None,
    designations: DesignationMatcher | None,
    now: datetime,
    facts: Mapping[int, StoryFacts] | None = None,
) -> tuple[Any, Latency | None]:
    """The email message or webhook body for one outbox row, sent at ``now``, and for an alert the
    latency it shows (``facts``: stories' facts read beforehand, by story id)."""
    if delivery.alert_id is not None:
        alert = session.get(Alert, delivery.alert_id)
        assert alert is not None
        known = facts.get(alert.story_id) if facts else None
        view = alert_view(session, alert, regimes, config, designations, facts=known)
        latency = latency_for(view, now)
        if delivery.channel == "webhook":
            sub = subscriptions.get(delivery.subscription_id)
            fmt = choose_format(delivery.recipient, sub.format if sub else "auto")
            return payload_for(view, fmt, sent_at=now), latency
        links = feedback_links(config, alert_id=alert.id, recipient=delivery.recipient, now=now)
        rendered = render_alert(dataclasses.replace(view, feedback_links=links), sent_at=now)
    else:
        assert delivery.digest_id is not None
        dview = digest_view(session, delivery.digest_id, regimes, config, designations, now=now)
        if delivery.channel == "webhook":
            sub = subscriptions.get(delivery.subscription_id)
            fmt = choose_format(delivery.recipient, sub.format if sub else "auto")
            return digest_payload(dview, fmt), None
        rendered = render_digest(dview)
        latency = None
    message = build_message(
        rendered,
        sender=config.smtp.sender,
        reply_to=config.smtp.reply_to,
        recipient=delivery.recipient,
        message_id=delivery.message_id,
        date=now,
    )
    return message, latency


def _prepare_many(
    session: Session,
    ids: list[int],
    config: Config,
    subscriptions: Mapping[str, Subscription],
    regimes: RegimeBook | None,
    designations: DesignationMatcher | None,
    now: datetime,
) -> list[tuple[Delivery, Any, Latency | None]]:
    """:func:`_prepare` for the claimed rows ``ids``, in order, with their rows, alerts, stories,
    classifications and story facts read together (a few queries, not a few per row). The rows
    are returned detached."""
    rows = {d.id: d for d in session.scalars(select(Delivery).where(Delivery.id.in_(ids)))}
    alert_ids = [d.alert_id for d in rows.values() if d.alert_id is not None]
    # Held here so that session.get() finds them in the identity map.
    alerts = list(session.scalars(select(Alert).where(Alert.id.in_(alert_ids))))
    stories = list(session.scalars(select(Story).where(Story.id.in_({a.story_id for a in alerts}))))
    held = list(
        session.scalars(
            select(Classification).where(
                Classification.id.in_({a.classification_id for a in alerts})
            )
        )
    )
    facts = story_facts_many(session, stories) if stories else {}
    out: list[tuple[Delivery, Any, Latency | None]] = []
    for delivery_id in ids:
        delivery = rows.get(delivery_id)
        assert delivery is not None, f"claimed delivery {delivery_id} vanished"
        payload, latency = _prepare(
            session, delivery, config, subscriptions, regimes, designations, now, facts
        )
        session.expunge(delivery)
        out.append((delivery, payload, latency))
    del held
    return out


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
    tally: Counter[str] = Counter()
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
            for delivery, payload, latency in _prepared(
                session_factory, channel, owner, now, config, subscriptions, regimes, designations
            ):
                delivery_id = delivery.id
                attempts = delivery.attempts + 1
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
                        if latency is not None:
                            values["latency_published_s"] = latency.published_seconds
                            values["latency_first_seen_s"] = latency.first_seen_seconds
                        tally["sent"] += 1
                        tally["webhook_sent"] += channel == "webhook"
                    elif error.permanent or attempts >= config.alerts.max_attempts:
                        values = {
                            "status": "failed",
                            "attempts": attempts,
                            "lease_until": None,
                            "last_error": str(error),
                        }
                        tally["failed"] += 1
                        delivery_failed_notice(
                            session, delivery, attempts=attempts, error=str(error), now=now
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
                        tally["retried"] += 1
                        log.warning("delivery %s will be retried: %s", delivery_id, error)
                    session.execute(update(Delivery).where(mine).values(**values))
                checkpoint("deliver.after_commit")
    finally:
        sender.close()
        if webhook is not None:
            webhook.close()
    with session_factory() as session:
        pending = count_pending(session)
    return DeliveryReport(pending=pending, **tally)
