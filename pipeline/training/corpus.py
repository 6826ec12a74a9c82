"""The labelled corpus: reading and checking JSON-lines items, and the frozen test split.

``data/corpus/*.jsonl`` holds the training corpus (see docs/labelling.md). ``data/test/frozen.jsonl``
holds the frozen test split: whole events moved out once, never trained on, never used to choose a
threshold, and scored by the quality gate in CI. Any corpus item whose ``event_id`` is in the test split
is left out of training, so a later item about a test event cannot leak into training; ``corpus check``
(:func:`check_items` with ``frozen``) refuses such an item outright, so it is never silently dropped.

The same real event can sit in the corpus and in the frozen split or the hold-out under *different*
event ids. ``data/test/event_aliases.json`` (:data:`ALIASES_PATH`, read by :func:`load_aliases`) records
each pair a labeller decided: ``same: true`` makes the corpus event count as a held-out event (refused
by :func:`check_items` naming the alias file and the held-out event; left out by :func:`training_items`,
which reads the file itself when not given the decisions), ``same: false`` records a decided
non-duplicate. :func:`likely_overlaps` is the similarity rule (same regime, event months at most one
apart, distinctive tokens shared by the slugs and ``event`` texts); :func:`check_items` *warns* (never
refuses) on every likely pair not yet decided, and ``scripts/event_overlap.py`` prints them all.
:func:`check_items` reports every problem it finds (missing keys, labels, and regime, kind and style
outside :data:`REGIMES`, :data:`KINDS` and :data:`STYLES`, the values docs/labelling.md defines).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.errors import InputError

__all__ = [
    "ALIASES_PATH",
    "KINDS",
    "REGIMES",
    "REQUIRED_KEYS",
    "STYLES",
    "CorpusReport",
    "EventAlias",
    "Overlap",
    "check_items",
    "data_hash",
    "likely_overlaps",
    "load_aliases",
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
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_items": self.n_items,
            "by_label": self.by_label,
            "by_regime": self.by_regime,
            "by_lang": self.by_lang,
            "by_kind": self.by_kind,
            "by_style": self.by_style,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


def check_items(
    items: Sequence[dict[str, Any]],
    *,
    frozen: Sequence[dict[str, Any]] = (),
    holdout: Sequence[dict[str, Any]] = (),
    aliases: Sequence[EventAlias] = (),
    alias_file: str = "data/test/event_aliases.json",
) -> CorpusReport:
    """Schema and consistency checks that go beyond shape: keys, labels, ids, dates, languages,
    regime/kind/style values, duplicates, and (given the frozen split) items whose event or id is in
    it, and items whose event an alias (``same: true``) makes the same as a frozen or hold-out event.
    Every problem is reported, each naming its file and line; items may lack keys here. Warnings
    (not problems) name each likely overlap (:func:`likely_overlaps`) between a corpus event and a
    frozen or hold-out event that no alias decides yet."""
    problems: list[str] = []
    aliased = {a.corpus_event: a for a in aliases if a.same}
    ids = Counter(str(i.get("id")) for i in items)
    problems += [f"duplicate id {k} ({n} times)" for k, n in ids.items() if n > 1]
    texts = Counter(
        (str(i.get("title", "")).strip().casefold(), str(i.get("summary", "")).strip().casefold())
        for i in items
    )
    problems += [f"duplicate text: {t[0][:60]!r} ({n} times)" for t, n in texts.items() if n > 1]
    frozen_events = {str(i.get("event_id")) for i in frozen}
    frozen_ids = {str(i.get("id")) for i in frozen}
    holdout_events = {str(i.get("event_id")) for i in holdout}
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
        elif str(item.get("event_id")) in holdout_events:
            problems.append(
                f"{where}: event_id {item['event_id']!r} is a hold-out event (data/holdout): an "
                "item about a held-out event is never trained on; move it to "
                "data/excluded/holdout_events.jsonl"
            )
        elif str(item.get("event_id")) in aliased:
            alias = aliased[str(item.get("event_id"))]
            problems.append(
                f"{where}: event_id {item['event_id']!r} is the same real event as {alias.split} "
                f"event {alias.test_event!r} ({alias_file}): an item about a held-out event is "
                "never trained on; move it to data/excluded/leaked_events.jsonl"
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
        warnings=tuple(_overlap_warnings(items, frozen, holdout, aliases, alias_file)),
    )


def _overlap_warnings(
    items: Sequence[dict[str, Any]],
    frozen: Sequence[dict[str, Any]],
    holdout: Sequence[dict[str, Any]],
    aliases: Sequence[EventAlias],
    alias_file: str,
) -> list[str]:
    held = {"test": frozen, "holdout": holdout}
    if not any(held.values()):
        return []
    decided = {(a.corpus_event, a.test_event) for a in aliases}
    return [
        f"corpus event {o.corpus_event!r} and {o.split} event {o.test_event!r} look like the same "
        f"real event (score {o.score:.1f}; shared: {', '.join(o.shared)}): read both and record the "
        f"decision in {alias_file}"
        for o in likely_overlaps(items, held)
        if (o.corpus_event, o.test_event) not in decided
    ]


# Where the decisions live: not ``*.jsonl``, so the gate's pinned sha256 of data/test/*.jsonl and every
# loader of the frozen split leave it alone.
ALIASES_PATH = Path(__file__).resolve().parents[2] / "data" / "test" / "event_aliases.json"
SPLITS = ("test", "holdout")
# The hold-out (written apart from the corpus): its events are never trained on either.
HOLDOUT_PATH = ALIASES_PATH.parents[1] / "holdout"


@dataclass(frozen=True, slots=True)
class EventAlias:
    """A labeller's decision on a corpus event and a frozen-split or hold-out event: ``same`` when
    they are one real event (the corpus event is then held out too)."""

    corpus_event: str
    test_event: str
    split: str
    reason: str
    same: bool = True


def load_aliases(path: Path) -> list[EventAlias]:
    """The decisions of ``path`` (a JSON list of objects ``corpus_event``, ``test_event``, ``split``
    (``test`` or ``holdout``), ``reason``, optional ``same`` (default true)); none if it is absent."""
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{path}: cannot be read as JSON: {err}") from err
    if not isinstance(raw, list):
        raise InputError(f"{path}: must be a JSON list of objects")
    out: list[EventAlias] = []
    for n, entry in enumerate(raw, 1):
        if not isinstance(entry, dict):
            raise InputError(f"{path}: entry {n} is not an object")
        missing = [k for k in ("corpus_event", "test_event", "split", "reason") if k not in entry]
        if missing:
            raise InputError(f"{path}: entry {n} lacks {missing}")
        if entry["split"] not in SPLITS:
            raise InputError(f"{path}: entry {n}: split must be one of {SPLITS}")
        same = entry.get("same", True)
        if not isinstance(same, bool):
            raise InputError(f"{path}: entry {n}: same must be true or false")
        out.append(
            EventAlias(
                str(entry["corpus_event"]),
                str(entry["test_event"]),
                str(entry["split"]),
                str(entry["reason"]),
                same,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Overlap:
    """A likely pair: a corpus event and a frozen or hold-out event, with the rule's score."""

    corpus_event: str
    test_event: str
    split: str
    score: float
    shared: tuple[str, ...]


# The similarity rule. Words every sanctions story shares carry no weight; the rest are weighed by
# rarity (inverse document frequency over all events), document symbols and resolution numbers most.
MIN_OVERLAP_SCORE = 7.0
MAX_MONTHS_APART = 1  # event months in the ids: at most ~45 days apart
_SYMBOL_WEIGHT = 8.0
_STOP = frozenset(
    {"a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "and", "or", "as",
    "is", "are", "was", "were", "be", "been", "its", "it", "this", "that", "after", "over", "into",
    "than", "about", "under", "via", "new", "says", "said", "say", "report", "reports", "reported",
    "un", "security", "council", "sanctions", "sanction", "resolution", "res", "panel", "experts",
    "expert", "dprk", "north", "korea", "korean", "pyongyang", "iran", "iranian", "jan", "feb",
    "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "january",
    "february", "march", "april", "june", "july", "august", "september", "october", "november",
    "december"}
)  # fmt: skip
_SYMBOL_RE = re.compile(r"\bs/(\d{4})/(\d+)")
_SLUG_SYMBOL_RE = re.compile(r"^s(\d{4})$")
_TOKEN_RE = re.compile(r"[a-z0-9]+")
_RES_RE = re.compile(r"^(?:res)?(\d{3,4})$")


def _month_index(event_id: str) -> int | None:
    m = re.match(r"^[a-z_]+-(\d{4})-(\d{2})-", event_id)
    return int(m.group(1)) * 12 + int(m.group(2)) if m else None


def _event_tokens(event_id: str, texts: Iterable[str]) -> set[str]:
    """Distinctive tokens of an event: symbols ``s/yyyy/n``, resolution numbers, and words of the
    slug and the ``event`` texts (years, months and stop words dropped)."""
    tokens: set[str] = set()
    slug = event_id.split("-")[3:]
    for i, part in enumerate(slug):
        m = _SLUG_SYMBOL_RE.match(part)
        if m and i + 1 < len(slug) and slug[i + 1].isdigit():
            tokens.add(f"s/{m.group(1)}/{int(slug[i + 1])}")
    words = list(slug)
    for text in texts:
        low = text.casefold()
        tokens.update(f"s/{y}/{int(n)}" for y, n in _SYMBOL_RE.findall(low))
        words += _TOKEN_RE.findall(_SYMBOL_RE.sub(" ", low))
    for word in words:
        m = _RES_RE.match(word)
        if m:
            number = int(m.group(1))
            if not 1990 <= number <= 2035 and number >= 100:
                tokens.add(f"#{number}")
            continue
        if len(word) > 2 and word not in _STOP and not word.isdigit():
            tokens.add(word.removesuffix("s") if len(word) > 4 else word)
    return tokens


def likely_overlaps(
    corpus: Sequence[dict[str, Any]],
    held: Mapping[str, Sequence[dict[str, Any]]],
    *,
    min_score: float = MIN_OVERLAP_SCORE,
) -> list[Overlap]:
    """Pairs (corpus event, held-out event of each split in ``held``) likely to be one real event:
    same regime, event months at most :data:`MAX_MONTHS_APART` apart, distinct ids, and shared
    distinctive tokens (two or more, or one document symbol or resolution number) scoring at least
    ``min_score`` (sum of their rarity weights), best first. Rarity is counted over the events given,
    so a pair's score moves a little as the corpus changes."""

    def events(items: Sequence[dict[str, Any]]) -> dict[str, tuple[str, set[str]]]:
        texts: dict[str, set[str]] = {}
        regime: dict[str, str] = {}
        for item in items:
            eid = str(item.get("event_id", ""))
            if _month_index(eid) is None:
                continue
            texts.setdefault(eid, set()).add(str(item.get("event", "")))
            regime[eid] = str(item.get("regime", eid.split("-")[0]))
        return {e: (regime[e], _event_tokens(e, t)) for e, t in texts.items()}

    mine = events(corpus)
    theirs = {split: events(items) for split, items in held.items()}
    everything = [toks for _, toks in mine.values()] + [
        toks for evs in theirs.values() for _, toks in evs.values()
    ]
    df = Counter(t for toks in everything for t in toks)
    n = max(len(everything), 1)

    def weight(token: str) -> float:
        if token.startswith(("s/", "#")):
            return _SYMBOL_WEIGHT
        return math.log(n / df[token])

    out: list[Overlap] = []
    for split, evs in theirs.items():
        for tid, (tregime, ttoks) in evs.items():
            tmonth = _month_index(tid)
            assert tmonth is not None
            for cid, (cregime, ctoks) in mine.items():
                if cid == tid or cregime != tregime:
                    continue
                cmonth = _month_index(cid)
                assert cmonth is not None
                if abs(cmonth - tmonth) > MAX_MONTHS_APART:
                    continue
                shared = ctoks & ttoks
                score = sum(weight(t) for t in shared)
                # One shared word is chance; one shared document symbol or resolution is not.
                strong = len(shared) >= 2 or any(t.startswith(("s/", "#")) for t in shared)
                if strong and score >= min_score:
                    ranked = tuple(sorted(shared, key=lambda t: (-weight(t), t)))
                    out.append(Overlap(cid, tid, split, round(score, 2), ranked))
    out.sort(key=lambda o: (-o.score, o.corpus_event, o.test_event))
    return out


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
    corpus: Sequence[dict[str, Any]],
    test: Sequence[dict[str, Any]],
    *,
    aliases: Sequence[EventAlias] | None = None,
    holdout: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Corpus items that may be trained on: none with an id or an event in the frozen test split,
    none about a hold-out event (``holdout``; by default the items of :data:`HOLDOUT_PATH`), and
    none whose event an alias (``same: true``) makes a frozen or hold-out event (``aliases``; by
    default the decisions of :data:`ALIASES_PATH`). Both held-out sets are event-disjoint from
    training, so neither measures events the model was trained on."""
    if aliases is None:
        aliases = load_aliases(ALIASES_PATH)
    if holdout is None:
        holdout = load_items([HOLDOUT_PATH]) if HOLDOUT_PATH.exists() else []
    test_ids = {str(i["id"]) for i in test}
    test_events = (
        {str(i["event_id"]) for i in test}
        | {str(i["event_id"]) for i in holdout}
        | {a.corpus_event for a in aliases if a.same}
    )
    return [
        i for i in corpus if str(i["id"]) not in test_ids and str(i["event_id"]) not in test_events
    ]
