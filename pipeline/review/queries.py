"""What the review page lists: recent scored articles with their alert, story, label and scores.

Reads only. Filters run over a bounded window of the most recent classifications (``limit``), so a
page never scans the whole history; regimes are JSON lists, filtered here rather than in SQL so the
same code serves SQLite and PostgreSQL. The uncertainty queue ranks unlabelled items by how much a
label would teach the model: nearest the threshold first, and items the model versions disagree on
(one flagged it, another did not) before those they agree on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.review.labels import current_labels
from pipeline.store.schema import Alert, Article, Classification, Feed

__all__ = ["Filters", "ReviewItem", "list_items", "uncertainty_queue"]

BANDS = ("high", "near", "low")  # score >= threshold + 0.15 / within 0.15 of it / below


@dataclass(frozen=True, slots=True)
class Filters:
    regime: str = ""
    since: date | None = None
    until: date | None = None
    band: str = ""
    label: str = ""  # "" any | unlabelled | relevant | not_relevant | unsure
    feed: str = ""
    lang: str = ""


@dataclass(frozen=True, slots=True)
class ReviewItem:
    article_id: int
    title: str
    summary: str
    url: str | None
    lang: str
    feed_id: str
    feed_name: str
    first_seen_at: datetime
    score: float
    threshold: float
    model_version: str
    regimes: tuple[str, ...]
    sentences: tuple[str, ...]
    alert_id: int | None
    story_id: int | None
    label: str | None
    labelled_by: str | None
    versions: tuple[tuple[str, float, bool], ...]  # (model version, score, flagged) of each scoring

    @property
    def band(self) -> str:
        if self.score >= self.threshold + 0.15:
            return "high"
        return "near" if self.score >= self.threshold - 0.15 else "low"

    @property
    def disagreement(self) -> bool:
        return len({flagged for _, _, flagged in self.versions}) > 1

    @property
    def informativeness(self) -> float:
        """Higher is more worth an analyst's time: 1 at the threshold, 0 at 0 or 1; +1 when model
        versions disagree."""
        margin = abs(self.score - self.threshold)
        return (1.0 if self.disagreement else 0.0) + max(0.0, 1.0 - 2.0 * margin)


def _items(session: Session, limit: int) -> list[ReviewItem]:
    rows = session.scalars(select(Classification).order_by(Classification.id.desc()).limit(limit))
    by_article: dict[int, list[Classification]] = defaultdict(list)
    for cls in rows:
        by_article[cls.article_id].append(cls)
    if not by_article:
        return []
    ids = list(by_article)
    articles = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(ids)))}
    feeds = {f.id: f.name for f in session.scalars(select(Feed))}
    alerts: dict[int, Alert] = {}
    for row in session.scalars(select(Alert).where(Alert.article_id.in_(ids)).order_by(Alert.id)):
        alerts[row.article_id] = row  # the latest alert of each article
    labels = current_labels(session, ids)
    out = []
    for article_id, scorings in by_article.items():
        article = articles.get(article_id)
        if article is None:
            continue
        latest = scorings[0]
        alert = alerts.get(article_id)
        label = labels.get(article_id)
        evidence = latest.evidence or {}
        out.append(
            ReviewItem(
                article_id=article_id,
                title=article.title,
                summary=article.summary,
                url=article.url,
                lang=article.lang,
                feed_id=article.feed_id,
                feed_name=feeds.get(article.feed_id, article.feed_id),
                first_seen_at=article.first_seen_at,
                score=latest.score,
                threshold=latest.threshold,
                model_version=latest.model_version,
                regimes=tuple(str(r) for r in latest.regimes or ()),
                sentences=tuple(str(s) for s in evidence.get("sentences", ()))[:3],
                alert_id=alert.id if alert else None,
                story_id=alert.story_id if alert else article.story_id,
                label=label.label if label else None,
                labelled_by=label.analyst if label else None,
                versions=tuple(
                    (c.model_version, c.score, c.flagged)
                    for c in {c.model_version: c for c in reversed(scorings)}.values()
                ),
            )
        )
    out.sort(key=lambda i: (i.first_seen_at, i.article_id), reverse=True)
    return out


def _keep(item: ReviewItem, f: Filters) -> bool:
    day = item.first_seen_at.date()
    return not (
        (f.regime and f.regime not in item.regimes)
        or (f.since and day < f.since)
        or (f.until and day > f.until)
        or (f.band and item.band != f.band)
        or (f.label == "unlabelled" and item.label is not None)
        or (f.label and f.label != "unlabelled" and item.label != f.label)
        or (f.feed and item.feed_id != f.feed)
        or (f.lang and item.lang != f.lang)
    )


def list_items(session: Session, filters: Filters, *, limit: int = 2000) -> list[ReviewItem]:
    """Recent scored articles (newest first) that pass the filters."""
    return [i for i in _items(session, limit) if _keep(i, filters)]


def uncertainty_queue(session: Session, *, limit: int = 2000, size: int = 50) -> list[ReviewItem]:
    """Unlabelled items, most informative first (see :attr:`ReviewItem.informativeness`)."""
    pending = [i for i in _items(session, limit) if i.label is None]
    pending.sort(key=lambda i: (-i.informativeness, i.article_id))
    return pending[:size]


def facets(items: Sequence[ReviewItem]) -> dict[str, list[str]]:
    """The values the filter menus offer."""
    return {
        "regime": sorted({r for i in items for r in i.regimes}),
        "feed": sorted({i.feed_id for i in items}),
        "lang": sorted({i.lang for i in items}),
    }
