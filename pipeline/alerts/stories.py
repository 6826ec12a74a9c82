"""Stories: near-duplicate flagged articles grouped into one event (pure core, one DB adapter).

One wire story syndicated by many outlets, re-published with small edits, or reported with a
translated headline should reach a compliance officer as *one* alert listing every source. Two signals
decide whether an article belongs to a recent story (docs/alerts.md has the measurements):

* **lexical** — the Jaccard similarity of the two texts' word 3-shingles (title, summary and the
  start of the body, NFKC case-folded, punctuation dropped, CJK runs as character bigrams), estimated
  with MinHash (``datasketch``, 128 permutations) and looked up through MinHash LSH. It catches
  syndicated copies (new headline, same body) and edits (a sentence added, a figure corrected).
* **cross-lingual** — only for two articles in *different languages*, where shingles cannot overlap:
  both published within ``window`` of each other, sharing a UN regime, and sharing at least
  ``MIN_SHARED_ANCHORS`` *anchors*: numbers (thousand separators and decimal commas normalised, any
  script's digits; years and the regimes' resolution numbers excluded, since every story on a topic
  carries them), IMO ship numbers, and Latin-script proper names (a translation keeps "Haftar",
  "KN-23", a vessel's name and its figures). The score is the overlap coefficient of the two anchor
  sets. It is cheap, explainable, and deliberately conservative; a multilingual sentence embedding
  can replace it later through :func:`similarity` (the single hook both the pipeline and the bench
  call).

An article joins the most similar story whose score reaches the threshold (``alerts.story_threshold``),
otherwise it starts a new one.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: a quiet cycle groups nothing and skips its 0.4 s import
    from datasketch import MinHash

__all__ = [
    "DEFAULT_WINDOW",
    "MIN_SHARED_ANCHORS",
    "NUM_PERM",
    "SHINGLE_SIZE",
    "Fingerprint",
    "StoryIndex",
    "StoryText",
    "anchors",
    "crosslingual_similarity",
    "fingerprint",
    "lexical_similarity",
    "print_scheme",
    "restore",
    "shingles",
    "signature_bytes",
    "similarity",
    "words",
]

log = logging.getLogger(__name__)

SHINGLE_SIZE = 3
NUM_PERM = 128
SEED = 1
MIN_SHARED_ANCHORS = 2
TEXT_CHARS = 4000
DEFAULT_WINDOW = timedelta(hours=72)

_WORD = re.compile(r"\w+", re.UNICODE)
# Han, Hiragana/Katakana: no spaces between words, so runs are cut into character bigrams.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+")
_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:[ ,.\u00a0\u202f]\d{3})+(?![\d])|\d+(?:[.,]\d+)?")
_IMO = re.compile(r"\bIMO[\s:#.-]*(?:No\.?\s*|number\s*)?(\d{7})\b", re.IGNORECASE)
_LATIN_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*\b")
_SENTENCE_END = frozenset('.!?:;»«"“”()\n')
_YEAR = range(1945, 2101)
# Capitalised words that carry no identity (sentence starters that slip through, titles, weekdays).
_NAME_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "but",
        "for",
        "in",
        "on",
        "at",
        "of",
        "to",
        "by",
        "with",
        "from",
        "as",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "he",
        "she",
        "they",
        "we",
        "his",
        "her",
        "their",
        "our",
        "mr",
        "mrs",
        "ms",
        "dr",
        "un",
        "security",
        "council",
        "committee",
        "panel",
        "experts",
        "resolution",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "reuters",
        "afp",
        "ap",
        "le",
        "la",
        "les",
        "un",
        "une",
        "des",
        "du",
        "de",
        "et",
        "en",
        "el",
        "los",
        "las",
        "del",
        "y",
        "por",
        "para",
        "con",
        "lundi",
        "mardi",
        "mercredi",
        "jeudi",
        "vendredi",
        "samedi",
        "dimanche",
        "der",
        "die",
        "das",
        "und",
        "ein",
        "eine",
        "mit",
        "von",
        "im",
        "am",
        "zu",
    ]
)


def _ascii_digits(text: str) -> str:
    """Every script's decimal digits as ASCII (Arabic-Indic, full-width ...)."""
    if text.isascii():
        return text
    out = []
    for ch in text:
        d = unicodedata.decimal(ch, None) if not ch.isascii() else None
        out.append(str(d) if d is not None else ch)
    return "".join(out)


def words(text: str) -> list[str]:
    """Normalised tokens: NFKC, case-folded, punctuation dropped; CJK runs as character bigrams."""
    norm = unicodedata.normalize("NFKC", _ascii_digits(text)).casefold()
    out: list[str] = []
    for token in _WORD.findall(norm):
        if _CJK.search(token):
            for run in re.split(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+)", token):
                if not run:
                    continue
                if _CJK.fullmatch(run):
                    out.extend(run[i : i + 2] for i in range(max(1, len(run) - 1)))
                else:
                    out.append(run)
        else:
            out.append(token)
    return out


def shingles(text: str, k: int = SHINGLE_SIZE) -> set[str]:
    """Word k-shingles of ``text``; a text shorter than k words is one shingle (empty: none)."""
    toks = words(text)
    if len(toks) < k:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i : i + k]) for i in range(len(toks) - k + 1)}


def _number(raw: str) -> str | None:
    raw = raw.strip()
    if re.fullmatch(r"\d{1,3}(?:[ ,.\u00a0\u202f]\d{3})+", raw):
        value = re.sub(r"\D", "", raw)
    else:
        value = raw.replace(",", ".")
    value = value.lstrip("0") or "0"
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    if value.isdigit() and (len(value) < 2 or int(value) in _YEAR):
        return None
    return value


def anchors(text: str, *, ignore_numbers: Iterable[int] = ()) -> frozenset[str]:
    """Language-independent identity markers of a text: numbers, IMO numbers, Latin proper names."""
    text = unicodedata.normalize("NFKC", _ascii_digits(text))
    ignored = {str(n) for n in ignore_numbers}
    out: set[str] = {f"imo:{m}" for m in _IMO.findall(text)}
    for m in _NUMBER.finditer(text):
        value = _number(m.group())
        if value is not None and value not in ignored:
            out.add(f"n:{value}")
    for m in _LATIN_NAME.finditer(text):
        token = m.group()
        if len(token) < 3 or token.isdigit():
            continue
        before = text[max(0, m.start() - 8) : m.start()].rstrip()
        starts_sentence = m.start() == 0 or not before or before[-1] in _SENTENCE_END
        if starts_sentence and not token.isupper():
            continue  # a capital because a sentence starts here, not because it is a name
        key = "".join(
            c
            for c in unicodedata.normalize("NFKD", token.casefold())
            if not unicodedata.combining(c)
        )
        if key not in _NAME_STOP:
            out.add(f"w:{key}")
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class StoryText:
    """What grouping needs to know about one article."""

    key: Any  # the article id (or a pair id in the bench)
    title: str
    text: str  # title, summary and the start of the body
    lang: str = "und"
    published_at: datetime | None = None
    regimes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Fingerprint:
    item: StoryText
    minhash: MinHash | None  # None when the text has no words at all
    anchors: frozenset[str] = field(default_factory=frozenset)


def fingerprint(item: StoryText, *, ignore_numbers: Iterable[int] = ()) -> Fingerprint:
    sh = shingles(item.text[:TEXT_CHARS])
    mh: MinHash | None = None
    if sh:
        from datasketch import MinHash

        # The template's permutations are the ones MinHash(num_perm, seed) generates: shared, not
        # generated again (about 1 ms) and held again (2 KiB) for every fingerprint.
        template = _template()
        mh = MinHash(
            num_perm=NUM_PERM,
            seed=SEED,
            permutations=template.permutations,
            scheme=template.scheme,
        )
        mh.update_batch([s.encode("utf-8") for s in sorted(sh)])
    return Fingerprint(item, mh, anchors(item.text[:TEXT_CHARS], ignore_numbers=ignore_numbers))


# Bump when fingerprint() changes what it computes: every stored print is then recomputed once.
FINGERPRINT_VERSION = 1


@lru_cache(maxsize=1)
def _template() -> MinHash:
    """An empty MinHash of the configured size and seed: its permutations and hashing scheme are
    shared by every restored fingerprint (making them costs more than the restore)."""
    from datasketch import MinHash

    return MinHash(num_perm=NUM_PERM, seed=SEED)


def print_scheme(ignore_numbers: Iterable[int] = ()) -> str:
    """A digest of everything a fingerprint depends on besides the article's text: the code
    version, MinHash size, seed and scheme, the datasketch release, shingle and text sizes, and the
    numbers anchors ignore. A stored print of another scheme is stale."""
    from importlib.metadata import version

    parts = (
        FINGERPRINT_VERSION,
        NUM_PERM,
        SEED,
        _template().scheme,
        version("datasketch"),
        SHINGLE_SIZE,
        TEXT_CHARS,
        ",".join(str(n) for n in sorted(set(ignore_numbers))),
    )
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


def signature_bytes(fp: Fingerprint) -> bytes | None:
    """The fingerprint's MinHash signature as bytes (None when the text had no words)."""
    if fp.minhash is None:
        return None
    return bytes(fp.minhash.hashvalues.astype("<u8").tobytes())


def restore(item: StoryText, signature: bytes | None, anchors: Iterable[str]) -> Fingerprint:
    """The fingerprint :func:`fingerprint` computed for ``item`` (same similarity to every other
    fingerprint), from its stored signature and anchors; ``item`` needs no text."""
    mh: MinHash | None = None
    if signature is not None:
        import numpy as np
        from datasketch import MinHash

        template = _template()
        mh = MinHash(
            seed=SEED,
            hashvalues=np.frombuffer(signature, dtype="<u8").astype(np.uint64),
            permutations=template.permutations,
            scheme=template.scheme,
        )
    return Fingerprint(item, mh, frozenset(anchors))


def lexical_similarity(a: Fingerprint, b: Fingerprint) -> float:
    """MinHash estimate of the Jaccard similarity of the two texts' shingle sets."""
    if a.minhash is None or b.minhash is None:
        return 0.0
    return float(a.minhash.jaccard(b.minhash))


def _within(a: datetime | None, b: datetime | None, window: timedelta) -> bool:
    return a is None or b is None or abs(a - b) <= window


def _lang(code: str) -> str:
    return (code or "und").split("-")[0].lower()


def _distinctive(anchor: str) -> bool:
    """An anchor that identifies on its own: an IMO number, or a number of three or more digits."""
    if anchor.startswith("imo:"):
        return True
    return anchor.startswith("n:") and sum(c.isdigit() for c in anchor) >= 3


def crosslingual_similarity(a: Fingerprint, b: Fingerprint, *, window: timedelta) -> float:
    """Anchor overlap for two articles in different languages, 0–1.

    0 when the languages are the same or unknown (the lexical signal decides those), when both have
    regimes and none is shared (a side without a detected regime does not veto: regime aliases are
    missing for some languages), when they are further apart than ``window``, or when the shared
    anchors are too few: at least ``MIN_SHARED_ANCHORS``, or a single distinctive one (an IMO number
    or a number of three or more digits) when the sparser side has no more than two anchors at all
    (a Korean or Arabic text often keeps only its figures). Otherwise the overlap coefficient
    ``|A ∩ B| / min(|A|, |B|)``.
    """
    la, lb = _lang(a.item.lang), _lang(b.item.lang)
    if la == lb or "und" in (la, lb):
        return 0.0
    ra, rb = set(a.item.regimes), set(b.item.regimes)
    if ra and rb and not ra & rb:
        return 0.0
    if not _within(a.item.published_at, b.item.published_at, window):
        return 0.0
    shared = a.anchors & b.anchors
    smaller = min(len(a.anchors), len(b.anchors))
    enough = len(shared) >= MIN_SHARED_ANCHORS or (
        len(shared) == 1 and smaller <= 2 and _distinctive(next(iter(shared)))
    )
    if not enough:
        return 0.0
    return len(shared) / smaller


def similarity(a: Fingerprint, b: Fingerprint, *, window: timedelta = DEFAULT_WINDOW) -> float:
    """How likely two articles report the same story, 0–1: the hook every caller goes through.

    Today the larger of the lexical and cross-lingual signals; a multilingual embedding's cosine can
    be added here without touching the callers.
    """
    if not _within(a.item.published_at, b.item.published_at, window):
        return 0.0
    return max(lexical_similarity(a, b), crosslingual_similarity(a, b, window=window))


SimilarityFn = Callable[[Fingerprint, Fingerprint], float]


class _Bands:
    """MinHash LSH: the same ``b`` bands of ``r`` hash values that datasketch's ``MinHashLSH`` uses
    for this threshold and size (its optimal parameters), so the same members share a band; each
    band a dict from a hash of the band's values to the member key (a list of keys only when several
    share it). About a fifth of ``MinHashLSH``'s memory per member, which matters because the stories
    step indexes every member of the story window (``bench/story_index.py``). A collision of two
    different bands' 64-bit hashes only adds a candidate, which :meth:`StoryIndex.best` verifies."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        from datasketch import MinHashLSH

        probe = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.b, self.r = probe.b, probe.r
        self._tables: list[dict[int, Any]] = [{} for _ in range(self.b)]

    def _bands(self, minhash: MinHash) -> list[int]:
        values, r = minhash.hashvalues, self.r
        return [hash(values[i * r : (i + 1) * r].tobytes()) for i in range(self.b)]

    def insert(self, key: Any, minhash: MinHash) -> None:
        for table, band in zip(self._tables, self._bands(minhash), strict=True):
            slot = table.get(band)
            if slot is None:
                table[band] = key
            elif isinstance(slot, list):
                slot.append(key)
            else:
                table[band] = [slot, key]

    def query(self, minhash: MinHash) -> set[Any]:
        found: set[Any] = set()
        for table, band in zip(self._tables, self._bands(minhash), strict=True):
            slot = table.get(band)
            if slot is None:
                continue
            if isinstance(slot, list):
                found.update(slot)
            else:
                found.add(slot)
        return found


class StoryIndex:
    """Recent story members, searchable by MinHash LSH (lexical) and by their anchors (cross-lingual).

    ``add`` a member with its story id; ``best`` returns the story an article should join, or None.
    LSH candidates are retrieved at a lower threshold than the decision threshold (so pairs just
    above it are not lost to banding) and every candidate is verified with :func:`similarity`.
    Cross-lingual candidates are the members in other languages that share at least one anchor (the
    cross-lingual signal is 0 without one): looked up in an index of anchors, not by scanning every
    member, which made a busy cycle's grouping quadratic. Candidates keep the members' order (lexical
    ones first), so a tie between two stories goes to the one indexed first.
    Members are kept without their text (similarity reads only their key, language, date, regimes,
    MinHash and anchors): the index holds every member of the story window for a whole run.
    """

    def __init__(self, threshold: float, *, window: timedelta = DEFAULT_WINDOW) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"story threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.window = window
        self._lsh = _Bands(max(0.05, threshold * 0.6), NUM_PERM)
        self._members: dict[Any, tuple[Fingerprint, int]] = {}
        self._order: dict[Any, int] = {}
        self._by_anchor: dict[str, list[Any]] = {}

    def __len__(self) -> int:
        return len(self._members)

    def add(self, fp: Fingerprint, story_id: int) -> None:
        key = fp.item.key
        if key in self._members:
            return
        if fp.item.text or fp.item.title:  # kept for the whole run: without the text
            fp = Fingerprint(replace(fp.item, title="", text=""), fp.minhash, fp.anchors)
        self._members[key] = (fp, story_id)
        self._order[key] = len(self._order)
        for anchor in fp.anchors:
            self._by_anchor.setdefault(anchor, []).append(key)
        if fp.minhash is not None:
            self._lsh.insert(key, fp.minhash)

    def candidates(self, fp: Fingerprint) -> Sequence[Any]:
        found = self._lsh.query(fp.minhash) if fp.minhash is not None else set()
        keys: list[Any] = sorted(found, key=self._order.__getitem__)  # the members' order
        seen = set(keys)
        lang = _lang(fp.item.lang)
        sharing = {k for anchor in fp.anchors for k in self._by_anchor.get(anchor, ())}
        for key in sorted(sharing - seen, key=self._order.__getitem__):  # cross-lingual
            if _lang(self._members[key][0].item.lang) not in (lang, "und"):
                keys.append(key)
        return keys

    def best(self, fp: Fingerprint) -> tuple[int, float] | None:
        """The (story id, score) the article should join, or None to start a new story."""
        best: tuple[int, float] | None = None
        for key in self.candidates(fp):
            other, story_id = self._members[key]
            score = similarity(fp, other, window=self.window)
            if score >= self.threshold and (best is None or score > best[1]):
                best = (story_id, score)
        return best
