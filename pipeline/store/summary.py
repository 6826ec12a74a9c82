"""What the database holds, in counts an operator reads at a glance (``make demo`` prints it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from pipeline.store.schema import Alert, Article, Classification, Delivery, Digest, Feed, Story

__all__ = ["database_summary"]


def database_summary(session: Session, *, titles: int = 10) -> dict[str, Any]:
    """Row counts, deliveries by status and the titles of the newest alerts (JSON types only)."""

    def count(stmt: Select[Any]) -> int:
        return int(session.scalar(stmt) or 0)

    def rows(table: Any) -> int:
        return count(select(func.count()).select_from(table))

    by_status = dict(
        session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
        .tuples()
        .all()  # a list: SQLAlchemy 2.1's Result has keys(), which dict() would take for a mapping
    )
    newest = session.scalars(
        select(Article.title)
        .join(Alert, Alert.article_id == Article.id)
        .order_by(Alert.id.desc())
        .limit(titles)
    ).all()
    return {
        "feeds": rows(Feed),
        "articles": rows(Article),
        "classified": rows(Classification),
        "flagged": count(
            select(func.count()).select_from(Classification).where(Classification.flagged.is_(True))
        ),
        "alerts": rows(Alert),
        "stories": rows(Story),
        "digests": rows(Digest),
        "deliveries": by_status,
        "flagged_titles": list(newest),
    }
