"""What the operator view shows, as plain data: feed health, alert volumes by regime and day, the
outbox backlog and failures, publication-to-alert latency and the model version in service.

Pure reads over the pipeline's database (no Airflow, no writes); ``now`` and the window come from
the caller. The model "in service" is the one that scored the newest classification (what is really
being used, whatever the registry says). Latencies are over deliveries *sent* in the window: from
the lead article's publication (when the feed gave a date) and from its first sight to the send.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.config import Config
from pipeline.health.feeds import FeedHealth, feed_health
from pipeline.store.schema import Alert, Article, Classification, Delivery

__all__ = ["Latency", "Overview", "operator_overview"]


@dataclass(frozen=True, slots=True)
class Latency:
    """Hours from publication (or first sight) to sending: median and 90th percentile."""

    sent: int = 0
    from_published_median_h: float | None = None
    from_published_p90_h: float | None = None
    from_first_seen_median_h: float | None = None
    from_first_seen_p90_h: float | None = None


@dataclass(frozen=True, slots=True)
class Overview:
    generated_at: datetime
    days: int
    model_version: str | None
    feeds: tuple[FeedHealth, ...]
    alerts_by_day_regime: dict[str, dict[str, int]]  # YYYY-MM-DD -> regime -> alerts
    outbox: dict[str, int]  # status -> deliveries
    failed: tuple[tuple[int, str, str | None], ...]  # newest failed deliveries: id, channel, error
    latency: Latency = field(default_factory=Latency)


def _hours(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return round(median(ordered), 2), round(p90, 2)


def operator_overview(
    session: Session, config: Config, *, now: datetime, days: int = 14
) -> Overview:
    """Everything the operator page shows for the last ``days`` days (UTC)."""
    since = now - timedelta(days=days)
    volumes: dict[str, Counter[str]] = {}
    for created, regimes in session.execute(
        select(Alert.created_at, Alert.regimes).where(Alert.created_at >= since)
    ):
        day = created.strftime("%Y-%m-%d")
        for regime in regimes or ["(none)"]:
            volumes.setdefault(day, Counter())[str(regime)] += 1
    outbox = {
        status: int(n)
        for status, n in session.execute(
            select(Delivery.status, func.count()).group_by(Delivery.status)
        ).all()
    }
    failed = tuple(
        (d.id, d.channel, d.last_error)
        for d in session.scalars(
            select(Delivery)
            .where(Delivery.status == "failed")
            .order_by(Delivery.id.desc())
            .limit(20)
        )
    )
    published: list[float] = []
    seen: list[float] = []
    rows = session.execute(
        select(Delivery.sent_at, Article.published_at, Article.first_seen_at)
        .join(Alert, Alert.id == Delivery.alert_id)
        .join(Article, Article.id == Alert.article_id)
        .where(Delivery.status == "sent", Delivery.sent_at >= since)
    ).all()
    for sent_at, published_at, first_seen_at in rows:
        if sent_at is None:  # a sent row always has its time; never counted without one
            continue
        if published_at is not None:
            published.append((sent_at - published_at).total_seconds() / 3600)
        seen.append((sent_at - first_seen_at).total_seconds() / 3600)
    pm, p90 = _hours(published)
    sm, s90 = _hours(seen)
    model = session.scalar(
        select(Classification.model_version).order_by(Classification.id.desc()).limit(1)
    )
    return Overview(
        generated_at=now,
        days=days,
        model_version=model,
        feeds=tuple(feed_health(session, config)),
        alerts_by_day_regime={d: dict(c) for d, c in sorted(volumes.items())},
        outbox=outbox,
        failed=failed,
        latency=Latency(len(rows), pm, p90, sm, s90),
    )
