"""Stories, alerts and outbox rows: everything the ``record_alerts`` stage writes before anything
is sent (:func:`record_story_alerts`; :mod:`pipeline.alerts.digest` composes the digests).

For each flagged article without a story, in the order they were first seen:

1. **story** — it joins the most similar recent story (:mod:`pipeline.alerts.stories`: MinHash LSH over
   word shingles, plus the cross-lingual anchor signal) or starts a new one, led by itself;
2. **severity** — every story that gained a member, a sighting (a syndicated copy in another feed) or
   a new classification since it was last evaluated is evaluated again with the documented rule
   (:mod:`pipeline.alerts.severity`) over its best score, the UN-designated names its texts mention, its
   independent sources (distinct publishers) and its regimes;
3. **alerts** — a story's first evaluation records its ``new`` alert; later, an ``update`` alert only
   when the severity rises above the highest one already alerted (one per level reached, so at most
   three updates in a story's life). Alerts are unique on (story, severity): insert-or-ignore;
4. **outbox** — one ``deliveries`` row per (alert, channel, recipient) of every matching immediate
   subscription, and one ``digest_items`` row per (alert, channel, recipient) of every matching digest
   subscription (:mod:`pipeline.alerts.digest` gathers those once a day). Immediate subscriptions are served
   first, so a recipient on both an immediate and a digest subscription gets the alert once, now.

A story's facts (members, classifications, sources, designated names) are read by
:mod:`pipeline.alerts.facts`, many stories at once; their names are re-exported here for callers of
earlier releases. Everything runs in the caller's transaction; on PostgreSQL a transaction-scoped advisory lock keeps
two concurrent runs from grouping the same articles twice (SQLite's ``BEGIN IMMEDIATE`` already does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, select, text, update
from sqlalchemy.orm import Session

from pipeline.alerts.facts import SUMMARY_CHARS as SUMMARY_CHARS
from pipeline.alerts.facts import DesignationMatcher as DesignationMatcher
from pipeline.alerts.facts import SourceRow as SourceRow
from pipeline.alerts.facts import StoryFacts as StoryFacts
from pipeline.alerts.facts import _publisher as _publisher
from pipeline.alerts.facts import current_classifications as current_classifications
from pipeline.alerts.facts import member_text
from pipeline.alerts.facts import story_facts as story_facts
from pipeline.alerts.facts import story_facts_many as story_facts_many
from pipeline.alerts.ids import message_id_for
from pipeline.alerts.severity import explain_severity, rank, severity
from pipeline.alerts.stories import (
    Fingerprint,
    StoryIndex,
    StoryText,
    fingerprint,
    print_scheme,
    restore,
    signature_bytes,
)
from pipeline.config import Config, Subscription
from pipeline.knowledge.regimes import RegimeBook
from pipeline.store.articles import insert_ignore
from pipeline.store.schema import (
    Alert,
    Article,
    Classification,
    Delivery,
    DigestItem,
    Sighting,
    Story,
    StoryPrint,
)

__all__ = [
    "DesignationMatcher",
    "RecordReport",
    "StoryDescriber",
    "StoryFacts",
    "matches_story",
    "record_story_alerts",
    "story_facts",
    "story_facts_many",
]

log = logging.getLogger(__name__)

# story -> what its alert alleges (pipeline.alerts.describe.Describer.describe), frozen in the alert
StoryDescriber = Callable[["StoryFacts"], dict[str, Any]]
_LOCK_KEY = 0x53574131  # "SWA1": serialises record_alerts runs on PostgreSQL
_CHUNK = 500  # rows bound per IN (...) list: below every supported database's limit


# --------------------------------------------------------------------------------- subscriptions


def matches_story(sub: Subscription, facts: StoryFacts, alert: Alert) -> bool:
    """Does this alert pass the subscription's filters? (Languages, sources and keywords match when
    any article of the story does.)"""
    if sub.regimes and not set(sub.regimes) & set(alert.regimes or ()):
        return False
    if rank(alert.severity) < rank(sub.min_severity) or alert.score < sub.min_score:
        return False
    if sub.languages and not facts.languages & set(sub.languages):
        return False
    if sub.sources and not facts.feeds & set(sub.sources):
        return False
    if sub.keywords:
        body = facts.text().casefold()
        if not any(k in body for k in sub.keywords):
            return False
    if sub.kinds:
        # Kinds frozen in the alert (pipeline/alerts/describe.py). None means no tagger was servable
        # when the alert was recorded: the filter lets it through rather than hide it (docs/alerts.md).
        kinds = ((alert.details or {}).get("allegation") or {}).get("kinds")
        if kinds is not None and not set(sub.kinds) & set(kinds):
            return False
    return True


def _outbox_rows(
    config: Config, alert: Alert, facts: StoryFacts, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Outbox rows of immediate subscriptions and digest items of digest ones, one per
    (channel, recipient): immediate subscriptions first, so a recipient on both gets it now."""
    deliveries: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    taken: set[tuple[str, str]] = set()
    ordered = sorted(config.subscriptions, key=lambda s: s.mode != "immediate")
    for sub in ordered:
        if not matches_story(sub, facts, alert):
            continue
        for rcpt in sub.recipients:
            if (sub.channel, rcpt.lower()) in taken:
                continue
            taken.add((sub.channel, rcpt.lower()))
            if sub.mode == "digest":
                items.append(
                    {
                        "alert_id": alert.id,
                        "subscription_id": sub.id,
                        "channel": sub.channel,
                        "recipient": rcpt,
                        "created_at": now,
                        "digest_id": None,
                    }
                )
                continue
            token: int | str = alert.id if sub.channel == "email" else f"{alert.id}.{sub.channel}"
            deliveries.append(
                {
                    "alert_id": alert.id,
                    "subscription_id": sub.id,
                    "channel": sub.channel,
                    "recipient": rcpt,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "message_id": message_id_for(token, rcpt, config.smtp.sender),
                    "created_at": now,
                }
            )
    return deliveries, items


# -------------------------------------------------------------------------------------- record


@dataclass(slots=True)
class RecordReport:
    alert_ids: list[int] = field(default_factory=list)
    stories_new: int = 0
    stories_joined: int = 0
    updates: int = 0
    deliveries: int = 0
    queued: int = 0


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def _story_text(article: Article, cls: Classification | None) -> StoryText:
    return StoryText(
        key=article.id,
        title=article.title,
        text=member_text(article),
        lang=article.lang,
        published_at=article.published_at or article.first_seen_at,
        regimes=tuple((cls.regimes if cls else None) or ()),
    )


def _resolutions(regimes: RegimeBook | None) -> frozenset[int]:
    if regimes is None:
        return frozenset()
    return frozenset(n for r in regimes.regimes.values() for n in r.resolutions)


def _group_new_articles(
    session: Session,
    config: Config,
    now: datetime,
    regimes: RegimeBook | None,
    report: RecordReport,
) -> set[int]:
    """Give every flagged article without a story its story; returns the stories that changed.

    Articles are read :data:`_CHUNK` at a time (the story window's members to index them, then the
    new flagged articles in the order they were first seen), so memory holds the index and one
    chunk of rows, not every flagged article of a burst."""
    candidates = sorted(
        session.execute(
            select(Article.id, Article.first_seen_at)
            .join(
                Classification,
                and_(
                    Classification.article_id == Article.id,
                    Classification.revision == Article.revision,
                ),
            )
            .where(Article.story_id.is_(None), Classification.flagged.is_(True))
            .distinct()
        ),
        key=lambda r: (r[1], r[0]),
    )
    if not candidates:
        return set()
    window = timedelta(hours=config.alerts.story_window_hours)
    ignore = _resolutions(regimes)
    scheme = print_scheme(ignore)
    index = StoryIndex(config.alerts.story_threshold, window=window)
    _index_window(session, index, since=now - window, ignore=ignore, scheme=scheme)
    touched: set[int] = set()
    for start in range(0, len(candidates), _CHUNK):
        chunk = [article_id for article_id, _ in candidates[start : start + _CHUNK]]
        current = current_classifications(session, chunk)
        loaded = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(chunk)))}
        placed: list[tuple[Article, Fingerprint]] = []
        for article_id in chunk:
            cls = current.get(article_id)
            article = loaded.get(article_id)
            if cls is None or not cls.flagged or article is None:
                continue  # its current revision is not flagged (an older one was)
            fp = fingerprint(_story_text(article, cls), ignore_numbers=ignore)
            _place(session, article, fp, cls, index, now, report, touched)
            placed.append((article, fp))
        _store_prints(session, placed, scheme)
    return touched


def _index_window(
    session: Session, index: StoryIndex, *, since: datetime, ignore: frozenset[int], scheme: str
) -> None:
    """Add every story member first seen since ``since`` to ``index``, in id order, from its stored
    print (:class:`~pipeline.store.schema.StoryPrint`); a member without a print of its current
    revision and of ``scheme`` is fingerprinted from its text, and its print stored, once."""
    members = session.execute(
        select(Article.id, Article.story_id, Article.revision, Article.lang, Article.published_at)
        .add_columns(Article.first_seen_at)
        .where(Article.story_id.is_not(None), Article.first_seen_at >= since)
        .order_by(Article.id)
    ).all()
    for start in range(0, len(members), _CHUNK):
        rows = members[start : start + _CHUNK]
        ids = [r.id for r in rows]
        stored = {
            p.article_id: p
            for p in session.execute(
                select(StoryPrint.article_id, StoryPrint.revision, StoryPrint.signature)
                .add_columns(StoryPrint.anchors)
                .where(StoryPrint.article_id.in_(ids), StoryPrint.scheme == scheme)
            )
        }
        cls = current_classifications(session, ids)
        stale = [r.id for r in rows if r.id not in stored or stored[r.id].revision != r.revision]
        texts = (
            {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(stale)))}
            if stale
            else {}
        )
        fresh: list[tuple[Article, Fingerprint]] = []
        for r in rows:
            assert r.story_id is not None
            current = cls.get(r.id)
            if r.id in texts:
                fp = fingerprint(_story_text(texts[r.id], current), ignore_numbers=ignore)
                fresh.append((texts[r.id], fp))
            else:
                item = StoryText(
                    key=r.id,
                    title="",
                    text="",
                    lang=r.lang,
                    published_at=r.published_at or r.first_seen_at,
                    regimes=tuple((current.regimes if current else None) or ()),
                )
                fp = restore(item, stored[r.id].signature, stored[r.id].anchors)
            index.add(fp, r.story_id)
        _store_prints(session, fresh, scheme)


def _store_prints(
    session: Session, placed: Sequence[tuple[Article, Fingerprint]], scheme: str
) -> None:
    """Store (replace) the prints of ``placed`` articles for their current revision."""
    if not placed:
        return
    ids = [article.id for article, _ in placed]
    session.execute(delete(StoryPrint).where(StoryPrint.article_id.in_(ids)))
    session.execute(
        insert(StoryPrint),
        [
            {
                "article_id": article.id,
                "revision": article.revision,
                "scheme": scheme,
                "signature": signature_bytes(fp),
                "anchors": sorted(fp.anchors),
            }
            for article, fp in placed
        ],
    )


def _place(
    session: Session,
    article: Article,
    fp: Fingerprint,
    cls: Classification,
    index: StoryIndex,
    now: datetime,
    report: RecordReport,
    touched: set[int],
) -> None:
    """Join ``article`` (fingerprint ``fp``) to the most similar indexed story, or start its own;
    index it."""
    found = index.best(fp)
    if found is not None:
        story_id = found[0]
        report.stories_joined += 1
        log.info("article %s joins story %s (similarity %.2f)", article.id, story_id, found[1])
    else:
        row = {
            "lead_article_id": article.id,
            "severity": "low",
            "alerted_severity": None,
            "regimes": list(cls.regimes or ()),
            "created_at": now,
            "updated_at": now,
        }
        inserted = insert_ignore(session, Story, [row], ["lead_article_id"])
        story_id = (
            inserted[0]
            if inserted
            else session.scalars(select(Story.id).where(Story.lead_article_id == article.id)).one()
        )
        report.stories_new += 1
    session.execute(
        update(Article)
        .where(Article.id == article.id, Article.story_id.is_(None))
        .values(story_id=story_id)
        .execution_options(synchronize_session=False)
    )
    session.expire(article, ["story_id"])
    index.add(fp, story_id)
    touched.add(story_id)


def _changed_stories(session: Session, since: datetime) -> set[int]:
    """Stories with a sighting or a classification newer than their last evaluation (looking back
    no further than ``since``: every run evaluates what changed before it).

    Strictly newer: an evaluation at ``now`` has already seen what was stored at ``now`` (a cycle
    stamps its sightings, verdicts and evaluations with one clock reading), so the next quiet run
    does not re-evaluate every story of a busy cycle (about 1 ms each: 2.8 s after 2,800 stories)."""
    by_sighting = (
        select(Story.id)
        .join(Article, Article.story_id == Story.id)
        .join(Sighting, Sighting.article_id == Article.id)
        .where(Sighting.seen_at > Story.updated_at, Sighting.seen_at >= since)
    )
    by_class = (
        select(Story.id)
        .join(Article, Article.story_id == Story.id)
        .join(
            Classification,
            and_(
                Classification.article_id == Article.id,
                Classification.revision == Article.revision,
            ),
        )
        .where(
            Classification.classified_at > Story.updated_at, Classification.classified_at >= since
        )
    )
    return set(session.scalars(by_sighting.union(by_class)))


def _late_days(lead: Article, config: Config) -> float | None:
    """Days between the lead's publication and our first sight of it, when that is more than
    ``alerts.late_after_days`` (0: freshness off); else None."""
    limit = config.alerts.late_after_days
    if limit <= 0 or lead.published_at is None:
        return None
    age = lead.first_seen_at - lead.published_at
    if age <= timedelta(days=limit):
        return None
    return round(age.total_seconds() / 86400, 1)


def record_story_alerts(
    session: Session,
    config: Config,
    *,
    now: datetime,
    designations: DesignationMatcher | None = None,
    regimes: RegimeBook | None = None,
    describe: StoryDescriber | None = None,
    prepare: Callable[[Sequence[StoryFacts]], None] | None = None,
) -> RecordReport:
    """Group new flagged articles into stories, record new and update alerts and their outbox rows
    (``describe`` adds what each alert alleges to its details, before subscriptions are matched;
    ``prepare`` is first given the stories about to be alerted, up to :data:`_CHUNK` at a time, so
    that ``describe`` can batch work such as tagging). Stories are evaluated a chunk at a time, their
    facts read with a few queries per chunk (:func:`story_facts_many`)."""
    report = RecordReport()
    _lock(session)
    touched = _group_new_articles(session, config, now, regimes, report)
    touched |= _changed_stories(session, now - timedelta(hours=config.alerts.story_window_hours))
    ordered = sorted(touched)
    # A chunk of stories at a time: their facts read together, primed together, then let go.
    for start in range(0, len(ordered), _CHUNK):
        stories = list(
            session.scalars(
                select(Story)
                .where(Story.id.in_(ordered[start : start + _CHUNK]))
                .order_by(Story.id)
            )
        )
        _alert_stories(
            session,
            config,
            story_facts_many(session, stories, designations),
            now=now,
            describe=describe,
            prepare=prepare,
            report=report,
        )
    session.flush()
    return report


def _alert_stories(
    session: Session,
    config: Config,
    facts_by_story: dict[int, StoryFacts],
    *,
    now: datetime,
    describe: StoryDescriber | None,
    prepare: Callable[[Sequence[StoryFacts]], None] | None,
    report: RecordReport,
) -> None:
    """Evaluate each story of ``facts_by_story`` and record the alerts and outbox rows it is due."""
    due: list[tuple[Story, StoryFacts, str, float | None, str, str | None]] = []
    for story_id in sorted(facts_by_story):
        facts = facts_by_story[story_id]
        story = facts.story
        level = severity(facts.severity_input)
        story.severity, story.regimes, story.updated_at = level, list(facts.regimes), now
        late_days = _late_days(facts.lead, config)
        if late_days is not None and config.alerts.late_items == "drop":
            log.info(
                "story %s: not alerted, published %.1f days before first sight", story.id, late_days
            )
            continue
        if story.alerted_severity is None:
            due.append((story, facts, level, late_days, "new", None))
        elif rank(level) > rank(story.alerted_severity):
            due.append((story, facts, level, late_days, "update", story.alerted_severity))
    if describe is not None and prepare is not None and due:
        prepare([facts for _, facts, *_ in due])  # e.g. tag every story's texts in one batch
    for story, facts, level, late_days, kind, previous in due:
        details = {
            "designated": list(facts.designated),
            "independent_sources": facts.independent_sources,
            "reason": explain_severity(facts.severity_input),
            "articles": [m.id for m in facts.members],
        }
        if late_days is not None:  # shown as LATE in the subject and body
            details["late_days"] = late_days
        if describe is not None:
            details["allegation"] = describe(facts)
        values: dict[str, Any] = {
            "article_id": facts.lead.id,
            "story_id": story.id,
            "kind": kind,
            "previous_severity": previous,
            "classification_id": facts.best.id,
            "score": facts.best.score,
            "severity": level,
            "regimes": list(facts.regimes),
            "details": details,
            "created_at": now,
            "updated_at": now,
        }
        ids = insert_ignore(session, Alert, [values], ["story_id", "severity"])
        if not ids:
            continue
        story.alerted_severity = level
        # The row just inserted, as a detached record for the subscription filters (not re-read).
        alert = Alert(id=ids[0], **values)
        report.alert_ids.append(alert.id)
        report.updates += kind == "update"
        rows, items = _outbox_rows(config, alert, facts, now)
        inserted = insert_ignore(session, Delivery, rows, ["alert_id", "channel", "recipient"])
        report.deliveries += len(inserted)
        report.queued += len(
            insert_ignore(session, DigestItem, items, ["alert_id", "channel", "recipient"])
        )
        log.info(
            "story %s: %s alert %s at %s (%d outbox rows, %d digest items)",
            story.id,
            kind,
            alert.id,
            level,
            len(inserted),
            len(items),
        )
