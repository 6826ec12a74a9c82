"""Database tables (SQLAlchemy 2 declarative). Migrations in ``pipeline/migrations`` follow this file.

Naming: these are *tables*, not "models" (that word means classifiers here).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Alert",
    "Article",
    "Base",
    "Classification",
    "Delivery",
    "Digest",
    "DigestItem",
    "Feed",
    "FetchLog",
    "LabelEvent",
    "Notice",
    "PageFetch",
    "Sighting",
    "Story",
    "StoryPrint",
    "UTCDateTime",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Feed(Base):
    __tablename__ = "feeds"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(300))
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    # SHA-256 of the last body parsed and stored: the same bytes again are not parsed (migration 0007).
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    # Hashes of the raw entries of the last document stored (pipeline/ingest/parse.py
    # ``entry_prints``): those entries are not normalised again (migration 0009).
    entry_prints: Mapped[str | None] = mapped_column(Text)
    last_fetch_at: Mapped[datetime | None]
    last_ok_at: Mapped[datetime | None]
    last_new_at: Mapped[datetime | None]
    next_fetch_after: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Feed health (pipeline/health/): the open alarm ("failing", "silent", "few_items"), since
    # when, and when operators were last told; all None while the feed is healthy.
    alarm: Mapped[str | None] = mapped_column(String(16))
    alarm_since: Mapped[datetime | None]
    alarm_notified_at: Mapped[datetime | None]


class FetchLog(Base):
    __tablename__ = "fetch_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(200), index=True)
    feed_id: Mapped[str] = mapped_column(ForeignKey("feeds.id"), index=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(20))  # ok | not_modified | error | deferred
    http_status: Mapped[int | None]
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    entries_seen: Mapped[int] = mapped_column(Integer, default=0)
    articles_new: Mapped[int] = mapped_column(Integer, default=0)
    articles_updated: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class Article(Base):
    __tablename__ = "articles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    feed_id: Mapped[str] = mapped_column(ForeignKey("feeds.id"), index=True)
    guid: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    lang: Mapped[str] = mapped_column(String(8), default="und")
    published_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    story_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # Where ``body`` came from: "feed" (the feed's content), or "page" (the text extracted from the
    # linked article page at ``page_fetched_at``; see pipeline/ingest/article.py).
    body_source: Mapped[str] = mapped_column(String(8), default="feed", server_default="feed")
    page_fetched_at: Mapped[datetime | None]


class PageFetch(Base):
    """One article page fetch per article revision: fetched, refused or skipped, and why.

    ``status`` is ok | error | skipped; ``reason`` a short kind (``blocked``, ``timeout``,
    ``too_big``, ``not_html``, ``robots``, ``empty``, ``budget``, …) and ``detail`` the message.
    """

    __tablename__ = "page_fetches"
    __table_args__ = (UniqueConstraint("article_id", "revision"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(16))  # always | band | regime
    head_score: Mapped[float | None] = mapped_column(Float)
    http_status: Mapped[int | None]
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    fetched_at: Mapped[datetime] = mapped_column(index=True)


class Sighting(Base):
    """Every feed an article was seen in (a syndicated story appears in many)."""

    __tablename__ = "sightings"
    __table_args__ = (UniqueConstraint("article_id", "feed_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    feed_id: Mapped[str] = mapped_column(ForeignKey("feeds.id"))
    url: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime]


class Classification(Base):
    __tablename__ = "classifications"
    __table_args__ = (UniqueConstraint("article_id", "revision", "model_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    model_version: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    flagged: Mapped[bool] = mapped_column(Boolean, index=True)
    regimes: Mapped[list[Any]] = mapped_column(default=list)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    classified_at: Mapped[datetime]


class Story(Base):
    """Near-duplicate flagged articles (syndicated copies, edits, translations) grouped as one event.

    ``articles.story_id`` points here. ``alerted_severity`` is the highest severity an alert was
    recorded at: a later source raises a new (update) alert only when the story's severity rises above
    it. See :mod:`pipeline.alerts.stories` and docs/alerts.md.
    """

    __tablename__ = "stories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), unique=True)
    severity: Mapped[str] = mapped_column(String(16))
    alerted_severity: Mapped[str | None] = mapped_column(String(16))
    regimes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]


class StoryPrint(Base):
    """The story fingerprint of an article placed in a story: its MinHash signature (``NUM_PERM``
    little-endian uint64) and its anchors, for the revision and fingerprint ``scheme`` it was computed
    from (:func:`pipeline.alerts.stories.print_scheme`). Later runs index the story window from these
    rows instead of re-reading and re-hashing every member's text; a row of another revision or
    scheme is recomputed (migration 0008)."""

    __tablename__ = "story_prints"
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    revision: Mapped[int] = mapped_column(Integer)
    scheme: Mapped[str] = mapped_column(String(32))
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    anchors: Mapped[list[Any]] = mapped_column(default=list)


class Alert(Base):
    """One alert per story and severity reached: ``kind`` is ``new`` (the story's first alert) or
    ``update`` (its severity rose). ``article_id`` is the story's lead article (its headline)."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("story_id", "severity"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"))
    kind: Mapped[str] = mapped_column(String(16), default="new", server_default="new")
    previous_severity: Mapped[str | None] = mapped_column(String(16))
    classification_id: Mapped[int] = mapped_column(ForeignKey("classifications.id"))
    score: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16))
    regimes: Mapped[list[Any]] = mapped_column(default=list)
    # What the severity was computed from, frozen when the alert is recorded: designated names,
    # independent sources, member article ids and the rule's explanation.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]


class Digest(Base):
    """One daily digest per (UTC day, channel, recipient); sent through one ``deliveries`` row."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("day", "channel", "recipient"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, UTC
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(500))
    items: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class DigestItem(Base):
    """An alert waiting for a digest subscriber's next digest (``digest_id`` set once composed)."""

    __tablename__ = "digest_items"
    __table_args__ = (UniqueConstraint("alert_id", "channel", "recipient"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    subscription_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("digests.id"), index=True)


class Delivery(Base):
    """The outbox: one row per (alert, channel, recipient), recorded before sending, marked after.

    A daily digest is sent through a row with ``alert_id`` NULL and ``digest_id`` set.
    Statuses: pending|sending|sent|failed.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "channel", "recipient"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("digests.id"), index=True)
    subscription_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # Whole seconds from the lead's publication / our first sight to ``sent_at``, as the message
    # showed them (migration 0006); NULL until sent, for digests, and published when not given.
    latency_published_s: Mapped[int | None] = mapped_column(Integer)
    latency_first_seen_s: Mapped[int | None] = mapped_column(Integer)


class Notice(Base):
    """Operator notices (a silent feed, a stuck mail): recorded once per problem, then sent."""

    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class LabelEvent(Base):
    """An analyst's label on an article, append-only (issue 12): the current label of an article is
    its latest event, and every earlier one stays as the audit trail. Written only by
    :mod:`pipeline.review.labels`, which never updates or deletes a row."""

    __tablename__ = "label_events"
    __table_args__ = (Index("ix_label_events_article", "article_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    label: Mapped[str] = mapped_column(String(16))  # relevant | not_relevant | unsure
    analyst: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(64))  # the model that scored it
    score: Mapped[float | None] = mapped_column(Float)
    via: Mapped[str] = mapped_column(String(16))  # cli | review | email | import
    # SHA-256 of the email token that carried the label: a token is used once, never replayed.
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
