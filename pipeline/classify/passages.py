"""Whole articles as a head and passages, and the features a learned combiner reads from their scores.

A breach is usually reported in one paragraph of an article that is mostly about something else
(a summit, the front line, domestic politics). Scoring one bag of words over the whole text dilutes
that paragraph; scoring only the head misses it. So an article is cut into:

* the **head**: title and summary, as a reader of a feed sees them;
* **passages**: windows of ``window`` sentences (overlapping by ``window - stride``) over the body, or
  over the summary when there is no body. At most ``max_passages`` passages of at most
  ``passage_chars`` characters each are scored: the work per article is bounded whatever its length.

The base model scores the head and every passage; :func:`features` turns those margins into the row a
combiner (fitted on grouped out-of-fold predictions, see :mod:`pipeline.training.train`) maps to the
article's margin. The length features let the combiner learn that a headline alone is thin evidence.

Pure: no I/O, no clock, no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "EMBEDDED_PASSAGES",
    "EMBEDDING_FEATURES",
    "FEATURE_NAMES",
    "SCRIPT_FEATURES",
    "THIN_WORDS",
    "Doc",
    "Margins",
    "PassageSettings",
    "Segments",
    "count_words",
    "embedded_texts",
    "embedding_features",
    "features",
    "flatten",
    "script_features",
    "segment",
    "span_matrix",
    "split_margins",
    "split_sentences",
    "thin",
    "units_of",
]

# Sentence ends: Latin punctuation followed by space, CJK and Arabic full stops with or without space,
# and line breaks (paragraphs).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？؟])\s*|\n+")
_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")

# The order of the combiner's input columns. Changing it changes the feature schema.
FEATURE_NAMES = (
    "head",  # base margin of title + summary
    "whole",  # base margin of title + summary + the start of the body, as one text
    "top1",  # best passage margin (0 when there are no passages)
    "top2",  # second best passage margin (top1 when there is one passage)
    "mean_top3",  # mean of the three best passage margins
    "no_passages",  # 1 when the item is only a head: lets the combiner shift, not amplify, the head
    # The same margins from the general base model, which has also seen ordinary news and the
    # passages of long articles with no breach (see pipeline.training.passages).
    "g_head",
    "g_whole",
    "g_top1",
    # The writing system (see SCRIPT_FEATURES).
    "script_han",
    "script_hangul",
    "script_arabic",
    "script_cyrillic",
)
# The writing system of the whole text (1 when most of its letters are in it): hashed n-gram margins
# are not on one scale across scripts (a Chinese sentence is one long "word" to a word tokenizer), and
# these let the combiner shift each script's margins onto one scale (out of fold at the operating
# point, Chinese F1 0.42 -> 0.69). Models trained before them record the shorter list in their
# metadata; a model selects its combiner's columns by name.
SCRIPT_FEATURES = FEATURE_NAMES[-4:]

# Embedding features (the cascade's second stage): the embedding head's margin on the head, on the
# best passage by sparse margin, and the best of the head and the top passages. (Not the whole text:
# embedding 3,000 characters costs as much as everything else together.)
EMBEDDING_FEATURES = ("emb_head", "emb_best", "emb_max")
EMBEDDED_PASSAGES = 2

# Fewer words than this and an item is "thin": a headline, or a headline and a fragment.
THIN_WORDS = 25


@dataclass(frozen=True, slots=True)
class Doc:
    """One item as the classifier sees it."""

    title: str = ""
    summary: str = ""
    body: str = ""

    @classmethod
    def of(cls, title: str | None, summary: str | None = None, body: str | None = None) -> Doc:
        return cls((title or "").strip(), (summary or "").strip(), (body or "").strip())


@dataclass(frozen=True, slots=True)
class PassageSettings:
    window: int = 3
    stride: int = 2
    max_passages: int = 48
    passage_chars: int = 900
    head_chars: int = 1200
    whole_chars: int = 3000

    def __post_init__(self) -> None:
        if not (1 <= self.stride <= self.window <= 10):
            raise ValueError(f"passages: need 1 <= stride <= window <= 10, got {self!r}")
        if not (1 <= self.max_passages <= 1000) or self.passage_chars < 100:
            raise ValueError(
                f"passages: max_passages 1-1000 and passage_chars >= 100, got {self!r}"
            )

    def as_dict(self) -> dict[str, int]:
        return {
            "window": self.window,
            "stride": self.stride,
            "max_passages": self.max_passages,
            "passage_chars": self.passage_chars,
            "head_chars": self.head_chars,
            "whole_chars": self.whole_chars,
        }


@dataclass(frozen=True, slots=True)
class Segments:
    """An item cut into units (title, summary sentences, body sentences), each hashed once, and the
    spans of units that make its head, its whole text and its passages."""

    units: tuple[str, ...]
    head_span: tuple[int, int]
    whole_span: tuple[int, int]
    passage_spans: tuple[tuple[int, int], ...]
    words: int

    def join(self, span: tuple[int, int]) -> str:
        return " ".join(self.units[span[0] : span[1]])

    @property
    def head(self) -> str:
        return self.join(self.head_span)

    @property
    def whole(self) -> str:
        return self.join(self.whole_span)

    @property
    def passages(self) -> tuple[str, ...]:
        return tuple(self.join(span) for span in self.passage_spans)

    @property
    def spans(self) -> tuple[tuple[int, int], ...]:
        """What the base model scores for this item, in this order: head, whole, passages."""
        return (self.head_span, self.whole_span, *self.passage_spans)


@dataclass(frozen=True, slots=True)
class Margins:
    """The base margins of one item's :attr:`Segments.spans`."""

    head: float
    whole: float
    passages: np.ndarray


def span_matrix(segs: Sequence[Segments]) -> Any:
    """A 0/1 sparse matrix: row r sums the units of the r-th span of :func:`flatten` order.

    Hashed n-gram counts are additive, so the counts of a head, a whole text or a passage are the sum
    of its units' counts: every unit is hashed once, however many windows it belongs to.
    """
    from scipy.sparse import csr_matrix

    rows: list[int] = []
    cols: list[int] = []
    row = offset = 0
    for sg in segs:
        for start, end in sg.spans:
            cols.extend(range(offset + start, offset + end))
            rows.extend([row] * (end - start))
            row += 1
        offset += len(sg.units)
    data = np.ones(len(cols), dtype=np.float32)
    return csr_matrix((data, (rows, cols)), shape=(row, offset))


def units_of(segs: Sequence[Segments]) -> list[str]:
    return [u for sg in segs for u in sg.units]


def flatten(segs: Sequence[Segments]) -> list[str]:
    """Every scored text of every item (head, whole, passages), in order."""
    return [sg.join(span) for sg in segs for span in sg.spans]


def split_margins(segs: Sequence[Segments], margins: np.ndarray) -> list[Margins]:
    """The margins of the spans in :func:`flatten` order, given back per item."""
    out, at = [], 0
    for sg in segs:
        n = len(sg.passage_spans)
        out.append(
            Margins(float(margins[at]), float(margins[at + 1]), margins[at + 2 : at + 2 + n])
        )
        at += 2 + n
    return out


def split_sentences(text: str) -> list[str]:
    """Sentences (and paragraph breaks) of ``text``, in several scripts; empty pieces dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and len(s.strip()) > 1]


def count_words(text: str) -> int:
    # CJK scripts do not separate words with spaces: count about two characters a word.
    cjk = len(_CJK.findall(text))
    return len(_WORD.findall(text)) + cjk // 2


def segment(doc: Doc, settings: PassageSettings) -> Segments:
    """The units, head, whole text and passages of ``doc`` (bounded by ``settings``)."""
    cap = settings.passage_chars
    title = doc.title[: min(cap, settings.head_chars)]
    summary_units = [u[:cap] for u in split_sentences(doc.summary[: settings.head_chars])]
    units = [title, *summary_units] if title else list(summary_units)
    head_end = len(units)
    # Passages run over the body's sentences, or over the summary's when there is no body.
    most = (settings.max_passages - 1) * settings.stride + settings.window
    if doc.body:
        body_units = [u[:cap] for u in split_sentences(doc.body)[:most]]
        first = len(units)
        units.extend(body_units)
        count = len(body_units)
    else:
        first = head_end - len(summary_units)
        count = len(summary_units)
    spans: list[tuple[int, int]] = []
    if count:
        last_start = max(count - settings.window, 0)
        starts = list(range(0, last_start + 1, settings.stride))
        if starts[-1] != last_start:
            starts.append(last_start)  # the end of the text is always covered
        spans = [
            (first + s, first + min(s + settings.window, count))
            for s in starts[: settings.max_passages]
        ]
    whole_end, size = head_end, sum(len(u) for u in units[:head_end])
    while whole_end < len(units) and size + len(units[whole_end]) <= settings.whole_chars:
        size += len(units[whole_end])
        whole_end += 1
    words = sum(count_words(u) for u in units)
    return Segments(
        units=tuple(units),
        head_span=(0, head_end),
        whole_span=(0, max(whole_end, head_end)),
        passage_spans=tuple(spans),
        words=words,
    )


def thin(segments: Segments) -> bool:
    return segments.words < THIN_WORDS


def features(m: Margins, g: Margins, sg: Segments | None = None) -> np.ndarray:
    """One combiner row (see :data:`FEATURE_NAMES`) from the domain (``m``) and general (``g``)
    base margins of one item and its segments ``sg`` (for the script columns; none: all 0).

    A head-only item gets 0 for the passage features, not copies of the head's margin: copies would
    count the head several times over and push a bare headline to a confident score. Length is not a
    feature (it tracks how training data was written more than what it reports); it decides
    :func:`thin` instead.
    """
    ranked = sorted(m.passages.tolist(), reverse=True)
    g_top1 = float(g.passages.max()) if len(g.passages) else 0.0
    general = [g.head, g.whole, g_top1]
    scripts = script_features(sg) if sg is not None else np.zeros(len(SCRIPT_FEATURES))
    if not ranked:
        return np.asarray([m.head, m.whole, 0.0, 0.0, 0.0, 1.0, *general, *scripts], dtype=float)
    top1 = ranked[0]
    top2 = ranked[1] if len(ranked) > 1 else top1
    mean3 = float(np.mean(ranked[:3]))
    return np.asarray([m.head, m.whole, top1, top2, mean3, 0.0, *general, *scripts], dtype=float)


_SCRIPTS = (
    re.compile(r"[\u3400-\u9fff]"),  # Han
    re.compile(r"[\uac00-\ud7af\u1100-\u11ff]"),  # Hangul
    re.compile(r"[\u0600-\u06ff\u0750-\u077f]"),  # Arabic
    re.compile(r"[\u0400-\u04ff]"),  # Cyrillic
)
_KANA = re.compile(r"[\u3040-\u30ff]")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def script_features(sg: Segments) -> np.ndarray:
    """1 for the script most of the whole text's letters are written in (Han, Hangul, Arabic,
    Cyrillic), 0 elsewhere; all 0 for Latin and other scripts, and for Japanese (Han with kana)."""
    text = sg.whole
    letters = len(_LETTER.findall(text))
    out = np.zeros(len(SCRIPT_FEATURES))
    if not letters:
        return out
    shares = [len(rx.findall(text)) / letters for rx in _SCRIPTS]
    best = int(np.argmax(shares))
    if shares[best] > 0.5 and not (best == 0 and len(_KANA.findall(text)) / letters > 0.05):
        out[best] = 1.0
    return out


def embedded_texts(sg: Segments, m: Margins) -> tuple[str, ...]:
    """The texts the second stage embeds: the head, then the best passages by sparse margin."""
    order = np.argsort(-m.passages, kind="stable")[:EMBEDDED_PASSAGES]
    return (sg.head, *(sg.join(sg.passage_spans[int(i)]) for i in order))


def embedding_features(margins: Sequence[float] | np.ndarray) -> np.ndarray:
    """Second-stage row from the embedding margins of :func:`embedded_texts` (head first)."""
    m = np.asarray(margins, dtype=float)
    head = float(m[0])
    best = float(m[1]) if len(m) > 1 else head
    return np.asarray([head, best, float(m.max())], dtype=float)
