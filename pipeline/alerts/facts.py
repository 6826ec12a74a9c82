"""A story's facts: what it is made of now (:class:`StoryFacts`: members, their current
classifications, sightings and sources, the UN-designated names its texts mention), read for many
stories at once (:func:`story_facts_many`).

Read by the stories step (:mod:`pipeline.alerts.record`) to evaluate and describe stories, by delivery
(:mod:`pipeline.deliver.outbox`) to render their alerts, and by the alert views. Guarantees:

- :func:`story_facts_many` reads a fixed number of queries per :data:`_CHUNK` stories (members, leads
  not among them, current classifications, sightings), and each story's facts equal what
  :func:`story_facts` reads for it alone (tests/alerts/test_stories.py);
- no statement binds more than :data:`_CHUNK` ids, below every supported database's limit;
- nothing is written: every function reads in the caller's session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from pipeline.alerts.severity import SeverityInput
from pipeline.store.schema import Article, Classification, Feed, Sighting, Story

__all__ = [
    "SUMMARY_CHARS",
    "DesignationMatcher",
    "SourceRow",
    "StoryFacts",
    "current_classifications",
    "member_text",
    "story_facts",
    "story_facts_many",
]

# The longest summary an alert shows (feeds are already cut at 20,000 characters by the parser).
SUMMARY_CHARS = 4000

DesignationMatcher = Callable[[str], Sequence[str]]
_BODY_CHARS = 2000  # of each member's body in a story's text
_CHUNK = 500  # stories, or ids, bound per IN (...) list: below every supported database's limit


@dataclass(frozen=True, slots=True)
class SourceRow:
    article_id: int
    feed_id: str
    feed_name: str
    url: str | None
    published_at: datetime | None
    seen_at: datetime
    title: str
    lang: str
    sighting_id: int = 0


@dataclass(slots=True)
class StoryFacts:
    """What a story is made of now: members, their current classifications, sources, names."""

    story: Story
    lead: Article
    members: list[Article]
    current: dict[int, Classification]
    best: Classification
    sources: list[SourceRow]
    designated: tuple[str, ...]
    regimes: tuple[str, ...]
    independent_sources: int
    severity_input: SeverityInput = field(init=False)

    def __post_init__(self) -> None:
        self.severity_input = SeverityInput(
            score=self.best.score,
            threshold=self.best.threshold,
            designated_matches=len(self.designated),
            sources=self.independent_sources or 1,
            regimes=self.regimes,
        )

    @property
    def languages(self) -> set[str]:
        return {m.lang for m in self.members}

    @property
    def feeds(self) -> set[str]:
        return {s.feed_id for s in self.sources} | {m.feed_id for m in self.members}

    def text(self) -> str:
        return "\n".join(member_text(m) for m in self.members)


def member_text(article: Article) -> str:
    """A member's text as a story reads it: title, summary and the start of the body."""
    return f"{article.title}\n{article.summary}\n{(article.body or '')[:_BODY_CHARS]}"


def _publisher(url: str | None, feed_id: str) -> str:
    """Who published a sighting: the URL's host without ``www.``, else the feed."""
    try:
        host = (urlsplit(url).hostname or "") if url else ""
    except ValueError:
        host = ""
    return host.removeprefix("www.") or f"feed:{feed_id}"


def current_classifications(
    session: Session, article_ids: Iterable[int]
) -> dict[int, Classification]:
    """The latest classification of each article's current revision (any model version)."""
    ids = sorted(set(article_ids))
    out: dict[int, Classification] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = session.scalars(
            select(Classification)
            .join(
                Article,
                and_(
                    Article.id == Classification.article_id,
                    Article.revision == Classification.revision,
                ),
            )
            .where(Classification.article_id.in_(chunk))
            .order_by(Classification.id)
        )
        for cls in rows:
            out[cls.article_id] = cls
    return out


def _source_rows(session: Session, article_ids: Sequence[int]) -> list[SourceRow]:
    """Every sighting of ``article_ids`` (chunked: a story can have more members than a statement
    may bind), in the order they were seen."""
    ids = sorted(set(article_ids))
    rows: list[SourceRow] = []
    for start in range(0, len(ids), _CHUNK):
        rows.extend(
            SourceRow(*r)
            for r in session.execute(
                select(
                    Sighting.article_id,
                    Sighting.feed_id,
                    Feed.name,
                    Sighting.url,
                    Article.published_at,
                    Sighting.seen_at,
                    Article.title,
                    Article.lang,
                    Sighting.id,
                )
                .join(Feed, Feed.id == Sighting.feed_id)
                .join(Article, Article.id == Sighting.article_id)
                .where(Sighting.article_id.in_(ids[start : start + _CHUNK]))
            )
        )
    rows.sort(key=lambda r: (r.seen_at, r.sighting_id))
    return rows


def _designated(texts: Iterable[str], designations: DesignationMatcher | None) -> tuple[str, ...]:
    if designations is None:
        return ()
    seen: dict[str, None] = {}
    for t in texts:
        for name in designations(t):
            seen.setdefault(name, None)
    return tuple(seen)


def story_facts(
    session: Session, story: Story, designations: DesignationMatcher | None = None
) -> StoryFacts:
    """What ``story`` is made of now (see :func:`story_facts_many`)."""
    return story_facts_many(session, [story], designations)[story.id]


def story_facts_many(
    session: Session, stories: Sequence[Story], designations: DesignationMatcher | None = None
) -> dict[int, StoryFacts]:
    """The facts of every story of ``stories`` by id, read with a fixed number of queries per
    :data:`_CHUNK` stories (members, leads not among them, current classifications, sightings)
    instead of four per story; each equal to what :func:`story_facts` gives one story alone."""
    out: dict[int, StoryFacts] = {}
    for start in range(0, len(stories), _CHUNK):
        out.update(_facts_chunk(session, stories[start : start + _CHUNK], designations))
    return out


def _facts_chunk(
    session: Session, stories: Sequence[Story], designations: DesignationMatcher | None
) -> dict[int, StoryFacts]:
    if not stories:
        return {}
    members: dict[int, list[Article]] = {s.id: [] for s in stories}
    for article in session.scalars(
        select(Article)
        .where(Article.story_id.in_(list(members)))
        .order_by(Article.first_seen_at, Article.id)
    ):
        assert article.story_id is not None
        members[article.story_id].append(article)
    by_id = {a.id: a for group in members.values() for a in group}
    missing = [s.lead_article_id for s in stories if s.lead_article_id not in by_id]
    if missing:
        by_id.update(
            (a.id, a) for a in session.scalars(select(Article).where(Article.id.in_(missing)))
        )
    for story in stories:
        lead = by_id.get(story.lead_article_id)
        assert lead is not None, f"story {story.id}: lead article {story.lead_article_id} missing"
        if lead not in members[story.id]:
            members[story.id].insert(0, lead)
    owner = {m.id: sid for sid, group in members.items() for m in group}
    current = current_classifications(session, owner)
    sources: dict[int, list[SourceRow]] = {s.id: [] for s in stories}
    for row in _source_rows(session, list(owner)):
        sources[owner[row.article_id]].append(row)
    out: dict[int, StoryFacts] = {}
    for story in stories:
        group = members[story.id]
        mine = {m.id: current[m.id] for m in group if m.id in current}
        scored = [c for c in mine.values() if c.flagged] or list(mine.values())
        if not scored:
            raise ValueError(f"story {story.id} has no classified article")
        best = max(scored, key=lambda c: (c.score, -c.id))
        regimes: dict[str, None] = {}
        for cls in [best, *sorted(scored, key=lambda c: c.id)]:
            for key in cls.regimes or ():
                regimes.setdefault(key, None)
        rows = sources[story.id]
        out[story.id] = StoryFacts(
            story=story,
            lead=by_id[story.lead_article_id],
            members=group,
            current=mine,
            best=best,
            sources=rows,
            designated=_designated((member_text(m) for m in group), designations),
            regimes=tuple(regimes),
            independent_sources=len({_publisher(r.url, r.feed_id) for r in rows}),
        )
    return out
