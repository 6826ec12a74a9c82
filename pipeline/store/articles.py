"""Storage operations: idempotent upserts of feeds, fetch outcomes, articles and classifications.

Every write is safe to repeat: deterministic keys, inserts that ignore conflicts, and a whole feed's
batch in one transaction (all or none). Functions take a :class:`Session` and the current time; they
never read the clock. Rows are inserted many per statement (an executemany that SQLAlchemy sends as
multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING``), never one round trip per row.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pipeline.config import FeedConfig
from pipeline.faults import checkpoint
from pipeline.ingest.normalise import clean_text
from pipeline.ingest.parse import Entry
from pipeline.store.schema import Article, Base, Classification, Feed, FetchLog, Sighting

__all__ = [
    "ArticleRevision",
    "NotModified",
    "UpsertResult",
    "Verdict",
    "add_classification",
    "add_classifications",
    "articles_to_classify",
    "count_to_classify",
    "insert_ignore",
    "record_fetch",
    "record_not_modified",
    "sync_feeds",
    "upsert_entries",
]

log = logging.getLogger(__name__)


_MAX_ERROR = 4000
_PRINTABLE = re.compile(r"[\x20-\x7e\t]+")


def _validator(value: str | None, column: Any) -> str | None:
    """``value`` when it is printable ASCII that fits ``column``'s length, else None."""
    if not value:
        return None
    length = getattr(column.type, "length", None)
    if (length is not None and len(value) > length) or not _PRINTABLE.fullmatch(value):
        log.warning("dropping a %d-character validator the server sent: unusable", len(value))
        return None
    return value


def _insert_returning(
    session: Session,
    table: type[Base],
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    returning: Sequence[str],
) -> list[Any]:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING`` for many rows at once: the ``returning``
    columns of the rows actually inserted, in no particular order. One executemany, which SQLAlchemy
    sends as a few multi-row statements (its "insertmanyvalues", one compiled statement, batches
    under the drivers' bound-parameter limits) instead of one round trip a row."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    core = table.__table__
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:  # executemany wants the same columns in every row
        shapes.setdefault(tuple(row), []).append(row)
    out: list[Any] = []
    for group in shapes.values():
        stmt = (
            module.insert(core)
            .on_conflict_do_nothing(index_elements=list(conflict))
            .returning(*(core.c[name] for name in returning))
        )
        out.extend(session.execute(stmt, group).all())
    return out


def insert_ignore(
    session: Session, table: type[Base], rows: Sequence[dict[str, Any]], conflict: Sequence[str]
) -> list[int]:
    """INSERT rows, skipping any that collide on ``conflict``; returns the ids actually inserted
    (batched: a few multi-row statements, not one a row; the ids in no particular order)."""
    if not rows:
        return []
    return [r[0] for r in _insert_returning(session, table, rows, conflict, ["id"])]


def sync_feeds(session: Session, feeds: Iterable[FeedConfig]) -> None:
    """Make the feeds table know every configured feed (URL and name follow the config).

    New feeds are inserted with insert-or-ignore: two runs starting at once on PostgreSQL both see
    the feed missing, and a plain INSERT in the second would fail on the primary key.
    """
    feeds = list(feeds)
    existing = set(session.scalars(select(Feed.id)))
    missing = [
        {"id": cfg.id, "url": cfg.url, "name": cfg.name, "consecutive_failures": 0}
        for cfg in feeds
        if cfg.id not in existing
    ]
    insert_ignore(session, Feed, missing, ["id"])
    rows = {f.id: f for f in session.scalars(select(Feed))}
    for cfg in feeds:
        row = rows.get(cfg.id)
        if row is None:  # pragma: no cover - inserted just above, by us or by a concurrent run
            continue
        if row.url != cfg.url or row.name != cfg.name:
            if row.url != cfg.url:  # validators belong to the old URL
                row.etag = row.last_modified = None
            row.url, row.name = cfg.url, cfg.name
    session.flush()


@dataclass(frozen=True, slots=True)
class UpsertResult:
    new_ids: tuple[int, ...]
    updated_ids: tuple[int, ...]
    duplicates: int


def upsert_entries(session: Session, entries: Sequence[Entry], *, now: datetime) -> UpsertResult:
    """Store entries, deduplicating by key (URL/GUID) and by content hash, across feeds and runs.

    A known key with new content is an edit: the row is updated and its revision bumped, so it is
    classified again (an alert follows only if the label flips). A different key with known content is
    a syndicated copy: recorded as a sighting of the existing article.
    """
    if not entries:
        return UpsertResult((), (), 0)
    keys = [e.key for e in entries]
    hashes = [e.content_hash for e in entries]
    by_key = {a.key: a for a in session.scalars(select(Article).where(Article.key.in_(keys)))}
    by_hash: dict[str, int] = {}
    for article_id, chash in session.execute(
        select(Article.id, Article.content_hash).where(Article.content_hash.in_(hashes))
    ):
        by_hash.setdefault(chash, article_id)
    updated: list[int] = []
    duplicates = 0
    sightings: list[dict[str, Any]] = []
    new_rows: list[dict[str, Any]] = []
    fresh: dict[str, str] = {}  # content hash -> key of the new row of this batch that carries it
    pending: list[tuple[Entry, str]] = []  # sightings of new rows: (entry, the new row's key)
    for entry in entries:
        existing = by_key.get(entry.key)
        if existing is not None:
            if existing.content_hash != entry.content_hash:
                existing.title, existing.summary, existing.body = (
                    entry.title,
                    entry.summary,
                    entry.body,
                )
                existing.content_hash, existing.lang = entry.content_hash, entry.lang
                # The body is the feed's again; the new revision may get its page (store/pages.py).
                existing.body_source, existing.page_fetched_at = "feed", None
                existing.revision += 1
                existing.updated_at = now
                updated.append(existing.id)
            else:
                duplicates += 1
            sightings.append(
                {"article_id": existing.id, "feed_id": entry.feed_id, "url": entry.url}
            )
            continue
        if entry.content_hash in by_hash:
            duplicates += 1
            sightings.append(
                {
                    "article_id": by_hash[entry.content_hash],
                    "feed_id": entry.feed_id,
                    "url": entry.url,
                }
            )
            continue
        if entry.content_hash in fresh:  # the same text as a new article of this batch
            duplicates += 1
            pending.append((entry, fresh[entry.content_hash]))
            continue
        fresh[entry.content_hash] = entry.key
        pending.append((entry, entry.key))
        new_rows.append(
            {
                "key": entry.key,
                "feed_id": entry.feed_id,
                "guid": entry.guid,
                "url": entry.url,
                "title": entry.title,
                "summary": entry.summary,
                "body": entry.body,
                "lang": entry.lang,
                "published_at": entry.published_at,
                "first_seen_at": now,
                "updated_at": now,
                "content_hash": entry.content_hash,
                "revision": 1,
            }
        )
    ids: dict[str, int] = {}
    new_ids: list[int] = []
    if new_rows:
        returned = _insert_returning(session, Article, new_rows, ["key"], ["key", "id"])
        ids = {key: article_id for key, article_id in returned}
        if len(ids) >= 2:
            checkpoint("ingest.mid_batch")
        new_ids = [ids[r["key"]] for r in new_rows if r["key"] in ids]  # in feed order
        lost = [r["key"] for r in new_rows if r["key"] not in ids]
        if lost:  # another process inserted the same keys between our read and our write
            duplicates += len(lost)
            found = session.execute(select(Article.key, Article.id).where(Article.key.in_(lost)))
            ids.update((key, article_id) for key, article_id in found)
    for entry, key in pending:
        sightings.append({"article_id": ids[key], "feed_id": entry.feed_id, "url": entry.url})
    session.flush()
    insert_ignore(
        session,
        Sighting,
        [{**s, "seen_at": now} for s in sightings],
        ["article_id", "feed_id"],
    )
    return UpsertResult(tuple(new_ids), tuple(updated), duplicates)


def record_fetch(
    session: Session,
    *,
    run_id: str,
    feed_id: str,
    started_at: datetime,
    finished_at: datetime,
    outcome: str,
    http_status: int | None = None,
    nbytes: int = 0,
    entries_seen: int = 0,
    articles_new: int = 0,
    articles_updated: int = 0,
    duplicates: int = 0,
    skipped: int = 0,
    error: str | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    next_fetch_after: datetime | None = None,
    body_sha256: str | None = None,
    entry_prints: str | None = None,
) -> None:
    """Log one fetch and update the feed's state (validators, failure count, back-off, and on an
    ``ok`` outcome the hash of the body just stored and the prints of its entries).

    ``error`` and the validators come from the feed's server: the error text is cleaned like feed
    text (no NUL or lone surrogate reaches the database) and a validator that does not fit its
    column or could not be sent back as a header is dropped (it is only a cache hint).
    """
    error = (clean_text(error, max_chars=_MAX_ERROR) or None) if error else None
    etag = _validator(etag, Feed.etag)
    last_modified = _validator(last_modified, Feed.last_modified)
    session.add(
        FetchLog(
            **_log_row(
                run_id,
                feed_id,
                started_at,
                finished_at,
                outcome,
                http_status,
                nbytes=nbytes,
                entries_seen=entries_seen,
                articles_new=articles_new,
                articles_updated=articles_updated,
                duplicates=duplicates,
                skipped=skipped,
                error=error,
            )
        )
    )
    feed = session.get(Feed, feed_id)
    if feed is None:
        return
    feed.last_fetch_at = finished_at
    feed.next_fetch_after = next_fetch_after
    if outcome in ("ok", "not_modified"):
        for name, value in _success_state(finished_at, next_fetch_after).items():
            setattr(feed, name, value)
        if etag is not None or last_modified is not None or outcome == "ok":
            feed.etag, feed.last_modified = etag, last_modified
        if outcome == "ok":
            feed.body_sha256, feed.entry_prints = body_sha256, entry_prints
        if articles_new:
            feed.last_new_at = finished_at
    elif outcome == "error":
        feed.consecutive_failures += 1
        feed.last_error = error


def _log_row(
    run_id: str,
    feed_id: str,
    started_at: datetime,
    finished_at: datetime,
    outcome: str,
    http_status: int | None,
    *,
    nbytes: int = 0,
    entries_seen: int = 0,
    articles_new: int = 0,
    articles_updated: int = 0,
    duplicates: int = 0,
    skipped: int = 0,
    error: str | None = None,
) -> dict[str, Any]:
    """The columns of one fetch-log row (:func:`record_fetch`, :func:`record_not_modified`)."""
    return {
        "run_id": run_id,
        "feed_id": feed_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "outcome": outcome,
        "http_status": http_status,
        "bytes": nbytes,
        "entries_seen": entries_seen,
        "articles_new": articles_new,
        "articles_updated": articles_updated,
        "duplicates": duplicates,
        "skipped": skipped,
        "error": error,
    }


def _success_state(at: datetime, next_fetch_after: datetime | None) -> dict[str, Any]:
    """A feed's state after a successful fetch (``ok`` or ``not_modified``), validators apart."""
    return {
        "last_fetch_at": at,
        "next_fetch_after": next_fetch_after,
        "last_ok_at": at,
        "consecutive_failures": 0,
        "last_error": None,
    }


class NotModified(NamedTuple):
    """One fetch the server answered with nothing new (304, or the stored body byte for byte)."""

    feed_id: str
    http_status: int | None
    etag: str | None
    last_modified: str | None


def record_not_modified(
    session: Session, fetches: Sequence[NotModified], *, run_id: str, at: datetime
) -> None:
    """Log many fetches with nothing new at once, as :func:`record_fetch` with outcome
    ``not_modified`` would one by one: a fetch-log row each, and each feed's state (last fetch and
    last success now, failures reset, error cleared, validators replaced when the server sent any).

    Two statements in all (an executemany INSERT and an UPDATE by primary key), not a query and a
    flush per feed: a quiet cycle over 1,000 feeds spent about two seconds here. A feed id that is
    not stored makes the INSERT fail (the fetch log's foreign key): the caller then records each
    fetch on its own.
    """
    if not fetches:
        return
    session.execute(
        insert(FetchLog),
        [_log_row(run_id, f.feed_id, at, at, "not_modified", f.http_status) for f in fetches],
    )
    state = _success_state(at, None)
    with_validators: list[dict[str, Any]] = []
    without: list[dict[str, Any]] = []
    for f in fetches:
        etag = _validator(f.etag, Feed.etag)
        last_modified = _validator(f.last_modified, Feed.last_modified)
        if etag is None and last_modified is None:
            without.append({"id": f.feed_id, **state})
        else:
            with_validators.append(
                {"id": f.feed_id, **state, "etag": etag, "last_modified": last_modified}
            )
    for rows in (with_validators, without):
        if rows:
            session.execute(update(Feed), rows)


def articles_to_classify(
    session: Session, model_version: str, *, after_id: int = 0, limit: int = 500
) -> list[Article]:
    """The next batch of work for ``model_version``: up to ``limit`` articles with an id above
    ``after_id`` whose current revision *no* model has classified yet (new articles and new
    revisions of edited ones), in id order.

    History is not re-scored here: after a promotion, the articles the previous model scored keep
    their classification, and the ``rescore`` DAG (:mod:`pipeline.classify.rescore`) re-scores the
    window an operator chooses, alerting only stories that become newly flagged. Otherwise every
    promotion would re-score, and possibly re-alert, the whole database in the next alert run.

    Keyset pagination: the caller passes the last id of one batch as ``after_id`` of the next, so
    each query binds two numbers whatever the size of the backlog (never a list of ids, which a big
    first cycle made larger than SQLite's or PostgreSQL's limit on bind parameters), reads each
    article once, and ends even when an article cannot be classified. The backlog a failed run left
    is picked up by the next run, which starts again from 0.
    """
    stmt = (
        select(Article)
        .outerjoin(
            Classification,
            and_(
                Classification.article_id == Article.id,
                Classification.revision == Article.revision,
            ),
        )
        .where(Article.id > after_id, Classification.id.is_(None))
        .order_by(Article.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


class ArticleRevision(NamedTuple):
    """Which revision of which article a verdict is about (read in one transaction, written in a
    later one, as classify does while worker processes score)."""

    id: int
    revision: int


def count_to_classify(session: Session, *, cap: int) -> int:
    """How many article revisions no model has classified yet, counted up to ``cap`` (the classify
    run only needs to know whether its backlog repays worker processes)."""
    inner = (
        select(Article.id)
        .outerjoin(
            Classification,
            and_(
                Classification.article_id == Article.id,
                Classification.revision == Article.revision,
            ),
        )
        .where(Classification.id.is_(None))
        .limit(cap)
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def add_classification(
    session: Session,
    article: Article | ArticleRevision,
    *,
    model_version: str,
    score: float,
    threshold: float,
    flagged: bool,
    regimes: Sequence[str],
    evidence: dict[str, Any],
    now: datetime,
) -> None:
    """Record one model's verdict on an article's current revision (its evidence as JSON)."""
    session.add(
        Classification(
            article_id=article.id,
            revision=article.revision,
            model_version=model_version,
            score=score,
            threshold=threshold,
            flagged=flagged,
            regimes=list(regimes),
            evidence=evidence,
            classified_at=now,
        )
    )


class Verdict(NamedTuple):
    """One model's verdict on one article revision, as :func:`add_classifications` stores it."""

    article: ArticleRevision
    score: float
    flagged: bool
    regimes: Sequence[str]
    evidence: dict[str, Any]


def add_classifications(
    session: Session,
    verdicts: Sequence[Verdict],
    *,
    model_version: str,
    threshold: float,
    now: datetime,
) -> None:
    """Record many verdicts of one model with one multi-row INSERT (the rows
    :func:`add_classification` would add one by one, without an ORM object each)."""
    if not verdicts:
        return
    session.execute(
        insert(Classification),
        [
            {
                "article_id": v.article.id,
                "revision": v.article.revision,
                "model_version": model_version,
                "score": v.score,
                "threshold": threshold,
                "flagged": v.flagged,
                "regimes": list(v.regimes),
                "evidence": v.evidence,
                "classified_at": now,
            }
            for v in verdicts
        ],
    )
