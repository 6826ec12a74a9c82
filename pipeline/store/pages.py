"""The article pages' side of storage: which items the full-text cascade may consider, and what it
found (pipeline/ingest/article.py).

* :func:`page_candidates` lists article revisions **never classified by any model** whose body still
  comes from the feed, whose page was never tried for this revision, and whose feed's ``full_text``
  is ``auto`` or ``always``. So the cascade looks at an item once, before its first score: a new
  model scoring old articles again never fetches pages.
* :func:`store_pages` records one ``page_fetches`` row per outcome (insert-or-ignore on article and
  revision: a re-run records nothing twice) and, for a page whose text was extracted, replaces the
  article's body with it (``body_source='page'``, ``page_fetched_at``), unless the article was
  edited since (its revision moved on). The content hash and the revision do not change: they
  identify what the feed said.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from pipeline.ingest.article import PageCandidate, PageOutcome
from pipeline.ingest.normalise import clean_text
from pipeline.store.articles import insert_ignore
from pipeline.store.schema import Article, Classification, PageFetch

__all__ = ["page_candidates", "page_fetch_counts", "store_pages"]

log = logging.getLogger(__name__)

_MAX_DETAIL = 2000


def page_candidates(
    session: Session, modes: Mapping[str, str], *, limit: int = 5000
) -> list[PageCandidate]:
    """Unclassified article revisions the cascade may fetch a page for (see the module docstring).

    ``modes`` maps feed ids to their ``full_text`` setting; feeds not in it (or ``never``) are left
    out. Newest first, at most ``limit``.
    """
    feeds = [feed_id for feed_id, mode in modes.items() if mode in ("auto", "always")]
    if not feeds:
        return []
    classified = exists().where(
        and_(Classification.article_id == Article.id, Classification.revision == Article.revision)
    )
    tried = exists().where(
        and_(PageFetch.article_id == Article.id, PageFetch.revision == Article.revision)
    )
    stmt = (
        select(
            Article.id,
            Article.revision,
            Article.feed_id,
            Article.url,
            Article.title,
            Article.summary,
            Article.body,
        )
        .where(Article.body_source == "feed", Article.feed_id.in_(feeds), ~classified, ~tried)
        .order_by(Article.id.desc())
        .limit(limit)
    )
    return [
        PageCandidate(
            article_id=row.id,
            revision=row.revision,
            feed_id=row.feed_id,
            mode=modes[row.feed_id],  # type: ignore[arg-type]
            url=row.url,
            title=row.title,
            summary=row.summary,
            body=row.body,
        )
        for row in session.execute(stmt)
    ]


def store_pages(session: Session, outcomes: Sequence[PageOutcome], *, now: datetime) -> int:
    """Record ``outcomes`` and store the extracted bodies; returns how many bodies were stored."""
    stored = 0
    for o in outcomes:
        row: dict[str, Any] = {
            "article_id": o.article_id,
            "revision": o.revision,
            "host": o.host[:255],
            "status": o.status,
            "reason": o.reason,
            "detail": clean_text(o.detail, max_chars=_MAX_DETAIL) or None,
            "trigger": o.trigger,
            "head_score": o.head_score,
            "http_status": o.http_status,
            "bytes": o.nbytes,
            "fetched_at": now,
        }
        if not insert_ignore(session, PageFetch, [row], ["article_id", "revision"]):
            continue  # recorded by an earlier or concurrent run
        if o.status != "ok" or not o.body:
            continue
        article = session.get(Article, o.article_id)
        if article is None or article.revision != o.revision or article.body_source != "feed":
            continue
        article.body = o.body
        article.body_source = "page"
        article.page_fetched_at = now
        stored += 1
    session.flush()
    return stored


def page_fetch_counts(session: Session) -> dict[str, int]:
    """How many page fetches ended how: ``{"ok": n, "error:timeout": n, "skipped:budget": n, …}``."""
    counts: Counter[str] = Counter()
    for status, reason, n in session.execute(
        select(PageFetch.status, PageFetch.reason, func.count()).group_by(
            PageFetch.status, PageFetch.reason
        )
    ):
        counts[status if status == "ok" else f"{status}:{reason}"] += n
    return dict(counts)
