"""Scoring and explaining text with a loaded model (pure: the artefact is loaded by ``registry``).

A model is a scikit-learn estimator whose ``decision_function`` gives a raw margin, plus a Platt
calibration (``a``, ``b``) and a decision threshold chosen on grouped out-of-fold predictions; both live
in the model's ``metadata.json``. Every flagged item is explained: the sentences that carry the
evidence, the terms that pushed the score, and the UN regimes concerned.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.classify.passages import (
    EMBEDDING_FEATURES,
    FEATURE_NAMES,
    THIN_WORDS,
    Doc,
    Margins,
    PassageSettings,
    Segments,
    count_words,
    embedded_texts,
    embedding_features,
    features,
    segment,
    span_matrix,
    split_margins,
    thin,
    units_of,
)
from pipeline.classify.stopwords import meaningful_terms
from pipeline.errors import ModelError
from pipeline.ingest.normalise import split_sentences
from pipeline.knowledge.regimes import RegimeBook

__all__ = [
    "FEATURE_SCHEMA",
    "LEGACY_SCHEMA",
    "SUPPORTED_SCHEMAS",
    "Doc",
    "Evidence",
    "Score",
    "TextModel",
    "article_text",
    "doc_of",
]

log = logging.getLogger(__name__)

# The input contract of the models this code trains: the head and the passages of an article, scored
# by a base model and combined by a learned combiner (pipeline.classify.passages).
FEATURE_SCHEMA = "head-passages/v1"
# The earlier contract, still served: one text of title, summary and the first BODY_CHARS of the body.
LEGACY_SCHEMA = "title-summary-body/v1"
SUPPORTED_SCHEMAS = frozenset({FEATURE_SCHEMA, LEGACY_SCHEMA})
BODY_CHARS = 3000
EVIDENCE_PASSAGES = 2


def article_text(title: str | None, summary: str | None = None, body: str | None = None) -> str:
    """The single text a model sees for an item: title, summary, then the start of the body."""
    parts = [
        p.strip()
        for p in (title or "", summary or "", (body or "")[:BODY_CHARS])
        if p and p.strip()
    ]
    return "\n".join(parts)


def doc_of(item: Mapping[str, Any]) -> Doc:
    """The :class:`Doc` of a JSON item or corpus record (``title``, ``summary``, ``body``)."""
    return Doc.of(item.get("title"), item.get("summary"), item.get("body"))


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
    # "low" when the text is too thin to decide (a headline, a fragment): read the score with care.
    confidence: str = "normal"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))
    return out


@dataclass(slots=True)
class TextModel:
    """A servable model: estimator(s) + calibration + threshold + the version it came from.

    ``metadata["kind"]`` says what the estimator is:

    * ``tfidf``: ``Pipeline([("features", FeatureUnion of hashed TF-IDF blocks), ("clf", linear)])``;
    * ``embedding``: ``{"embedding_head": linear}`` over multilingual sentence embeddings;
    * ``fusion``: ``{"tfidf": <tfidf pipeline>, "embedding_head": linear}``, margins combined with the
      weights in ``metadata["fusion"]`` (a stacker fitted on grouped out-of-fold margins).

    Features of the TF-IDF part are computed once per batch and reused for the evidence.
    """

    estimator: Any
    version: str
    threshold: float
    calibration: Mapping[str, float]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    embedder: Callable[[Sequence[str]], np.ndarray] | None = None

    @property
    def kind(self) -> str:
        return str(self.metadata.get("kind", "tfidf"))

    @property
    def tfidf(self) -> Any:
        if isinstance(self.estimator, dict):
            return self.estimator.get("tfidf")
        return self.estimator if self.kind == "tfidf" else None

    @property
    def head(self) -> Any:
        return self.estimator.get("embedding_head") if isinstance(self.estimator, dict) else None

    def _calibrate(self, margins: np.ndarray) -> np.ndarray:
        a, b = self.calibration.get("a", 1.0), self.calibration.get("b", 0.0)
        return _sigmoid(a * np.asarray(margins, dtype=float) + b)

    def _margins(self, texts: Sequence[str]) -> tuple[np.ndarray, Any]:
        """Raw margins, and the TF-IDF feature matrix when the model has a TF-IDF part."""
        texts = list(texts)
        features = None
        margin_tfidf = margin_emb = None
        pipe = self.tfidf
        if pipe is not None:
            steps = getattr(pipe, "named_steps", {})
            if "features" in steps and "clf" in steps:
                features = steps["features"].transform(texts)
                margin_tfidf = np.asarray(steps["clf"].decision_function(features), dtype=float)
            else:
                margin_tfidf = np.asarray(pipe.decision_function(texts), dtype=float)
        if self.head is not None:
            if self.embedder is None:
                raise ModelError(
                    f"model {self.version} needs the sentence embedder, which is not loaded"
                )
            vectors = self.embedder(texts)
            margin_emb = np.asarray(self.head.decision_function(vectors), dtype=float)
        if margin_tfidf is not None and margin_emb is not None:
            w = self.metadata.get("fusion") or {}
            fused = (
                w.get("w_tfidf", 0.5) * margin_tfidf
                + w.get("w_embedding", 0.5) * margin_emb
                + w.get("bias", 0.0)
            )
            return fused, features
        margins = margin_tfidf if margin_tfidf is not None else margin_emb
        if margins is None:
            raise ModelError(
                f"model {self.version} has neither a TF-IDF part nor an embedding head"
            )
        return margins, features

    def margins(self, texts: Sequence[str]) -> np.ndarray:
        return self._margins(texts)[0]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probability that each text reports a possible breach of UN sanctions."""
        if not texts:
            return np.zeros(0)
        return self._calibrate(self.margins(texts))

    def score(
        self, texts: Sequence[str], *, regimes: RegimeBook | None = None, explain: bool = True
    ) -> list[Score]:
        """Score texts; flagged ones get evidence (sentences, terms, regimes), others regimes only."""
        if not texts:
            return []
        margins, features = self._margins(texts)
        probs = self._calibrate(margins)
        word = _word_block(self.tfidf) if features is not None else None
        out: list[Score] = []
        for row, (text, p) in enumerate(zip(texts, probs, strict=True)):
            flagged = bool(p >= self.threshold)
            if explain and flagged:
                if word is not None:
                    pipe, coef = word
                    weights = features[row, : coef.shape[0]]
                    evidence = self._explain_linear(text, pipe, coef, weights, regimes)
                else:
                    evidence = self.explain(text, regimes=regimes)
            else:
                evidence = Evidence(regimes=_active_regimes(text, regimes))
            out.append(Score(score=round(float(p), 6), flagged=flagged, evidence=evidence))
        return out

    def explain(
        self, text: str, *, regimes: RegimeBook | None = None, max_sentences: int = 2
    ) -> Evidence:
        """The sentences and terms that carry the score, and the regimes the text concerns."""
        word = _word_block(self.tfidf)
        if word is not None:
            block, coef = word
            # Only the word block explains (its n-grams are readable): the character block, the
            # dearer one to compute, is not needed here.
            weights = block.transform([text])
            return self._explain_linear(text, block, coef, weights[0], regimes, max_sentences)
        sentences = split_sentences(text)[:60]
        chosen: list[str] = []
        if sentences:
            probs = self.predict_proba(sentences)
            order = np.argsort(-probs)
            chosen = [
                sentences[i]
                for i in order[:max_sentences]
                if probs[i] >= min(0.5, self.threshold) * 0.5
            ]
            chosen = chosen or [sentences[int(order[0])]]
        return Evidence(sentences=tuple(chosen), regimes=_active_regimes(text, regimes))

    def _explain_linear(
        self,
        text: str,
        pipe: Any,
        coef: np.ndarray,
        weights: Any,
        regimes: RegimeBook | None,
        max_sentences: int = 2,
        max_terms: int = 6,
    ) -> Evidence:
        """Evidence from a linear model over hashed word n-grams: each n-gram contributes
        coefficient x its tf-idf weight in this document; a sentence's evidence is the sum over its
        n-grams, the terms are the n-grams with the largest contributions."""
        from sklearn.utils import murmurhash3_32  # here: a quiet cycle never imports scikit-learn

        hasher = pipe.named_steps["hash"]
        analyzer = hasher.build_analyzer()
        row = weights.tocsr() if hasattr(weights, "tocsr") else weights
        weight_of = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
        n = hasher.n_features
        cache: dict[str, float] = {}

        def contribution(gram: str) -> float:
            value = cache.get(gram)
            if value is None:
                column = abs(murmurhash3_32(gram, seed=0)) % n
                value = cache[gram] = weight_of.get(column, 0.0) * float(coef[column])
            return value

        sentences = split_sentences(text)[:60]
        ranked = sorted(
            (
                (sum(contribution(g) for g in set(analyzer(sent))), i)
                for i, sent in enumerate(sentences)
            ),
            reverse=True,
        )
        chosen = [sentences[i] for value, i in ranked[:max_sentences] if value > 0]
        if not chosen and sentences:
            chosen = [sentences[ranked[0][1]]]
        terms: list[str] = []
        for _value, gram in sorted(((v, g) for g, v in cache.items() if v > 0), reverse=True):
            if len(terms) >= max_terms:
                break
            kept = meaningful_terms([gram], None)  # no "said", "is", 했다: they explain nothing
            if kept and not any(kept[0] in t or t in kept[0] for t in terms):
                terms.append(kept[0])
        return Evidence(
            sentences=tuple(chosen), terms=tuple(terms), regimes=_active_regimes(text, regimes)
        )

    # ------------------------------------------------------------------ whole articles (passages)

    @property
    def combiner(self) -> Any:
        return self.estimator.get("combiner") if isinstance(self.estimator, dict) else None

    @property
    def passage_settings(self) -> PassageSettings:
        raw = (self.metadata.get("combiner") or {}).get("passages") or {}
        return PassageSettings(**{k: int(v) for k, v in raw.items()})

    def _sparse_margins(self, segs: Sequence[Segments]) -> tuple[np.ndarray, np.ndarray]:
        pipe, general = self.tfidf, self.estimator.get("general")
        if pipe is None or general is None:
            raise ModelError(f"model {self.version} lacks the sparse bases passages need")
        return sparse_margins(pipe, general, segs)

    def _doc_probs(self, docs: Sequence[Doc]) -> tuple[np.ndarray, list[Segments], list[Margins]]:
        """Calibrated probabilities of whole articles, their segments and passage margins.

        Stage one scores the head and every passage with the sparse base and combines them. With an
        embedding head (fusion), items whose stage-one probability falls inside the cascade band
        (chosen on out-of-fold scores, see ``pipeline.training.passages.choose_band``) go on to stage
        two: the head and the best passages are embedded and everything is combined again. Outside
        the band the stage-one probability stands, and nothing is embedded.
        """
        settings = self.passage_settings
        segs = [segment(d, settings) for d in docs]
        domain, general = self._sparse_margins(segs)
        per_doc = split_margins(segs, domain)
        rows = [
            features(m, g, sg)
            for m, g, sg in zip(per_doc, split_margins(segs, general), segs, strict=True)
        ]
        combiner_meta = self.metadata.get("combiner") or {}
        sparse_rows = np.vstack(rows)[:, self._columns(combiner_meta)]
        head = self.head
        if head is None:
            return self._calibrate(self.combiner.decision_function(sparse_rows)), segs, per_doc
        sparse_cal = combiner_meta.get("calibration_sparse") or {}
        probs = _sigmoid(
            sparse_cal.get("a", 1.0)
            * np.asarray(self.estimator["combiner_sparse"].decision_function(sparse_rows))
            + sparse_cal.get("b", 0.0)
        )
        band = combiner_meta.get("cascade") or {"low": 0.0, "high": 1.0}
        need = np.flatnonzero((probs >= band["low"]) & (probs < band["high"]))
        if len(need):
            if self.embedder is None:
                raise ModelError(
                    f"model {self.version} needs the sentence embedder, which is not loaded"
                )
            groups = [embedded_texts(segs[i], per_doc[i]) for i in need]
            vectors = self.embedder([t for g in groups for t in g])
            margins = np.asarray(head.decision_function(vectors), dtype=float)
            emb_rows, k = [], 0
            for g in groups:
                emb_rows.append(embedding_features(margins[k : k + len(g)]))
                k += len(g)
            full = np.c_[sparse_rows[need], np.vstack(emb_rows)]
            probs[need] = self._calibrate(self.combiner.decision_function(full))
        return probs, segs, per_doc

    def _columns(self, combiner_meta: dict[str, Any]) -> list[int]:
        """The columns of :data:`FEATURE_NAMES` this model's combiner was trained on, in its order
        (a model trained before a feature was added records the shorter list)."""
        names = [
            n for n in combiner_meta.get("features") or FEATURE_NAMES if n not in EMBEDDING_FEATURES
        ]
        unknown = [n for n in names if n not in FEATURE_NAMES]
        if unknown:
            raise ModelError(
                f"model {self.version}: combiner features {unknown} are unknown to this version of "
                f"the code (known: {list(FEATURE_NAMES)})"
            )
        return [FEATURE_NAMES.index(n) for n in names]

    def predict_docs(self, docs: Sequence[Doc]) -> np.ndarray:
        """Calibrated probability per article (title, summary, body)."""
        if not docs:
            return np.zeros(0)
        if self.combiner is None:
            return self.predict_proba([article_text(d.title, d.summary, d.body) for d in docs])
        return self._doc_probs(docs)[0]

    def score_docs(
        self, docs: Sequence[Doc], *, regimes: RegimeBook | None = None, explain: bool = True
    ) -> list[Score]:
        """Score whole articles; flagged ones quote the passages that carried the score."""
        if not docs:
            return []
        if self.combiner is None:
            texts = [article_text(d.title, d.summary, d.body) for d in docs]
            legacy = self.score(texts, regimes=regimes, explain=explain)
            return [
                Score(s.score, s.flagged, s.evidence, "low" if _thin_text(t) else "normal")
                for s, t in zip(legacy, texts, strict=True)
            ]
        probs, segs, per_doc = self._doc_probs(docs)
        flagged = [bool(p >= self.threshold) for p in probs]
        # The passages each flagged article is quoted by, and their terms: one word-block transform
        # for the whole batch (per item, the transform's fixed cost dominated the evidence).
        chosen = {
            i: self._evidence_passages(segs[i], per_doc[i].passages)
            for i in range(len(docs))
            if explain and flagged[i]
        }
        terms = self._batch_terms({i: "\n".join(c) for i, c in chosen.items()})
        out: list[Score] = []
        for i, (sg, p) in enumerate(zip(segs, probs, strict=True)):
            full = " ".join(sg.units)
            evidence = Evidence(
                sentences=tuple(chosen.get(i, ())),
                terms=terms.get(i, ()),
                regimes=_active_regimes(full, regimes),
            )
            out.append(
                Score(
                    score=round(float(p), 6),
                    flagged=flagged[i],
                    evidence=evidence,
                    confidence="low" if thin(sg) else "normal",
                )
            )
        return out

    @staticmethod
    def _evidence_passages(sg: Segments, passage_margins: np.ndarray) -> list[str]:
        """The passages that carried the score: best first, never two that share a sentence, at
        most ``EVIDENCE_PASSAGES``; the head when no passage pushed the score up."""
        order = np.argsort(-passage_margins) if len(passage_margins) else np.zeros(0, dtype=int)
        spans: list[tuple[int, int]] = []
        for i in order:
            if len(spans) == EVIDENCE_PASSAGES or (spans and passage_margins[i] <= 0):
                break
            start, end = sg.passage_spans[int(i)]
            if all(end <= a or start >= b for a, b in spans):
                spans.append((start, end))
        return [sg.join(span) for span in spans] or [sg.head]

    def _batch_terms(self, texts: Mapping[int, str]) -> dict[int, tuple[str, ...]]:
        """The terms that pushed each text's score (as :meth:`explain` gives them), computed with
        one transform over all texts."""
        word = _word_block(self.tfidf)
        if not texts:
            return {}
        if word is None:
            return {i: self.explain(t, regimes=None).terms for i, t in texts.items()}
        block, coef = word
        keys = list(texts)
        weights = block.transform([texts[k] for k in keys])
        return {
            k: self._explain_linear(texts[k], block, coef, weights[n], None).terms
            for n, k in enumerate(keys)
        }

    def top_terms(self, text: str, k: int = 6) -> list[str]:
        """Word n-grams with the largest positive contribution to the margin."""
        return list(self.explain(text).terms[:k])


def sparse_features(pipe: Any, segs: Sequence[Segments]) -> Any:
    """TF-IDF features of every span of ``segs`` (head, whole, passages; :func:`flatten` order),
    hashing each unit once and summing counts over spans (see :func:`span_matrix`).

    ``pipe`` is ``Pipeline([("features", FeatureUnion of Pipeline([("hash", HashingVectorizer),
    ("tfidf", TfidfTransformer)])), ("clf", ...)])``, as :mod:`pipeline.training.train` builds it.
    """
    from scipy.sparse import hstack

    from pipeline.classify.hashing import hash_units  # scipy: loaded when first scoring

    units = units_of(segs)
    spans = span_matrix(segs)
    blocks = []
    for _name, block in pipe.named_steps["features"].transformer_list:
        counts = hash_units(block.named_steps["hash"], units)
        blocks.append(block.named_steps["tfidf"].transform(spans @ counts))
    return hstack(blocks, format="csr")


def sparse_margins(
    pipe: Any, general: Any, segs: Sequence[Segments]
) -> tuple[np.ndarray, np.ndarray]:
    """Domain and general base margins of every span of ``segs`` over one feature computation."""
    x = sparse_features(pipe, segs)
    return (
        np.asarray(pipe.named_steps["clf"].decision_function(x), dtype=float),
        np.asarray(general.decision_function(x), dtype=float),
    )


def _thin_text(text: str) -> bool:
    return count_words(text) < THIN_WORDS


def _active_regimes(text: str, regimes: RegimeBook | None, limit: int = 3) -> tuple[str, ...]:
    if regimes is None:
        return ()
    found = [k for k, _ in regimes.detect(text) if (r := regimes.get(k)) is not None and r.active]
    return tuple(found[:limit])


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
