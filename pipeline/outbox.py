"""Alerts and the delivery outbox: recorded before sending, claimed with a lease, marked after.

Guarantees (see docs/architecture.md):

* one alert per flagged article, and one delivery row per (alert, channel, recipient), both created
  with insert-or-ignore on unique keys, so a retried or re-run task creates nothing twice;
* a row is *claimed* (status ``sending``, lease owner and expiry) in its own committed transaction
  before the SMTP conversation, and marked ``sent`` right after the reply; a worker killed in between
  leaves a lease that expires, and the row is sent again with the same Message-ID: at most two copies
  (only for a crash between the reply and the commit), never zero;
* transient failures (connection, timeout, 4xx) go back to ``pending`` with exponential back-off;
  permanent ones (5xx, or too many attempts) are ``failed`` and reported to operators as a notice.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.config import Config, Subscription
from pipeline.errors import DeliveryError
from pipeline.faults import checkpoint
from pipeline.mail import MailSender, build_message, message_id_for
from pipeline.regimes import RegimeBook
from pipeline.render import AlertView, RegimeView, SourceView, render_alert
from pipeline.schema import Alert, Article, Classification, Delivery, Feed, Notice, Sighting
from pipeline.severity import SeverityInput, explain_severity, rank, severity
from pipeline.store import insert_ignore

__all__ = [
    "DeliveryReport",
    "alert_view",
    "deliver_pending",
    "matches",
    "record_alerts",
    "record_notice",
]

log = logging.getLogger(__name__)

DesignationMatcher = Callable[[str], Sequence[str]]


def matches(sub: Subscription, *, article: Article, alert: Alert, feeds: Sequence[str]) -> bool:
    """Does this alert pass the subscription's filters?"""
    if sub.regimes and not set(sub.regimes) & set(alert.regimes or ()):
        return False
    if rank(alert.severity) < rank(sub.min_severity) or alert.score < sub.min_score:
        return False
    if sub.languages and article.lang not in sub.languages:
        return False
    if sub.sources and not set(sub.sources) & set(feeds):
        return False
    if sub.keywords:
        text = f"{article.title}\n{article.summary}\n{article.body}".casefold()
        if not any(k in text for k in sub.keywords):
            return False
    return True


def _sources(session: Session, article_id: int) -> list[tuple[str, str, str | None, datetime]]:
    rows = session.execute(
        select(Sighting.feed_id, Feed.name, Sighting.url, Sighting.seen_at)
        .join(Feed, Feed.id == Sighting.feed_id)
        .where(Sighting.article_id == article_id)
        .order_by(Sighting.seen_at, Sighting.id)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def record_alerts(
    session: Session,
    config: Config,
    *,
    now: datetime,
    designations: DesignationMatcher | None = None,
) -> list[int]:
    """Create alerts for flagged, un-alerted articles and their delivery rows; returns new alert ids."""
    latest = (
        select(Classification)
        .join(
            Article,
            and_(
                Article.id == Classification.article_id, Article.revision == Classification.revision
            ),
        )
        .outerjoin(Alert, Alert.article_id == Article.id)
        .where(Classification.flagged.is_(True), Alert.id.is_(None))
        .order_by(Classification.id)
    )
    created: list[int] = []
    for cls in session.scalars(latest):
        article = session.get(Article, cls.article_id)
        assert article is not None
        text = f"{article.title}\n{article.summary}\n{article.body}"
        named = list(designations(text)) if designations else []
        sources = _sources(session, article.id)
        sev_in = SeverityInput(
            score=cls.score,
            threshold=cls.threshold,
            designated_matches=len(named),
            sources=len({s[0] for s in sources}) or 1,
            regimes=tuple(cls.regimes or ()),
        )
        ids = insert_ignore(
            session,
            Alert,
            [
                {
                    "article_id": article.id,
                    "classification_id": cls.id,
                    "score": cls.score,
                    "severity": severity(sev_in),
                    "regimes": list(cls.regimes or ()),
                    "created_at": now,
                    "updated_at": now,
                }
            ],
            ["article_id"],
        )
        if not ids:
            continue
        alert = session.get(Alert, ids[0])
        assert alert is not None
        created.append(alert.id)
        feeds = [s[0] for s in sources]
        rows: list[dict[str, Any]] = []
        for sub in config.subscriptions:
            if sub.mode != "immediate" or not matches(
                sub, article=article, alert=alert, feeds=feeds
            ):
                continue
            for rcpt in sub.recipients:
                rows.append(
                    {
                        "alert_id": alert.id,
                        "subscription_id": sub.id,
                        "channel": sub.channel,
                        "recipient": rcpt,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "message_id": message_id_for(alert.id, rcpt, config.smtp.sender),
                        "created_at": now,
                    }
                )
        insert_ignore(session, Delivery, rows, ["alert_id", "channel", "recipient"])
    session.flush()
    return created


def alert_view(
    session: Session,
    alert: Alert,
    regimes: RegimeBook | None,
    config: Config,
    designations: DesignationMatcher | None = None,
) -> AlertView:
    """Everything a message about this alert shows, read from the database."""
    article = session.get(Article, alert.article_id)
    cls = session.get(Classification, alert.classification_id)
    assert article is not None and cls is not None
    sources = _sources(session, article.id)
    text = f"{article.title}\n{article.summary}\n{article.body}"
    named = tuple(designations(text)) if designations else ()
    sev_in = SeverityInput(
        cls.score,
        cls.threshold,
        len(named),
        len({s[0] for s in sources}) or 1,
        tuple(cls.regimes or ()),
    )
    regime_views = []
    for key in alert.regimes or ():
        r = regimes.get(key) if regimes else None
        if r is not None:
            regime_views.append(RegimeView(r.key, r.name, r.committee, r.url, r.resolutions))
    evidence = cls.evidence or {}
    feedback = (
        f"send feedback to {config.alerts.feedback_address} quoting alert {alert.id}"
        if config.alerts.feedback_address
        else None
    )
    return AlertView(
        alert_id=alert.id,
        title=article.title,
        summary=article.summary or article.body[:1500],
        url=article.url,
        lang=article.lang,
        first_seen_at=article.first_seen_at,
        published_at=article.published_at,
        score=cls.score,
        threshold=cls.threshold,
        model_version=cls.model_version,
        severity=alert.severity,
        severity_reason=explain_severity(sev_in),
        sources=tuple(SourceView(name, url, article.published_at) for _, name, url, _ in sources),
        evidence_sentences=tuple(evidence.get("sentences", ())),
        evidence_terms=tuple(evidence.get("terms", ())),
        regimes=tuple(regime_views),
        designated=named,
        feedback=feedback,
    )


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    pending: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "pending": self.pending,
        }


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


def _backoff(config: Config, attempts: int) -> timedelta:
    base = config.alerts.backoff_base_seconds * (2 ** max(0, attempts - 1))
    jitter = 1 + random.uniform(-0.1, 0.1)
    return timedelta(seconds=min(config.alerts.backoff_max_seconds, base) * jitter)


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


def deliver_pending(
    session_factory: sessionmaker[Session],
    config: Config,
    sender: MailSender,
    *,
    now: datetime,
    owner: str,
    regimes: RegimeBook | None = None,
    designations: DesignationMatcher | None = None,
) -> DeliveryReport:
    """Send every due email delivery; each recipient's outcome is independent of the others'."""
    report = DeliveryReport()
    lease = timedelta(seconds=config.alerts.lease_seconds)
    claimed = _claim(session_factory, "email", owner, now, lease, config.alerts.batch_size)
    try:
        for delivery_id in claimed:
            with session_factory() as session:
                delivery = session.get(Delivery, delivery_id)
                assert delivery is not None
                alert = session.get(Alert, delivery.alert_id)
                assert alert is not None
                view = alert_view(session, alert, regimes, config, designations)
                message = build_message(
                    render_alert(view),
                    sender=config.smtp.sender,
                    recipient=delivery.recipient,
                    message_id=delivery.message_id,
                    date=now,
                )
                recipient, attempts = delivery.recipient, delivery.attempts + 1
            error: DeliveryError | None = None
            checkpoint("deliver.before_send")
            try:
                sender.send(message, recipient)
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
                        f"Delivery {delivery_id} of alert {alert.id} to {recipient} failed permanently "
                        f"after {attempts} attempt(s): {error}",
                        now,
                    )
                    log.error("delivery %s failed permanently: %s", delivery_id, error)
                else:
                    values = {
                        "status": "pending",
                        "attempts": attempts,
                        "lease_until": None,
                        "last_error": str(error),
                        "next_attempt_at": now + _backoff(config, attempts),
                    }
                    report.retried += 1
                    log.warning("delivery %s will be retried: %s", delivery_id, error)
                session.execute(update(Delivery).where(mine).values(**values))
            checkpoint("deliver.after_commit")
    finally:
        sender.close()
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
