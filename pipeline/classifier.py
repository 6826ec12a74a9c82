"""Scoring and explaining text with a loaded model (pure: the artefact is loaded by ``registry``).

A model is a scikit-learn estimator whose ``decision_function`` gives a raw margin, plus a Platt
calibration (``a``, ``b``) and a decision threshold chosen on grouped out-of-fold predictions; both live
in the model's ``metadata.json``. Every flagged item is explained: the sentences that carry the
evidence, the terms that pushed the score, and the UN regimes concerned.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.utils import murmurhash3_32

from pipeline.normalise import split_sentences
from pipeline.regimes import RegimeBook

__all__ = [
    "FEATURE_SCHEMA",
    "Evidence",
    "Score",
    "TextModel",
    "article_text",
]

log = logging.getLogger(__name__)

# The input contract of every model this code can serve. A model trained on another schema is refused.
FEATURE_SCHEMA = "title-summary-body/v1"
BODY_CHARS = 3000


def article_text(title: str | None, summary: str | None = None, body: str | None = None) -> str:
    """The single text a model sees for an item: title, summary, then the start of the body."""
    parts = [
        p.strip()
        for p in (title or "", summary or "", (body or "")[:BODY_CHARS])
        if p and p.strip()
    ]
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Evidence:
    sentences: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    regimes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "sentences": list(self.sentences),
            "terms": list(self.terms),
            "regimes": list(self.regimes),
        }


@dataclass(frozen=True, slots=True)
class Score:
    score: float
    flagged: bool
    evidence: Evidence = field(default_factory=Evidence)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


@dataclass(slots=True)
class TextModel:
    """A servable model: estimator + calibration + threshold + the version it came from."""

    estimator: Any
    version: str
    threshold: float
    calibration: Mapping[str, float]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def margins(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.estimator.decision_function(list(texts)), dtype=float)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probability that each text reports a possible breach of UN sanctions."""
        if not texts:
            return np.zeros(0)
        a, b = self.calibration.get("a", 1.0), self.calibration.get("b", 0.0)
        return _sigmoid(a * self.margins(texts) + b)

    def score(
        self, texts: Sequence[str], *, regimes: RegimeBook | None = None, explain: bool = True
    ) -> list[Score]:
        """Score texts; flagged ones (or all, with ``explain``) get evidence."""
        probs = self.predict_proba(texts)
        out: list[Score] = []
        for text, p in zip(texts, probs, strict=True):
            flagged = bool(p >= self.threshold)
            evidence = self.explain(text, regimes=regimes) if (explain and flagged) else Evidence()
            if not flagged and regimes is not None:
                evidence = Evidence(regimes=tuple(k for k, _ in regimes.detect(text)[:3]))
            out.append(Score(score=round(float(p), 6), flagged=flagged, evidence=evidence))
        return out

    def explain(
        self, text: str, *, regimes: RegimeBook | None = None, max_sentences: int = 2
    ) -> Evidence:
        """The sentences and terms that carry the score, and the regimes the text concerns."""
        sentences = split_sentences(text)[:60]
        chosen: list[str] = []
        if sentences:
            probs = self.predict_proba(sentences)
            order = np.argsort(-probs)
            floor = min(0.5, self.threshold)
            chosen = [sentences[i] for i in order[:max_sentences] if probs[i] >= floor * 0.5]
            if not chosen:
                chosen = [sentences[int(order[0])]]
        terms = self.top_terms(text)
        found = regimes.detect(text) if regimes is not None else []
        active = [k for k, _ in found if regimes is not None and (r := regimes.get(k)) and r.active]
        return Evidence(sentences=tuple(chosen), terms=tuple(terms), regimes=tuple(active[:3]))

    def top_terms(self, text: str, k: int = 6) -> list[str]:
        """Word n-grams with the largest positive contribution (coefficient x tf-idf) to the margin."""
        block = _word_block(self.estimator)
        if block is None:
            return []
        pipe, coef = block
        hasher = pipe.named_steps["hash"]
        grams = sorted(set(hasher.build_analyzer()(text)))
        if not grams:
            return []
        # One row per n-gram: its hashed column and tf-idf weight in this document.
        weights = pipe.transform([text]).tocsr()
        columns = [abs(murmurhash3_32(g, seed=0)) % hasher.n_features for g in grams]
        contrib = sorted(
            ((float(weights[0, c] * coef[c]), g) for g, c in zip(grams, columns, strict=True)),
            reverse=True,
        )
        picked: list[str] = []
        for value, gram in contrib:
            if value <= 0 or len(picked) >= k:
                break
            if not any(gram in p or p in gram for p in picked):
                picked.append(gram)
        return picked


def _word_block(estimator: Any) -> tuple[Any, np.ndarray] | None:
    """The word-level hashed TF-IDF block and its slice of the linear coefficients, if any."""
    steps = getattr(estimator, "named_steps", None)
    if not steps or "features" not in steps or "clf" not in steps:
        return None
    coef = getattr(steps["clf"], "coef_", None)
    if coef is None:
        return None
    coef = np.asarray(coef).ravel()
    offset = 0
    for name, block in steps["features"].transformer_list:
        hasher = getattr(block, "named_steps", {}).get("hash")
        if hasher is None:
            return None
        if name == "word":
            return block, coef[offset : offset + hasher.n_features]
        offset += hasher.n_features
    return None


def platt_fit(margins: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Fit Platt scaling p = sigmoid(a*m + b) on out-of-fold margins (Newton's method, Platt's priors)."""
    y = np.asarray(labels, dtype=float)
    m = np.asarray(margins, dtype=float)
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    a, b = 1.0, math.log((n_neg + 1) / (n_pos + 1))
    for _ in range(100):
        p = _sigmoid(a * m + b)
        w = np.maximum(p * (1 - p), 1e-12)
        ga, gb = np.sum((p - t) * m), np.sum(p - t)
        haa, hab, hbb = np.sum(w * m * m) + 1e-9, np.sum(w * m), np.sum(w) + 1e-9
        det = haa * hbb - hab * hab
        if abs(det) < 1e-15:
            break
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        a, b = a - da, b - db
        if abs(da) < 1e-9 and abs(db) < 1e-9:
            break
    return {"a": float(a), "b": float(b)}
