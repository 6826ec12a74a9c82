"""Daily digests: one message per recipient (and channel) per UTC day, through the same outbox.

A digest subscription's alerts wait in ``digest_items`` (see :mod:`pipeline.alerts.record`). At or after
``digest_hour_utc`` on day D (the earliest hour among the recipient's digest subscriptions),
:func:`compose_digests` gathers the items recorded before D at that hour into one ``digests`` row
and records one ``pending`` outbox row for the message, whose Message-ID is derived from
(D, channel, recipient): the idempotency key. Rows queued after the
cut-off wait for the next day. When nothing is queued, nothing is composed and nothing is sent. A re-run
on the same day finds the digest already there (insert-or-ignore on ``(day, channel, recipient)``).

The ``digest`` DAG calls it hourly (:func:`pipeline.jobs.compose_digests`), each call in one
transaction with its outbox rows: a digest is composed with its delivery row or not at all. Nothing
is lost when a run fails or is missed: the queued items stay unassigned, and the next call at or
after a recipient's hour (the same day, or any later day) gathers all of them; nothing is sent
twice: a composed item belongs to exactly one digest, and the outbox row's Message-ID is unique.

:func:`digest_view` reads a digest back as a :class:`~pipeline.deliver.render.DigestView`: one entry per story
(its latest alert: an update supersedes the first alert), grouped by the story's first regime, groups
and entries ordered by severity, then score.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipeline.alerts.facts import DesignationMatcher
from pipeline.alerts.ids import message_id_for
from pipeline.alerts.severity import RULE, rank
from pipeline.alerts.views import (
    AlertView,
    DigestGroup,
    DigestView,
    RegimeView,
    alert_view,
    feedback_text,
)
from pipeline.config import Config
from pipeline.knowledge.regimes import RegimeBook
from pipeline.store.articles import insert_ignore
from pipeline.store.schema import Alert, Delivery, Digest, DigestItem

__all__ = ["ComposedDigest", "DigestTarget", "compose_digests", "digest_targets", "digest_view"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DigestTarget:
    channel: str
    recipient: str
    hour: int
    subscription_id: str


@dataclass(frozen=True, slots=True)
class ComposedDigest:
    """One digest composed by :func:`compose_digests`: its id, where it goes, how many items."""

    digest_id: int
    channel: str
    recipient: str
    items: int


def digest_targets(config: Config) -> list[DigestTarget]:
    """Every (channel, recipient) of a digest subscription, at its earliest digest hour."""
    best: dict[tuple[str, str], DigestTarget] = {}
    for sub in config.subscriptions:
        if sub.mode != "digest":
            continue
        for rcpt in sub.recipients:
            key = (sub.channel, rcpt)
            if key not in best or sub.digest_hour_utc < best[key].hour:
                best[key] = DigestTarget(sub.channel, rcpt, sub.digest_hour_utc, sub.id)
    return list(best.values())


def compose_digests(session: Session, config: Config, *, now: datetime) -> list[ComposedDigest]:
    """Compose the digests due at ``now`` (in the caller's transaction); the digests created."""
    now = now.astimezone(UTC)
    day = now.date().isoformat()
    created: list[ComposedDigest] = []
    for target in digest_targets(config):
        cutoff = datetime(now.year, now.month, now.day, target.hour, tzinfo=UTC)
        if now < cutoff:
            continue
        items = session.scalars(
            select(DigestItem.id).where(
                DigestItem.digest_id.is_(None),
                DigestItem.channel == target.channel,
                DigestItem.recipient == target.recipient,
                DigestItem.created_at < cutoff,
            )
        ).all()
        if not items:
            continue  # nothing new: no digest today
        ids = insert_ignore(
            session,
            Digest,
            [
                {
                    "day": day,
                    "channel": target.channel,
                    "recipient": target.recipient,
                    "items": len(items),
                    "created_at": now,
                }
            ],
            ["day", "channel", "recipient"],
        )
        if not ids:
            continue  # today's digest was already composed; the rest waits for tomorrow
        digest_id = ids[0]
        session.execute(
            update(DigestItem)
            .where(DigestItem.id.in_(items), DigestItem.digest_id.is_(None))
            .values(digest_id=digest_id)
            .execution_options(synchronize_session=False)
        )
        insert_ignore(
            session,
            Delivery,
            [
                {
                    "alert_id": None,
                    "digest_id": digest_id,
                    "subscription_id": target.subscription_id,
                    "channel": target.channel,
                    "recipient": target.recipient,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "message_id": message_id_for(
                        f"digest.{day}.{target.channel}", target.recipient, config.smtp.sender
                    ),
                    "created_at": now,
                }
            ],
            ["message_id"],
        )
        created.append(ComposedDigest(digest_id, target.channel, target.recipient, len(items)))
        log.info(
            "digest %s for %s (%s, hour %02d): %d item(s)",
            digest_id,
            target.channel,
            day,
            target.hour,
            len(items),
        )
    session.flush()
    return created


def _sort_key(view: AlertView) -> tuple[int, float, int]:
    return (-rank(view.severity), -view.score, view.alert_id)


def digest_view(
    session: Session,
    digest_id: int,
    regimes: RegimeBook | None,
    config: Config,
    designations: DesignationMatcher | None = None,
    *,
    now: datetime,
) -> DigestView:
    digest = session.get(Digest, digest_id)
    assert digest is not None
    alerts = session.scalars(
        select(Alert)
        .join(DigestItem, DigestItem.alert_id == Alert.id)
        .where(DigestItem.digest_id == digest_id)
        .order_by(Alert.id)
    ).all()
    latest: dict[int, Alert] = {}
    for alert in alerts:  # one entry per story: its latest alert
        latest[alert.story_id] = alert
    by_regime: dict[str, list[AlertView]] = defaultdict(list)
    for alert in latest.values():
        key = (alert.regimes or [""])[0]
        by_regime[key].append(alert_view(session, alert, regimes, config, designations))
    groups: list[DigestGroup] = []
    for key, views in by_regime.items():
        views.sort(key=_sort_key)
        regime = regimes.get(key) if regimes and key else None
        rv = (
            RegimeView(regime.key, regime.name, regime.committee, regime.url, regime.resolutions)
            if regime
            else None
        )
        label = regime.name if regime else "No UN regime identified"
        groups.append(DigestGroup(rv, label, tuple(views)))
    groups.sort(key=lambda g: (_sort_key(g.alerts[0])[:2], g.label))
    return DigestView(
        day=digest.day,
        recipient=digest.recipient,
        generated_at=now,
        groups=tuple(groups),
        feedback=feedback_text(config),
        rule=RULE,
    )
