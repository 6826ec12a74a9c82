"""What an alert alleges, as data: the kinds of breach, who (with a direction where the text gives
one), where and when. :class:`~pipeline.alerts.describe.Describer` computes it once, when the alert is
recorded; it is frozen in ``alert.details["allegation"]``, read back by the views, and worded in
English by :func:`pipeline.deliver.render.facts_line`. A plain record: nothing here reads a model or a
file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Allegation"]


@dataclass(frozen=True, slots=True)
class Allegation:
    """What a story alleges. ``kinds`` is ``None`` when no tagger was servable."""

    kinds: tuple[str, ...] | None
    kind_scores: Mapping[str, float] = field(default_factory=dict)
    tagger: str | None = None
    actors: tuple[Mapping[str, Any], ...] = ()  # {"name", "type", "listed"}, flows' ends first
    flows: tuple[tuple[str, str], ...] = ()  # (from name, to name)
    places: tuple[str, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()  # (from place, to place or actor)
    date: str | None = None  # YYYY-MM-DD, the lead's publication (else first-seen) date

    def as_dict(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds) if self.kinds is not None else None,
            "kind_scores": dict(self.kind_scores),
            "tagger": self.tagger,
            "actors": [dict(a) for a in self.actors],
            "flows": [list(f) for f in self.flows],
            "places": list(self.places),
            "routes": [list(r) for r in self.routes],
            "date": self.date,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Allegation | None:
        if not isinstance(data, Mapping):
            return None
        kinds = data.get("kinds")
        return cls(
            kinds=tuple(str(k) for k in kinds) if isinstance(kinds, list) else None,
            kind_scores={str(k): float(v) for k, v in (data.get("kind_scores") or {}).items()},
            tagger=data.get("tagger"),
            actors=tuple(dict(a) for a in data.get("actors") or () if isinstance(a, Mapping)),
            flows=tuple((str(a), str(b)) for a, b in data.get("flows") or ()),
            places=tuple(str(p) for p in data.get("places") or ()),
            routes=tuple((str(a), str(b)) for a, b in data.get("routes") or ()),
            date=data.get("date"),
        )
