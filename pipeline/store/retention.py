"""Retention and database maintenance (the ``housekeeping`` DAG): old rows out, statistics fresh.

* :func:`purge_old_rows` deletes, in the caller's transaction, fetch-log rows older than
  ``retention.fetch_log_days``, *sent* deliveries older than ``retention.sent_deliveries_days`` (by
  ``sent_at``; pending and failed rows are never purged: they are work or evidence), and articles
  first seen more than ``retention.articles_days`` ago that nothing durable points at (no alert,
  story lead or analyst label; their sightings, classifications and page fetches go with them by
  ``ON DELETE CASCADE``). A value of 0 keeps those rows for ever. An article purged and later seen
  again in a feed is stored as new (its key is gone): keep ``articles_days`` well above how long a
  feed lists an item (the freshness rule then marks it late).
* :func:`maintain` runs ``VACUUM`` and ``ANALYZE`` on SQLite, ``ANALYZE`` on PostgreSQL (autovacuum
  does the rest there), outside any transaction.

``now`` comes from the caller. Returns counts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, delete, exists, select, text
from sqlalchemy.orm import Session

from pipeline.store.schema import Alert, Article, Delivery, FetchLog, LabelEvent, Story

__all__ = ["Purged", "maintain", "purge_old_rows"]


@dataclass(frozen=True, slots=True)
class Purged:
    fetch_log: int = 0
    deliveries: int = 0
    articles: int = 0


def _deleted(session: Session, statement: Any) -> int:
    return cast("CursorResult[Any]", session.execute(statement)).rowcount


def purge_old_rows(
    session: Session,
    *,
    now: datetime,
    fetch_log_days: float,
    sent_deliveries_days: float,
    articles_days: float,
) -> Purged:
    """Delete what is older than each retention (0: keep); see the module docstring."""
    counts = {"fetch_log": 0, "deliveries": 0, "articles": 0}
    if fetch_log_days > 0:
        cut = now - timedelta(days=fetch_log_days)
        counts["fetch_log"] = _deleted(session, delete(FetchLog).where(FetchLog.started_at < cut))
    if sent_deliveries_days > 0:
        cut = now - timedelta(days=sent_deliveries_days)
        counts["deliveries"] = _deleted(
            session, delete(Delivery).where(Delivery.status == "sent", Delivery.sent_at < cut)
        )
    if articles_days > 0:
        cut = now - timedelta(days=articles_days)
        kept = (
            exists().where(Alert.article_id == Article.id),
            exists().where(Story.lead_article_id == Article.id),
            exists().where(LabelEvent.article_id == Article.id),
        )
        ids = select(Article.id).where(Article.first_seen_at < cut, *(~k for k in kept))
        counts["articles"] = _deleted(
            session,
            delete(Article).where(Article.id.in_(ids)).execution_options(synchronize_session=False),
        )
    return Purged(**counts)


def maintain(engine: Engine) -> str:
    """VACUUM + ANALYZE (SQLite) or ANALYZE (PostgreSQL); returns what ran."""
    if engine.dialect.name == "sqlite":
        # Straight on the driver's connection (autocommit there): the engine's "begin" hook would
        # open BEGIN IMMEDIATE, and SQLite cannot VACUUM inside a transaction.
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("VACUUM")
            cursor.execute("ANALYZE")
            cursor.close()
        finally:
            raw.close()
        return "VACUUM + ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    return "ANALYZE"
