"""Re-scoring stored articles with the active model (after a promotion).

Guarantees:

* Every stored article first seen in ``[since, until)`` whose current revision the model has not
  scored gets one classification by it (the unique key article/revision/model version makes a
  re-run record nothing twice). Work is read in keyset pages by article id, one transaction each.
* Each new classification's evidence says what the article's previous classification was
  (``rescore.previous_version``, ``rescore.previous_flagged``), so a story that drops out is
  recorded where its articles are, and :class:`RescoreReport` counts it; nothing is alerted here.
* A re-score is not news: the stories its articles already belong to are marked evaluated after it
  (``stories.updated_at`` just after ``now``), so the alert stage neither re-alerts them nor raises
  an update alert on a re-score alone; a later sighting or edit still does. Articles that become
  flagged have no story yet, so the normal alert stage (``record_story_alerts``) gives them one and
  alerts once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.classify.model import Doc, TextModel
from pipeline.knowledge.regimes import RegimeBook
from pipeline.store.articles import add_classification
from pipeline.store.schema import Article, Classification, Story

__all__ = ["RescoreReport", "rescore_articles"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RescoreReport:
    model_version: str
    since: datetime
    until: datetime
    scored: int
    flagged: int
    newly_flagged: tuple[int, ...]  # article ids, flagged now and not before
    dropped: tuple[int, ...]  # article ids, flagged before and not now
    stories_dropped: tuple[int, ...]  # stories all of whose re-scored articles dropped out

    def as_dict(self) -> dict[str, object]:
        return {
            "model_version": self.model_version,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "scored": self.scored,
            "flagged": self.flagged,
            "newly_flagged": len(self.newly_flagged),
            "dropped": len(self.dropped),
            "stories_dropped": list(self.stories_dropped),
        }


def _doc(article: Article, limit: int) -> Doc:
    title = (article.title or "")[:limit]
    summary = (article.summary or "")[: max(0, limit - len(title))]
    body = (article.body or "")[: max(0, limit - len(title) - len(summary))]
    return Doc.of(title, summary, body)


def _latest(session: Session, article: Article) -> Classification | None:
    return session.scalars(
        select(Classification)
        .where(Classification.article_id == article.id, Classification.revision == article.revision)
        .order_by(Classification.id.desc())
        .limit(1)
    ).first()


def rescore_articles(
    sessions: sessionmaker[Session],
    model: TextModel,
    regimes: RegimeBook,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    max_text_chars: int = 20_000,
    batch: int = 200,
    progress: Callable[[int], None] | None = None,
) -> RescoreReport:
    """Score the window's articles with ``model`` (see the module docstring)."""
    if since >= until:
        raise ValueError(f"rescore window is empty: since {since} is not before until {until}")
    watermark = scored = flagged = 0
    newly: list[int] = []
    dropped: list[int] = []
    story_of_dropped: dict[int, int] = {}
    stories_still: set[int] = set()
    while True:
        with sessions.begin() as session:
            articles = list(
                session.scalars(
                    select(Article)
                    .outerjoin(
                        Classification,
                        and_(
                            Classification.article_id == Article.id,
                            Classification.revision == Article.revision,
                            Classification.model_version == model.version,
                        ),
                    )
                    .where(
                        Article.id > watermark,
                        Article.first_seen_at >= since,
                        Article.first_seen_at < until,
                        Classification.id.is_(None),
                    )
                    .order_by(Article.id)
                    .limit(batch)
                )
            )
            if not articles:
                break
            scores = model.score_docs([_doc(a, max_text_chars) for a in articles], regimes=regimes)
            touched: set[int] = set()
            for article, s in zip(articles, scores, strict=True):
                before = _latest(session, article)
                was = bool(before and before.flagged)
                add_classification(
                    session,
                    article,
                    model_version=model.version,
                    score=s.score,
                    threshold=model.threshold,
                    flagged=s.flagged,
                    regimes=s.evidence.regimes,
                    evidence={
                        **s.evidence.as_dict(),
                        "confidence": s.confidence,
                        "rescore": {
                            "previous_version": before.model_version if before else None,
                            "previous_flagged": was,
                            "at": now.isoformat(),
                        },
                    },
                    now=now,
                )
                flagged += s.flagged
                if s.flagged and not was:
                    newly.append(article.id)
                elif was and not s.flagged:
                    dropped.append(article.id)
                    if article.story_id is not None:
                        story_of_dropped[article.id] = article.story_id
                if article.story_id is not None:
                    touched.add(article.story_id)
                    if s.flagged:
                        stories_still.add(article.story_id)
            if touched:  # a re-score alone is not news for a story already evaluated
                session.execute(
                    update(Story)
                    .where(Story.id.in_(sorted(touched)))
                    .values(updated_at=now + timedelta(microseconds=1))
                )
            scored += len(articles)
            watermark = articles[-1].id
        if progress is not None:
            progress(scored)
        if len(articles) < batch:
            break
    stories_dropped = tuple(sorted(set(story_of_dropped.values()) - stories_still))
    report = RescoreReport(
        model.version, since, until, scored, flagged, tuple(newly), tuple(dropped), stories_dropped
    )
    log.info(
        "re-scored %d articles first seen %s..%s with %s: %d flagged, %d newly, %d dropped out "
        "(%d stories)",
        scored,
        since.isoformat(),
        until.isoformat(),
        model.version,
        flagged,
        len(newly),
        len(dropped),
        len(stories_dropped),
    )
    return report
