"""Label quality: what to re-check before labels become training data.

* **Conflicts**: articles whose analysts disagree (their latest labels, one per analyst, differ;
  ``unsure`` is not a disagreement). The training set resolves a conflict by the latest label; this
  report keeps every side so it can be settled.
* **Strong disagreements with the model**: a *relevant* label on an item scored at least ``margin``
  below the threshold, or *not relevant* at least ``margin`` above it.

Reads only; the caller passes the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.review.labels import current_labels
from pipeline.store.schema import Classification, LabelEvent

__all__ = ["QualityReport", "label_quality"]


@dataclass(frozen=True, slots=True)
class QualityReport:
    conflicts: tuple[dict[str, Any], ...]
    model_disagrees: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"conflicts": list(self.conflicts), "model_disagrees": list(self.model_disagrees)}


def label_quality(session: Session, *, margin: float = 0.3) -> QualityReport:
    by_article: dict[int, dict[str, LabelEvent]] = {}
    for event in session.scalars(select(LabelEvent).order_by(LabelEvent.id)):
        by_article.setdefault(event.article_id, {})[event.analyst] = event  # latest per analyst
    conflicts = []
    for article_id, latest in sorted(by_article.items()):
        decided = {a: e.label for a, e in latest.items() if e.label != "unsure"}
        if len(set(decided.values())) > 1:
            conflicts.append({"article_id": article_id, "labels": dict(sorted(decided.items()))})
    disagrees = []
    for article_id, label in sorted(current_labels(session).items()):
        cls = session.scalars(
            select(Classification)
            .where(Classification.article_id == article_id)
            .order_by(Classification.id.desc())
            .limit(1)
        ).first()
        if cls is None or label.label == "unsure":
            continue
        if (label.label == "relevant" and cls.score <= cls.threshold - margin) or (
            label.label == "not_relevant" and cls.score >= cls.threshold + margin
        ):
            disagrees.append(
                {
                    "article_id": article_id,
                    "label": label.label,
                    "analyst": label.analyst,
                    "score": round(cls.score, 4),
                    "threshold": cls.threshold,
                    "model_version": cls.model_version,
                }
            )
    return QualityReport(tuple(conflicts), tuple(disagrees))
