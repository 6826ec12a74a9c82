"""What a message about an alert or a digest shows: plain, frozen view records read from the database.

Rendering (:mod:`pipeline.deliver.render`) turns these into subject, text and HTML; nothing here
formats text for a channel. Views carry times in, so nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from pipeline.alerts.allegation import Allegation
from pipeline.alerts.facts import SUMMARY_CHARS, DesignationMatcher, StoryFacts, story_facts
from pipeline.alerts.severity import LEVELS, RULE, explain_severity
from pipeline.classify.stopwords import meaningful_terms
from pipeline.config import Config
from pipeline.ingest.normalise import clean_text
from pipeline.knowledge.regimes import RegimeBook
from pipeline.store.schema import Alert, Classification, Story

__all__ = [
    "AlertView",
    "DigestGroup",
    "DigestView",
    "RegimeView",
    "SourceView",
    "alert_view",
    "feedback_text",
    "regime_views",
]


@dataclass(frozen=True, slots=True)
class SourceView:
    name: str
    url: str | None
    published_at: datetime | None
    title: str | None = None  # the source's own headline (a translation, a rewrite)
    lang: str | None = None
    seen_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RegimeView:
    key: str
    name: str
    committee: str
    url: str
    resolutions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AlertView:
    alert_id: int
    title: str
    summary: str
    url: str | None
    lang: str
    first_seen_at: datetime
    published_at: datetime | None
    score: float
    threshold: float
    model_version: str
    severity: str
    severity_reason: str
    sources: tuple[SourceView, ...] = ()
    evidence_sentences: tuple[str, ...] = ()
    evidence_terms: tuple[str, ...] = ()
    regimes: tuple[RegimeView, ...] = ()
    designated: tuple[str, ...] = ()
    feedback: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    kind: str = "new"  # new | update
    previous_severity: str | None = None
    story_id: int | None = None
    rule: str = ""
    independent_sources: int = 1
    regime_keys: tuple[str, ...] = ()
    # What is alleged (kinds, who, where, when), frozen when the alert was recorded; None for an
    # alert recorded before allegations existed. Worded in English by render.facts_line.
    allegation: Allegation | None = None
    # Published this many days before first sight (more than alerts.late_after_days): a LATE alert.
    late_days: float | None = None
    # Signed one-click links (label, url), per recipient: set by the email sender, never stored.
    feedback_links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class DigestGroup:
    regime: RegimeView | None
    label: str
    alerts: tuple[AlertView, ...]


@dataclass(frozen=True, slots=True)
class DigestView:
    day: str  # YYYY-MM-DD (UTC)
    recipient: str
    generated_at: datetime
    groups: tuple[DigestGroup, ...]
    feedback: str | None = None
    rule: str = ""

    @property
    def count(self) -> int:
        return sum(len(g.alerts) for g in self.groups)

    @property
    def highest(self) -> str:
        levels = [a.severity for g in self.groups for a in g.alerts] or ["low"]
        return max(levels, key=LEVELS.index)


def regime_views(keys: Iterable[str], regimes: RegimeBook | None) -> tuple[RegimeView, ...]:
    out = []
    for key in keys:
        r = regimes.get(key) if regimes else None
        if r is not None:
            out.append(RegimeView(r.key, r.name, r.committee, r.url, r.resolutions))
    return tuple(out)


def feedback_text(config: Config, alert_id: int | None = None) -> str | None:
    if not config.alerts.feedback_address:
        return None
    quoting = f"alert {alert_id}" if alert_id is not None else "the alert id"
    return f"send feedback to {config.alerts.feedback_address} quoting {quoting}"


def alert_view(
    session: Session,
    alert: Alert,
    regimes: RegimeBook | None,
    config: Config,
    designations: DesignationMatcher | None = None,
    *,
    facts: StoryFacts | None = None,
) -> AlertView:
    """Everything a message about this alert shows, read from the database.

    Sources are the story's sources *now* (one that joined after the alert was recorded is listed);
    severity, its explanation and the designated names are those frozen in the alert. ``facts``: the
    story's facts read beforehand in this session (:func:`~pipeline.alerts.facts.story_facts_many`,
    without designations), used when the alert froze its designated names.
    """
    story = session.get(Story, alert.story_id)
    assert story is not None
    cls = session.get(Classification, alert.classification_id)
    assert cls is not None
    details = alert.details or {}
    if facts is None or facts.story.id != story.id or "designated" not in details:
        facts = story_facts(session, story, None if "designated" in details else designations)
    designated = tuple(details.get("designated", facts.designated))
    reason = details.get("reason") or explain_severity(facts.severity_input)
    lead = facts.lead
    evidence = cls.evidence or {}
    return AlertView(
        alert_id=alert.id,
        title=lead.title,
        # Bounded whatever the database holds: an alert is a lead, the link has the rest.
        summary=clean_text(lead.summary or lead.body, max_chars=SUMMARY_CHARS),
        url=lead.url,
        lang=lead.lang,
        first_seen_at=lead.first_seen_at,
        published_at=lead.published_at,
        score=alert.score,
        threshold=cls.threshold,
        model_version=cls.model_version,
        severity=alert.severity,
        severity_reason=reason,
        sources=tuple(
            SourceView(s.feed_name, s.url, s.published_at, s.title, s.lang, s.seen_at)
            for s in facts.sources
        ),
        evidence_sentences=tuple(evidence.get("sentences", ())),
        # function words ("said", 밝혔다) explain nothing to an analyst: never shown
        evidence_terms=meaningful_terms(evidence.get("terms", ()), lead.lang),
        regimes=regime_views(alert.regimes or (), regimes),
        designated=designated,
        feedback=feedback_text(config, alert.id),
        kind=alert.kind,
        previous_severity=alert.previous_severity,
        story_id=story.id,
        rule=RULE,
        independent_sources=int(details.get("independent_sources", facts.independent_sources)),
        regime_keys=tuple(alert.regimes or ()),
        allegation=Allegation.from_dict(details.get("allegation")),
        late_days=details.get("late_days"),
    )
