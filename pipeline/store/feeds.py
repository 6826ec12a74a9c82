"""The feeds' side of storage: their fetch state, which feeds have gone silent, and why the
database refused a feed's rows. Nothing here writes: the fetch log and the articles are written by
:mod:`pipeline.store.articles`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from pipeline.config import FeedConfig
from pipeline.store.schema import Feed, FetchLog

__all__ = [
    "FetchState",
    "SilentFeed",
    "fetch_states",
    "last_ok_entries",
    "refusal_reason",
    "silent_feeds",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FetchState:
    """What the next fetch of a feed sends (validators) and whether it may happen yet."""

    etag: str | None
    last_modified: str | None
    next_fetch_after: datetime | None
    body_sha256: str | None = None  # of the last body parsed and stored
    entry_prints: str | None = None  # the raw entries of that body (pipeline.ingest.parse)

    def due(self, now: datetime) -> bool:
        return self.next_fetch_after is None or self.next_fetch_after <= now


def fetch_states(session: Session) -> dict[str, FetchState]:
    """Every known feed's fetch state, by feed id."""
    return {
        f.id: FetchState(f.etag, f.last_modified, f.next_fetch_after, f.body_sha256, f.entry_prints)
        for f in session.scalars(select(Feed))
    }


def refusal_reason(err: DataError | IntegrityError) -> str:
    """A short reason for a feed's rows the database refused (never the statement or its
    parameters, which hold feed text)."""
    orig = getattr(err, "orig", None) or err
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"the database refused this feed's entries: {type(orig).__name__}: {first[:200]}"


@dataclass(frozen=True, slots=True)
class SilentFeed:
    """A feed not fetched successfully for longer than its ``max_silence_hours``."""

    feed_id: str
    url: str
    max_silence_hours: float
    last_ok_at: datetime | None
    last_error: str | None


def silent_feeds(session: Session, feeds: Iterable[FeedConfig], now: datetime) -> list[SilentFeed]:
    """The configured feeds silent at ``now``: since their last success, or since their first
    attempt when they never succeeded (a feed never tried yet, or with ``max_silence_hours: 0``, is
    never silent)."""
    out: list[SilentFeed] = []
    for cfg in feeds:
        feed = session.get(Feed, cfg.id)
        if feed is None or cfg.max_silence_hours <= 0 or feed.last_fetch_at is None:
            continue
        since = feed.last_ok_at or session.scalar(
            select(func.min(FetchLog.started_at)).where(FetchLog.feed_id == feed.id)
        )
        if since is None or now - since > timedelta(hours=cfg.max_silence_hours):
            out.append(
                SilentFeed(
                    feed.id, feed.url, cfg.max_silence_hours, feed.last_ok_at, feed.last_error
                )
            )
    return out


def last_ok_entries(session: Session) -> dict[str, int]:
    """Entries seen by each feed's latest successful (``ok``) fetch, by feed id."""
    latest = (
        select(FetchLog.feed_id, func.max(FetchLog.id).label("id"))
        .where(FetchLog.outcome == "ok")
        .group_by(FetchLog.feed_id)
        .subquery()
    )
    rows = session.execute(
        select(FetchLog.feed_id, FetchLog.entries_seen).join(latest, FetchLog.id == latest.c.id)
    )
    return {feed_id: int(seen) for feed_id, seen in rows}
