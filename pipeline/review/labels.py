"""Analysts' labels: append-only events, the current label per article, export and import.

Guarantees:

* A label is an *event*: :func:`record_label` only ever inserts into ``label_events``; nothing here
  updates or deletes a row, so the table is the full audit trail. An article's current label is its
  latest event (highest id).
* Every event carries the analyst, the time (passed in, never read from the clock here), the model
  version and score of the classification that scored the item, an optional note, and how it came
  (``cli``, ``review``, ``email``, ``import``).
* An email token is spent once: its SHA-256 is unique in the table, so a replayed link records nothing.
* :func:`export_labels` writes items in the corpus format (docs/labelling.md: ``kind: analyst_label``)
  that :func:`import_labels` reads back; an import that repeats an article's current label by the
  same analyst adds nothing, so importing an export is idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.errors import InputError
from pipeline.store.schema import Alert, Article, Classification, LabelEvent

__all__ = [
    "ANALYST_KIND",
    "LABELS",
    "LabelRecord",
    "current_labels",
    "export_labels",
    "import_labels",
    "label_history",
    "record_label",
]

LABELS = ("relevant", "not_relevant", "unsure")
VIAS = ("cli", "review", "email", "import")
ANALYST_KIND = "analyst_label"
NOTE_CHARS = 2000


@dataclass(frozen=True, slots=True)
class LabelRecord:
    id: int
    article_id: int
    alert_id: int | None
    label: str
    analyst: str
    note: str | None
    model_version: str | None
    score: float | None
    via: str
    created_at: datetime


def _record(event: LabelEvent) -> LabelRecord:
    return LabelRecord(
        event.id, event.article_id, event.alert_id, event.label, event.analyst, event.note,
        event.model_version, event.score, event.via, event.created_at,
    )  # fmt: skip


def _scoring(session: Session, article_id: int, alert: Alert | None) -> Classification | None:
    if alert is not None:
        return session.get(Classification, alert.classification_id)
    return session.scalars(
        select(Classification)
        .where(Classification.article_id == article_id)
        .order_by(Classification.id.desc())
        .limit(1)
    ).first()


def record_label(
    session: Session,
    *,
    label: str,
    analyst: str,
    now: datetime,
    via: str,
    article_id: int | None = None,
    alert_id: int | None = None,
    note: str | None = None,
    token_sha256: str | None = None,
) -> LabelRecord | None:
    """Append one label event (for an article, or the article an alert is about); returns it, or
    ``None`` when ``token_sha256`` was already spent. Raises :class:`InputError` naming what is wrong
    (an unknown label, article or alert; no analyst). The caller commits."""
    if label not in LABELS:
        raise InputError(f"label {label!r} is not one of {', '.join(LABELS)}")
    if via not in VIAS:
        raise InputError(f"via {via!r} is not one of {', '.join(VIAS)}")
    analyst = (analyst or "").strip()
    if not analyst or len(analyst) > 200:
        raise InputError("a label needs the analyst's name (1-200 characters)")
    alert = None
    if alert_id is not None:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise InputError(f"no alert {alert_id}")
        if article_id is not None and article_id != alert.article_id:
            raise InputError(
                f"alert {alert_id} is about article {alert.article_id}, not {article_id}"
            )
        article_id = alert.article_id
    if article_id is None or session.get(Article, article_id) is None:
        raise InputError(f"no article {article_id}")
    if token_sha256 is not None and session.scalar(
        select(func.count()).select_from(LabelEvent).where(LabelEvent.token_sha256 == token_sha256)
    ):
        return None
    cls = _scoring(session, article_id, alert)
    note = (note or "").strip()[:NOTE_CHARS] or None
    event = LabelEvent(
        article_id=article_id,
        alert_id=alert_id,
        label=label,
        analyst=analyst,
        note=note,
        model_version=cls.model_version if cls else None,
        score=cls.score if cls else None,
        via=via,
        token_sha256=token_sha256,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(event)
            session.flush()
    except IntegrityError:  # the same token spent by a concurrent request
        return None
    return _record(event)


def label_history(session: Session, article_id: int) -> list[LabelRecord]:
    """Every label event of an article, oldest first (the audit trail)."""
    rows = session.scalars(
        select(LabelEvent).where(LabelEvent.article_id == article_id).order_by(LabelEvent.id)
    )
    return [_record(e) for e in rows]


def current_labels(
    session: Session, article_ids: Iterable[int] | None = None
) -> dict[int, LabelRecord]:
    """The latest label event of each article (of those given, or all)."""
    latest = select(func.max(LabelEvent.id)).group_by(LabelEvent.article_id)
    query = select(LabelEvent).where(LabelEvent.id.in_(latest))
    if article_ids is not None:
        ids = list(article_ids)
        if not ids:
            return {}
        query = query.where(LabelEvent.article_id.in_(ids))
    return {e.article_id: _record(e) for e in session.scalars(query)}


def _event_id(regime: str, when: datetime, article_id: int) -> str:
    return f"{regime}-{when:%Y-%m}-article-{article_id}"


def export_labels(session: Session) -> list[dict[str, Any]]:
    """Each article's current label as a corpus item (``unsure`` left out: it is not a label to train
    on), oldest article first. ``labelled_by``/``labelled_at``/``model_version``/``note`` say where
    it came from; ``article_key`` lets :func:`import_labels` find the article again."""
    out: list[dict[str, Any]] = []
    labels = current_labels(session)
    for article_id in sorted(labels):
        rec = labels[article_id]
        if rec.label == "unsure":
            continue
        article = session.get(Article, article_id)
        assert article is not None
        cls = _scoring(session, article_id, None)
        regimes = [str(r) for r in (cls.regimes if cls else []) if isinstance(r, str)]
        regime = (regimes[0] if regimes else "none").lower()
        when = article.published_at or article.first_seen_at
        out.append(
            {
                "id": f"label-{article.key[:16]}",
                "title": article.title,
                "summary": article.summary,
                "body": article.body,
                "date": when.date().isoformat(),
                "outlet": article.feed_id,
                "lang": article.lang,
                "label": 1 if rec.label == "relevant" else 0,
                "regime": regime,
                "kind": ANALYST_KIND,
                "event": f"analyst label on article {article_id} ({article.title[:80]})",
                "event_id": _event_id(regime, when, article_id),
                "style": "article" if article.body.strip() else "wire",
                "article_key": article.key,
                "labelled_by": rec.analyst,
                "labelled_at": rec.created_at.isoformat(),
                "model_version": rec.model_version,
                "note": rec.note,
            }
        )
    return out


@dataclass(frozen=True, slots=True)
class ImportReport:
    recorded: int
    unchanged: int
    problems: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "recorded": self.recorded,
            "unchanged": self.unchanged,
            "problems": list(self.problems),
        }


def import_labels(
    session: Session, lines: Iterable[str], *, analyst: str, now: datetime
) -> ImportReport:
    """Record the labels of corpus-format lines that name a stored article (``article_key``); every
    bad line is reported (with its number), none stops the others. The caller commits."""
    recorded = unchanged = 0
    problems: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, Mapping):
                raise InputError("not a JSON object")
            key = item.get("article_key")
            article_id = (
                session.scalar(select(Article.id).where(Article.key == key)) if key else None
            )
            if article_id is None:
                raise InputError(f"no stored article with article_key {key!r}")
            if item.get("label") not in (0, 1):
                raise InputError(f"label must be 0 or 1, got {item.get('label')!r}")
            label = "relevant" if item["label"] == 1 else "not_relevant"
            who = str(item.get("labelled_by") or analyst)
            current = current_labels(session, [article_id]).get(article_id)
            if current is not None and (current.label, current.analyst) == (label, who):
                unchanged += 1
                continue
            note = item.get("note")
            record_label(
                session, article_id=article_id, label=label, analyst=who, now=now, via="import",
                note=note if isinstance(note, str) else None,
            )  # fmt: skip
            recorded += 1
        except (ValueError, InputError) as err:
            problems.append(f"line {number}: {err}")
    return ImportReport(recorded, unchanged, tuple(problems))
