"""Computing an :class:`~pipeline.alerts.allegation.Allegation` for a story: the record of what its
alert alleges.

:class:`Describer` reads the story's lead and best-scored articles with

* the breach-kind tagger (:mod:`pipeline.classify.kinds`), when one is servable; without it the
  kinds are ``None`` ("not tagged"), never guessed;
* the actors gazetteer, the UN Consolidated List matcher and vessel names
  (:mod:`pipeline.knowledge.actors`), with directions where the words give them
  (:mod:`pipeline.knowledge.direction`);
* the places gazetteer (:mod:`pipeline.knowledge.places`).

Everything is extracted, nothing is translated: names come out in English because the gazetteers map
every alias to its English name. Why at alert time rather than at classification: the facts describe
the story an alert is about (several articles, possibly in several languages), they are computed for
the few flagged stories only, and a story recorded before a tagger existed gets them when its severity
next rises. Pure given its loaded parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.alerts.allegation import Allegation
from pipeline.alerts.facts import StoryFacts
from pipeline.classify.kinds import KindTagger, KindTags
from pipeline.classify.model import article_text
from pipeline.knowledge.actors import ActorBook, ActorMention, find_vessels, listed_mentions
from pipeline.knowledge.direction import Endpoint, flows
from pipeline.knowledge.gazetteer import normalise
from pipeline.knowledge.places import PlaceBook

__all__ = ["MAX_ACTORS", "MAX_PLACES", "Describer"]

MAX_ACTORS = 8
MAX_PLACES = 6


@dataclass(frozen=True, slots=True)
class _Found:
    actors: list[ActorMention]
    places: list[tuple[str, str, int, int]]  # (place id, English name, start, end)


class Describer:
    """Turns a story into an :class:`Allegation` (see the module docstring)."""

    def __init__(
        self,
        *,
        tagger: KindTagger | None,
        actors: ActorBook,
        places: PlaceBook,
        designations: Any = None,  # a DesignationIndex (pipeline.knowledge.designations) or None
    ) -> None:
        self.tagger, self.actors, self.places, self.designations = (
            tagger,
            actors,
            places,
            designations,
        )
        # Kind tags of texts :meth:`prime` tagged in one batch (the tagger's per-call cost is most of
        # its cost for one or two texts: 3,000 alerts one by one took 25 s of a busy cycle).
        self._tags: dict[str, KindTags] = {}

    def _texts(self, facts: StoryFacts) -> list[tuple[str, str | None]]:
        """The (article text, language) pairs a story is described from: its lead and its
        best-scored article."""
        articles = [facts.lead]
        best = next((m for m in facts.members if m.id == facts.best.article_id), None)
        if best is not None and best.id != facts.lead.id:
            articles.append(best)
        return [(article_text(a.title, a.summary, a.body), a.lang) for a in articles]

    def prime(self, stories: Sequence[StoryFacts], *, chunk: int = 256) -> None:
        """Tag the texts of ``stories`` in batches now, so that :meth:`describe` reuses the tags
        (the same tags it would compute one story at a time). Forgets what it primed before."""
        self._tags = {}
        if self.tagger is None:
            return
        texts = list(dict.fromkeys(t for f in stories for t, _ in self._texts(f)))
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            self._tags.update(zip(part, self.tagger.tag(part), strict=True))

    def _tag(self, texts: Sequence[str]) -> list[KindTags]:
        assert self.tagger is not None
        missing = [t for t in texts if t not in self._tags]
        fresh = dict(zip(missing, self.tagger.tag(missing), strict=True)) if missing else {}
        return [self._tags.get(t) or fresh[t] for t in texts]

    def _find(self, text: str) -> _Found:
        listed = listed_mentions(self.designations.match(text)) if self.designations else []
        named = [
            m
            for m in self.actors.find(text)
            if not any(x.start < m.end and m.start < x.end for x in listed)
        ]
        mentions = listed + named
        places = [
            (p.id, p.name, m.start, m.end)
            for p, m in self.places.find(text)
            if not any(x.start < m.end and m.start < x.end for x in mentions)
        ]
        taken = [(m.start, m.end) for m in mentions] + [(s, e) for _, _, s, e in places]
        mentions += find_vessels(text, taken)
        return _Found(sorted(mentions, key=lambda m: m.start), places)

    def describe_texts(
        self, texts: Sequence[tuple[str, str | None]], *, date: datetime | None = None
    ) -> Allegation:
        """The allegation of one or more (article text, language) pairs, merged in order."""
        kinds: tuple[str, ...] | None = None
        scores: dict[str, float] = {}
        if self.tagger is not None:
            tags = self._tag([t for t, _ in texts])
            merged = {k for tag in tags for k in tag.kinds}
            kinds = tuple(k for k in self.tagger.kinds if k in merged)
            for tag in tags:
                for k, v in tag.scores.items():
                    scores[k] = max(v, scores.get(k, 0.0))
        actors: dict[str, dict[str, Any]] = {}
        names: dict[str, str] = {}
        flow_names: list[tuple[str, str]] = []
        routes: list[tuple[str, str]] = []
        places: dict[str, str] = {}
        for raw, lang in texts:
            text = normalise(raw)
            found = self._find(text)
            for m in found.actors:
                names[m.actor.id] = m.actor.name
                entry = actors.setdefault(
                    m.actor.id,
                    {"name": m.actor.name, "type": m.actor.type, "listed": m.actor.listed},
                )
                entry["listed"] = entry["listed"] or m.actor.listed
            for pid, name, _, _ in found.places:
                places.setdefault(pid, name)
                names["place:" + pid] = name
            ends = [Endpoint(m.actor.id, m.start, m.end) for m in found.actors] + [
                Endpoint("place:" + pid, s, e, is_place=True) for pid, _, s, e in found.places
            ]
            for a, b in flows(text, ends, lang):
                pair = (names[a], names[b])
                target = routes if a.startswith("place:") or b.startswith("place:") else flow_names
                if pair not in target:
                    target.append(pair)
        in_flows = list(dict.fromkeys(n for pair in flow_names for n in pair))
        first = [a for n in in_flows for a in actors.values() if a["name"] == n]
        ordered = first + [a for a in actors.values() if a["name"] not in in_flows]
        return Allegation(
            kinds=kinds,
            kind_scores=scores,
            tagger=self.tagger.version if self.tagger is not None else None,
            actors=tuple(ordered[:MAX_ACTORS]),
            flows=tuple(flow_names),
            places=tuple(list(places.values())[:MAX_PLACES]),
            routes=tuple(routes),
            date=date.date().isoformat() if date else None,
        )

    def describe(self, facts: StoryFacts) -> dict[str, Any]:
        """The allegation of a story (its lead and its best-scored article) as stored in
        ``alert.details["allegation"]``."""
        texts = self._texts(facts)
        lead = facts.lead
        return self.describe_texts(texts, date=lead.published_at or lead.first_seen_at).as_dict()
