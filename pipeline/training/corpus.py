"""The labelled corpus: reading and checking JSON-lines items, and the frozen test split.

``data/corpus/*.jsonl`` holds the training corpus (see docs/labelling.md). ``data/test/frozen.jsonl``
holds the frozen test split: whole events moved out once, never trained on, never used to choose a
threshold, and scored by the quality gate in CI. Any corpus item whose ``event_id`` is in the test split
is left out of training, so a later item about a test event cannot leak into training; ``corpus check``
(:func:`check_items` with ``frozen``) refuses such an item outright, so it is never silently dropped.
:func:`check_items` reports every problem it finds (missing keys, labels, and regime, kind and style
outside :data:`REGIMES`, :data:`KINDS` and :data:`STYLES`, the values docs/labelling.md defines).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.errors import InputError

__all__ = [
    "KINDS",
    "REGIMES",
    "REQUIRED_KEYS",
    "STYLES",
    "CorpusReport",
    "check_items",
    "data_hash",
    "load_items",
    "split_frozen_test",
    "training_items",
]

REQUIRED_KEYS = (
    "id",
    "title",
    "summary",
    "date",
    "outlet",
    "lang",
    "label",
    "regime",
    "kind",
    "event",
    "event_id",
    "style",
)
LANGS = {"en", "fr", "es", "ru", "ar", "ko", "zh", "de", "pt", "it", "ja", "uk", "fa"}
# The allowed values of regime, kind and style (docs/labelling.md is the reference; keep them in step).
REGIMES = frozenset(
    {"dprk", "iran", "libya", "yemen", "sudan", "south_sudan", "somalia", "car", "drc", "haiti",
     "iraq", "lebanon", "isil_aq", "taliban", "mali", "none"}
)  # fmt: skip
POSITIVE_KINDS = frozenset(
    {"arms_transfer", "ship_to_ship", "workers_revenue", "cyber_theft", "missile_launch",
     "designated_evasion", "panel_finding", "interdiction", "denial", "indirect"}
)  # fmt: skip
NEGATIVE_KINDS = frozenset(
    {"council_vote", "legal_arms_deal", "unilateral_sanctions", "other_violation",
     "exercise_parade", "arms_industry", "diplomacy", "dprk_society", "ended_regime",
     "cruise_missile", "other_news", "everyday_news"}
)  # fmt: skip
# A label an analyst gave a stored article (``sanctions-watch labels export``): either label.
ANALYST_KIND = "analyst_label"
KINDS = POSITIVE_KINDS | NEGATIVE_KINDS | {ANALYST_KIND}
STYLES = frozenset(
    {"wire", "truncated", "html", "title_only", "press_release", "long", "analysis", "article"}
)
_EVENT_ID_RE = re.compile(r"^[a-z_]+-\d{4}-\d{2}-[a-z0-9][a-z0-9-]*$")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot be read: {err}") from err
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as err:
            raise InputError(f"{path}:{number}: not valid JSON: {err}") from err
        if not isinstance(item, dict):
            raise InputError(f"{path}:{number}: each line must be a JSON object")
        item["_source"] = f"{path.name}:{number}"
        items.append(item)
    return items


def load_items(paths: Iterable[Path], *, require_labels: bool = True) -> list[dict[str, Any]]:
    """Read JSON-lines files (a folder means every ``*.jsonl`` in it), checking each item's shape."""
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.glob("*.jsonl")) if p.is_dir() else [p])
    items: list[dict[str, Any]] = []
    for f in files:
        items.extend(_read_jsonl(f))
    for item in items:
        where = item["_source"]
        if require_labels:
            missing = [k for k in REQUIRED_KEYS if k not in item]
            if missing:
                raise InputError(f"{where}: missing keys {missing}")
            if item["label"] not in (0, 1):
                raise InputError(f"{where}: label must be 0 or 1, got {item['label']!r}")
        if not isinstance(item.get("title", ""), str) or not isinstance(
            item.get("summary", ""), str
        ):
            raise InputError(f"{where}: title and summary must be strings")
    return items


# Labels for other tasks (the breach-kind tagger, pipeline/classify/kinds.py): they do not change what
# the main model sees, so they do not change its training-data hash; the tagger hashes them itself.
AUXILIARY_LABELS = frozenset({"breach_kinds"})


def data_hash(items: Sequence[dict[str, Any]]) -> str:
    """SHA-256 over the items' content (sorted by id), recorded in every model's metadata
    (fields starting with ``_`` and :data:`AUXILIARY_LABELS` left out)."""
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: str(i.get("id"))):
        clean = {
            k: v for k, v in item.items() if not k.startswith("_") and k not in AUXILIARY_LABELS
        }
        digest.update(json.dumps(clean, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class CorpusReport:
    n_items: int
    by_label: dict[str, int]
    by_regime: dict[str, int]
    by_lang: dict[str, int]
    by_kind: dict[str, int]
    by_style: dict[str, int]
    problems: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_items": self.n_items,
            "by_label": self.by_label,
            "by_regime": self.by_regime,
            "by_lang": self.by_lang,
            "by_kind": self.by_kind,
            "by_style": self.by_style,
            "problems": list(self.problems),
        }


def check_items(
    items: Sequence[dict[str, Any]], *, frozen: Sequence[dict[str, Any]] = ()
) -> CorpusReport:
    """Schema and consistency checks that go beyond shape: keys, labels, ids, dates, languages,
    regime/kind/style values, duplicates, and (given the frozen split) items whose event or id is in
    it. Every problem is reported, each naming its file and line; items may lack keys here."""
    problems: list[str] = []
    ids = Counter(str(i.get("id")) for i in items)
    problems += [f"duplicate id {k} ({n} times)" for k, n in ids.items() if n > 1]
    texts = Counter(
        (str(i.get("title", "")).strip().casefold(), str(i.get("summary", "")).strip().casefold())
        for i in items
    )
    problems += [f"duplicate text: {t[0][:60]!r} ({n} times)" for t, n in texts.items() if n > 1]
    frozen_events = {str(i.get("event_id")) for i in frozen}
    frozen_ids = {str(i.get("id")) for i in frozen}
    allowed = (("regime", REGIMES), ("kind", KINDS), ("style", STYLES))
    for item in items:
        where = item.get("_source", f"item {item.get('id')!r}")
        missing = [k for k in REQUIRED_KEYS if k not in item]
        if missing:
            problems.append(f"{where}: missing keys {missing}")
        if "label" in item and item["label"] not in (0, 1):
            problems.append(f"{where}: label must be 0 or 1, got {item['label']!r}")
        for key, values in allowed:
            if key in item and item[key] not in values:
                problems.append(
                    f"{where}: {key} {item[key]!r} is not one of the allowed values "
                    f"(docs/labelling.md): {', '.join(sorted(values))}"
                )
        if "date" in item:
            try:
                date.fromisoformat(str(item["date"]))
            except ValueError:
                problems.append(f"{where}: date {item['date']!r} is not ISO YYYY-MM-DD")
        if "lang" in item and item["lang"] not in LANGS:
            problems.append(f"{where}: unknown lang {item['lang']!r}")
        if "event_id" in item and not _EVENT_ID_RE.match(str(item["event_id"])):
            problems.append(
                f"{where}: event_id {item['event_id']!r} is not <regime>-<yyyy>-<mm>-<slug>"
            )
        if str(item.get("event_id")) in frozen_events:
            problems.append(
                f"{where}: event_id {item['event_id']!r} is in the frozen test split: an item "
                "about a test event is never trained on; give it to another event or drop it"
            )
        elif str(item.get("id")) in frozen_ids:
            problems.append(f"{where}: id {item['id']!r} is in the frozen test split")
        if "title" in item and not str(item["title"]).strip():
            problems.append(f"{where}: empty title")

    def counts(key: str) -> dict[str, int]:
        return dict(Counter(str(i.get(key)) for i in items).most_common())

    return CorpusReport(
        n_items=len(items),
        by_label=counts("label"),
        by_regime=counts("regime"),
        by_lang=counts("lang"),
        by_kind=counts("kind"),
        by_style=counts("style"),
        problems=tuple(problems),
    )


def split_frozen_test(
    items: Sequence[dict[str, Any]], *, fraction: float = 0.2, salt: str = "sanctions-watch-test-v1"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pick whole events for the test split, about ``fraction`` of the items of each regime.

    Events are ordered by a salted hash, so the choice is deterministic and independent of file order.
    """
    by_regime: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for item in items:
        by_regime.setdefault(str(item["regime"]), {}).setdefault(str(item["event_id"]), []).append(
            item
        )
    test_events: set[str] = set()
    for events in by_regime.values():
        total = sum(len(v) for v in events.values())
        ordered = sorted(events, key=lambda e: hashlib.sha256(f"{salt}:{e}".encode()).hexdigest())
        taken = 0
        for event in ordered:
            if taken >= total * fraction:
                break
            test_events.add(event)
            taken += len(events[event])
    train = [i for i in items if i["event_id"] not in test_events]
    test = [i for i in items if i["event_id"] in test_events]
    return train, test


def training_items(
    corpus: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Corpus items that may be trained on: none with an id or an event in the frozen test split."""
    test_ids = {str(i["id"]) for i in test}
    test_events = {str(i["event_id"]) for i in test}
    return [
        i for i in corpus if str(i["id"]) not in test_ids and str(i["event_id"]) not in test_events
    ]
