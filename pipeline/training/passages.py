"""Training the whole-article model: a base scorer over heads and passages, and a learned combiner.

What the base model learns from (``base_examples``, then ``with_breach_passages``):

* every item that is not a full-length article (``style != "article"``): its whole text, its label;
* every passage and the head of a full-length **negative** article, as negatives: nothing in such an
  article reports a breach, so no part of it does either. This teaches the base model the summit,
  front-line and domestic-politics language that surrounds real breach reporting;
* the breach passages of full-length **positive** articles, as positives. Which paragraph holds the
  breach is not labelled, so it is found the way multiple-instance learning does: a first base model
  (fitted without the article's fold, so it has never seen the article) scores every passage, and the
  ``BREACH_PASSAGES`` best are taken as the article's positive examples. The other passages of a
  positive article are never examples: a wrong guess there would teach the model that diplomacy is a
  breach. On grouped out-of-fold predictions of the training corpus this lifts article F1 from 0.79
  to 0.87 and the recall of breaches only in the body from 0.78 to 0.89 (``docs/model-card.md``).

The combiner reads, for every item, the base margins of its head and passages
(:func:`pipeline.classify.passages.features`). Its training rows are **grouped out-of-fold**: for each
fold the base model is fitted on the other folds' base examples and scores this fold's items, so the
combiner learns how out-of-sample base margins behave, as they will in service.

Pure computation: no I/O, no clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from pipeline.classify.model import article_text, doc_of, sparse_margins
from pipeline.classify.passages import (
    EMBEDDING_FEATURES,
    FEATURE_NAMES,
    PassageSettings,
    Segments,
    embedded_texts,
    embedding_features,
    features,
    segment,
    split_margins,
)

__all__ = [
    "BREACH_PASSAGES",
    "EVERYDAY_KIND",
    "OOF",
    "BaseExamples",
    "Bases",
    "base_examples",
    "choose_band",
    "fit_bases",
    "item_rows",
    "make_combiner",
    "oof_combined",
    "oof_embedding_rows",
    "oof_features",
    "segments_of",
    "with_breach_passages",
]

log = logging.getLogger(__name__)

# Ordinary news (science, sport, business...): negatives for the general base only.
EVERYDAY_KIND = "everyday_news"

# How many best passages of a positive full-length article become positive base examples. Two beat one
# on grouped out-of-fold PR-AUC (0.899 against 0.896): a breach paragraph often straddles two windows.
BREACH_PASSAGES = 2


@dataclass(frozen=True, slots=True)
class BaseExamples:
    texts: list[str]
    labels: np.ndarray
    owner: np.ndarray  # index of the corpus item each example comes from
    domain: np.ndarray  # True for examples the domain base learns from


def base_examples(items: Sequence[dict[str, Any]], settings: PassageSettings) -> BaseExamples:
    """The base examples known from labels alone: every short item, and every part of a negative
    full-length article. ``domain`` marks the examples about sanctions-regime topics (everything but
    ordinary news), which the domain base and the embedding head learn from."""
    texts: list[str] = []
    labels: list[int] = []
    owner: list[int] = []
    domain: list[bool] = []
    for index, item in enumerate(items):
        if item.get("style") == "article":
            if int(item["label"]) == 1:
                continue
            seg = segment(doc_of(item), settings)
            for text in (seg.head, *seg.passages):  # as the model will see them
                texts.append(text)
                labels.append(0)
                owner.append(index)
                domain.append(item.get("kind") != EVERYDAY_KIND)
        else:
            texts.append(article_text(item.get("title"), item.get("summary"), item.get("body")))
            labels.append(int(item["label"]))
            owner.append(index)
            domain.append(item.get("kind") != EVERYDAY_KIND)
    return BaseExamples(texts, np.asarray(labels), np.asarray(owner), np.asarray(domain))


def with_breach_passages(
    base: BaseExamples,
    items: Sequence[dict[str, Any]],
    top_texts: Sequence[tuple[str, ...]],
    *,
    count: int = BREACH_PASSAGES,
) -> BaseExamples:
    """``base`` plus the ``count`` best passages of every positive full-length article as positive
    domain examples. ``top_texts`` are out-of-fold (:func:`oof_features`): per item the head, then
    its passages best first, as scored by a base model that never saw the item's fold."""
    texts, labels = list(base.texts), base.labels.tolist()
    owner, domain = base.owner.tolist(), base.domain.tolist()
    for index, item in enumerate(items):
        if item.get("style") != "article" or int(item["label"]) != 1:
            continue
        for text in top_texts[index][1 : 1 + count]:
            texts.append(text)
            labels.append(1)
            owner.append(index)
            domain.append(True)
    return BaseExamples(
        texts, np.asarray(labels), np.asarray(owner), np.asarray(domain, dtype=bool)
    )


@dataclass(slots=True)
class Bases:
    """The sparse bases: one feature transform, a domain classifier and a general classifier."""

    pipe: Any  # Pipeline([("features", ...), ("clf", domain classifier)])
    general: Any

    def margins(self, segs: Sequence[Segments]) -> tuple[np.ndarray, np.ndarray]:
        return sparse_margins(self.pipe, self.general, segs)


def fit_bases(build: Callable[[], Any], base: BaseExamples, keep: np.ndarray) -> Bases:
    """Fit the feature transform on every kept example, the domain classifier on the kept domain
    examples and the general classifier on all kept examples (same features, one transform)."""
    pipe = build()
    texts = [t for t, k in zip(base.texts, keep, strict=True) if k]
    x = pipe.named_steps["features"].fit_transform(texts)
    labels = base.labels[keep]
    dom = base.domain[keep]
    pipe.named_steps["clf"].fit(x[dom], labels[dom])
    general = clone(pipe.named_steps["clf"]).fit(x, labels)
    return Bases(pipe, general)


def item_rows(bases: Bases, segs: Sequence[Segments]) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Combiner rows and the texts the second stage would embed, for each of ``segs``."""
    dom, gen = bases.margins(segs) if segs else (np.zeros(0), np.zeros(0))
    rows, top = [], []
    for sg, m, g in zip(segs, split_margins(segs, dom), split_margins(segs, gen), strict=True):
        rows.append(features(m, g, sg))
        top.append(embedded_texts(sg, m))
    return (np.vstack(rows) if rows else np.zeros((0, len(FEATURE_NAMES)))), top


@dataclass(frozen=True, slots=True)
class OOF:
    rows: np.ndarray  # sparse combiner rows, one per item
    top_texts: list[tuple[str, ...]]  # per item: head, whole and its best passages


def oof_features(
    build: Callable[[], Any],
    items: Sequence[dict[str, Any]],
    segs: Sequence[Segments],
    base: BaseExamples,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
) -> OOF:
    """Grouped out-of-fold combiner rows: each fold scored by bases fitted without it."""
    rows = np.zeros((len(items), len(FEATURE_NAMES)))
    top: list[tuple[str, ...]] = [()] * len(items)
    for fold, (train_idx, test_idx) in enumerate(splits):
        bases = fit_bases(build, base, np.isin(base.owner, train_idx))
        fold_rows, fold_top = item_rows(bases, [segs[i] for i in test_idx])
        rows[test_idx] = fold_rows
        for i, t in zip(test_idx, fold_top, strict=True):
            top[i] = t
        log.info("passage features: fold %d of %d done", fold + 1, len(splits))
    return OOF(rows, top)


def oof_embedding_rows(
    build_head: Callable[[], Any],
    vectors: Callable[[Sequence[str]], np.ndarray],
    base: BaseExamples,
    top: Sequence[tuple[str, ...]],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Grouped out-of-fold embedding features (see :func:`embedding_features`) for every item.
    The embedding head learns from the domain examples only."""
    domain_texts = [t for t, d in zip(base.texts, base.domain, strict=True) if d]
    domain_vectors = vectors(domain_texts)
    owner, labels = base.owner[base.domain], base.labels[base.domain]
    rows = np.zeros((len(top), len(EMBEDDING_FEATURES)))
    for train_idx, test_idx in splits:
        in_train = np.isin(owner, train_idx)
        head = build_head().fit(domain_vectors[in_train], labels[in_train])
        texts = [t for i in test_idx for t in top[i]]
        margins = np.asarray(head.decision_function(vectors(texts)), dtype=float)
        at = 0
        for i in test_idx:
            n = len(top[i])
            rows[i] = embedding_features(margins[at : at + n])
            at += n
    return rows


def make_combiner() -> LogisticRegression:
    # Few, well-scaled features: a lightly regularised logistic regression. No class weighting: the
    # combined margin is Platt-calibrated on out-of-fold predictions afterwards anyway.
    return LogisticRegression(C=1.0, max_iter=2000)


def oof_combined(
    rows: np.ndarray, labels: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Out-of-fold combined margins (the combiner itself cross-validated on the same folds)."""
    out = np.zeros(len(labels))
    for train_idx, test_idx in splits:
        comb = make_combiner().fit(rows[train_idx], labels[train_idx])
        out[test_idx] = comb.decision_function(rows[test_idx])
    return out


def segments_of(items: Sequence[dict[str, Any]], settings: PassageSettings) -> list[Segments]:
    return [segment(doc_of(i), settings) for i in items]


def choose_band(
    p_sparse: np.ndarray, p_full: np.ndarray, threshold: float, *, tolerance: float = 0.002
) -> tuple[float, float]:
    """The widest "sure enough" zones of the sparse score: below ``low`` and from ``high`` up, the
    sparse decision is kept and the embeddings are skipped. Chosen on out-of-fold scores so that the
    cascade's decisions differ from the full model's on at most ``tolerance`` of the items."""
    full_flag = p_full >= threshold
    n = max(len(p_full), 1)
    low = 0.0
    for cand in sorted({round(x, 4) for x in np.linspace(0.0, threshold, 101)}):
        changed = np.sum((p_sparse < cand) & full_flag)
        if changed / n > tolerance / 2:
            break
        low = cand
    high = 1.0
    for cand in sorted({round(x, 4) for x in np.linspace(threshold, 1.0, 101)}, reverse=True):
        changed = np.sum((p_sparse >= cand) & ~full_flag)
        if changed / n > tolerance / 2:
            break
        high = cand
    return float(low), float(max(high, low))
