"""Training and model selection by grouped cross-validation.

Near-duplicate stories of one event never straddle folds (``StratifiedGroupKFold`` on ``event_id``).
Candidates are compared on out-of-fold PR-AUC (then F1); the winner's out-of-fold margins fit its Platt
calibration and choose its threshold (the best F1 among thresholds that flag at most
``max_everyday_per_1000`` of every 1,000 ordinary-news items); it is then refit on all training items,
scored once on the frozen test split, and written to the registry as a new version (not promoted
unless asked).
"""

from __future__ import annotations

import logging
import platform
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import FeatureUnion, Pipeline

from pipeline.classify.model import FEATURE_SCHEMA, TextModel, article_text, doc_of, platt_fit
from pipeline.classify.passages import EMBEDDING_FEATURES, FEATURE_NAMES, PassageSettings
from pipeline.classify.registry import save_model
from pipeline.training.corpus import data_hash
from pipeline.training.evaluate import best_f1_threshold, binary_metrics, evaluate_items
from pipeline.training.passages import (
    EVERYDAY_KIND,
    OOF,
    base_examples,
    choose_band,
    fit_bases,
    make_combiner,
    oof_combined,
    oof_embedding_rows,
    oof_features,
    segments_of,
    with_breach_passages,
)

__all__ = ["CANDIDATES", "TrainResult", "cross_validate", "item_text", "train_model"]

log = logging.getLogger(__name__)


def item_text(item: dict[str, Any]) -> str:
    return article_text(item.get("title"), item.get("summary"), item.get("body"))


# Hashed n-grams + TF-IDF weighting: no vocabulary to store (model files stay small and load fast with
# skops), and the same token always maps to the same column, so explanations can hash a document's
# n-grams back to their coefficients (see classifier.top_terms).
WORD_FEATURES = 2**20
CHAR_FEATURES = 2**20


def _word() -> Pipeline:
    return Pipeline(
        [
            (
                "hash",
                HashingVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    n_features=WORD_FEATURES,
                    alternate_sign=False,
                    norm=None,
                    dtype=np.float32,
                ),
            ),
            ("tfidf", TfidfTransformer(sublinear_tf=True)),
        ]
    )


def _char() -> Pipeline:
    return Pipeline(
        [
            (
                "hash",
                HashingVectorizer(
                    analyzer="char_wb",
                    ngram_range=(3, 5),
                    n_features=CHAR_FEATURES,
                    alternate_sign=False,
                    norm=None,
                    dtype=np.float32,
                ),
            ),
            ("tfidf", TfidfTransformer(sublinear_tf=True)),
        ]
    )


def _lr(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, class_weight="balanced", max_iter=3000, solver="liblinear")


def _pipeline(blocks: list[tuple[str, Any]], c: float) -> Pipeline:
    return Pipeline([("features", FeatureUnion(blocks)), ("clf", _lr(c))])


def _head() -> LogisticRegression:
    return LogisticRegression(C=3.0, class_weight="balanced", max_iter=5000)


@dataclass(frozen=True, slots=True)
class Candidate:
    kind: str  # tfidf | embedding | fusion
    description: str
    tfidf: Callable[[], Any] | None = None  # text -> margin estimator
    head: Callable[[], Any] | None = None  # embedding -> margin estimator


_WORD_CHAR = lambda: _pipeline([("word", _word()), ("char", _char())], 8.0)  # noqa: E731

CANDIDATES: dict[str, Candidate] = {
    "tfidf-word-lr": Candidate(
        "tfidf",
        "TF-IDF word 1-2 grams, logistic regression",
        tfidf=lambda: _pipeline([("word", _word())], 8.0),
    ),
    "tfidf-char-lr": Candidate(
        "tfidf",
        "TF-IDF char_wb 3-5 grams, logistic regression",
        tfidf=lambda: _pipeline([("char", _char())], 8.0),
    ),
    "tfidf-word-char-lr": Candidate(
        "tfidf", "TF-IDF word 1-2 + char_wb 3-5 grams, logistic regression", tfidf=_WORD_CHAR
    ),
    "embedding-lr": Candidate(
        "embedding", "multilingual sentence embeddings (USE-m v3), logistic regression", head=_head
    ),
    "fusion-tfidf-embedding": Candidate(
        "fusion",
        "TF-IDF word+char logistic regression and multilingual-embedding logistic regression, "
        "margins stacked by a logistic regression fitted on grouped out-of-fold margins",
        tfidf=_WORD_CHAR,
        head=_head,
    ),
}


# The threshold is the best-F1 one among those whose out-of-fold precision reaches this (0: plain
# best F1). Raising it trades recall for precision; docs/model-card.md shows the operating points.
MIN_PRECISION = 0.0

# ... and that flag at most this many of every 1,000 ordinary-news training items out of fold (the
# `everyday_news` kind). The corpus is a third ordinary news, a real stream almost all of it: at the
# plain best-F1 threshold one cycle of 1,000 feeds would mail dozens of false alarms. None: no limit.
MAX_EVERYDAY_PER_1000 = 5.0

# The bases the whole-article model can score per passage (sparse, fast enough for every passage).
PASSAGE_CANDIDATES = ("tfidf-word-lr", "tfidf-word-char-lr", "fusion-tfidf-embedding")


def grouped_folds(
    labels: np.ndarray, groups: Sequence[str], folds: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified K-fold splits that never put two items of one event on both sides."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels, groups))


def cross_validate(
    build: Callable[[], Any],
    inputs: Any,
    labels: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Out-of-fold decision margins of ``build()`` over ``inputs`` (texts or embedding rows)."""
    margins = np.zeros(len(labels))
    as_texts = isinstance(inputs, list)
    for train_idx, test_idx in splits:
        est = build()
        x_train = [inputs[i] for i in train_idx] if as_texts else inputs[train_idx]
        x_test = [inputs[i] for i in test_idx] if as_texts else inputs[test_idx]
        est.fit(x_train, labels[train_idx])
        margins[test_idx] = est.decision_function(x_test)
    return margins


@dataclass(frozen=True, slots=True)
class TrainResult:
    version: str
    path: Path
    chosen: str
    comparison: dict[str, Any]
    threshold: float
    test_report: dict[str, Any] | None


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["git", "-C", str(root), "rev-parse", "HEAD"],  # noqa: S607 - git from PATH is intended
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _operating_text(meta: dict[str, Any]) -> str:
    limit = (meta.get("operating_point") or {}).get("max_everyday_per_1000")
    if limit is None:
        return "the best out-of-fold F1"
    return (
        f"the best out-of-fold F1 among thresholds flagging at most {limit:g} of every 1,000 "
        "ordinary-news training items"
    )


def _card(meta: dict[str, Any]) -> str:
    cv = meta["cross_validation"]
    rows = "\n".join(
        f"| {name} | {m['pr_auc']} | {m['f1_at_best']} | {m['precision_at_recall_0.9']} |"
        for name, m in cv.items()
    )
    test = meta.get("test_metrics") or {}
    overall = test.get("overall", {})
    slices = "\n".join(
        f"| {name} | {m['n']} | {m['precision']} | {m['recall']} | {m['f1']} | "
        f"{m.get('false_alarms_per_1000', '')} |"
        for name, m in (test.get("by_slice") or {}).items()
    )
    comb = meta.get("combiner") or {}
    cascade = comb.get("cascade")
    cascade_text = (
        f" Stage two (embeddings) runs only where the stage-one probability is in "
        f"[{cascade['low']}, {cascade['high']}) (out-of-fold share of items: "
        f"{cv[meta['candidate']].get('second_stage_share')})."
        if cascade
        else ""
    )
    return f"""# Model card: {meta["version"]}

**Task.** Flags news items and whole articles that report a possible breach or evasion of UN Security
Council sanctions. Output: a calibrated probability; flagged when >= {meta["threshold"]:.3f}; a
`confidence` of "low" when the text is too thin to decide (a headline or a fragment).

**Model.** `{meta["candidate"]}`: {meta["description"]}. An article is read as its head (title and
summary) and passages (windows of {comb.get("passages", {}).get("window")} sentences over the body,
at most {comb.get("passages", {}).get("max_passages")}); base margins of each feed the combiner
(features: {", ".join(comb.get("features", []))}).{cascade_text} Platt-calibrated on grouped
out-of-fold margins. Operating point: {_operating_text(meta)}. scikit-learn {meta["sklearn_version"]};
feature schema `{FEATURE_SCHEMA}`.

**Training data.** {meta["training_data"]["n_items"]} items ({meta["training_data"]["n_positive"]} positive)
from `data/corpus/` (our own writing about real events; see docs/labelling.md), sha256
`{meta["training_data"]["sha256"][:16]}…`. Items whose event is in the frozen test split are excluded.

**Selection (5-fold cross-validation grouped by event).**

| candidate | PR-AUC | F1 at the operating point | precision at recall 0.9 |
|---|---|---|---|
{rows}

**Frozen test split** ({overall.get("n", 0)} items, never trained on or used for the threshold):
precision {overall.get("precision")}, recall {overall.get("recall")}, F1 {overall.get("f1")},
PR-AUC {overall.get("pr_auc")}.

| slice | n | precision | recall | F1 | false alarms per 1,000 |
|---|---|---|---|---|---|
{slices}

**Limits.** Trained on synthetic items written about real events; real feeds differ in length, noise and
topic mix. Weak where a breach is described only through context the text does not carry. Languages
other than English are a minority of the data. A flag is a lead for a human analyst, never a finding.
"""


def train_model(
    train: Sequence[dict[str, Any]],
    *,
    model_dir: Path,
    now: datetime,
    test: Sequence[dict[str, Any]] | None = None,
    candidates: Sequence[str] | None = None,
    folds: int = 5,
    repo_root: Path | None = None,
    passages: PassageSettings | None = None,
    embed_workers: int = 2,
    max_everyday_per_1000: float | None = MAX_EVERYDAY_PER_1000,
) -> TrainResult:
    """Compare base candidates by grouped CV of the whole-article model, calibrate and threshold the
    best, refit, save a new version (see :mod:`pipeline.training.passages`)."""
    settings = passages or PassageSettings()
    names = list(candidates or PASSAGE_CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidates {unknown}; known: {sorted(CANDIDATES)}")
    dense = [n for n in names if CANDIDATES[n].tfidf is None]
    if dense:
        raise ValueError(
            f"candidates {dense} have no sparse base, which the whole-article model needs for "
            f"every passage; choose from {list(PASSAGE_CANDIDATES)}"
        )
    labels = np.asarray([int(i["label"]) for i in train])
    per_class = np.bincount(labels, minlength=2)
    if per_class.min() < folds:
        raise ValueError(
            f"training needs at least {folds} items of each label, got {per_class.tolist()}"
        )
    splits = grouped_folds(labels, [str(i["event_id"]) for i in train], folds)
    everyday = np.asarray([i.get("kind") == EVERYDAY_KIND for i in train])

    def operating_point(probs: np.ndarray) -> tuple[float, float]:
        return best_f1_threshold(
            labels,
            probs,
            min_precision=MIN_PRECISION,
            ordinary=everyday,
            max_ordinary_per_1000=max_everyday_per_1000,
        )

    segs = segments_of(train, settings)
    # The threshold is chosen on every item, ordinary news included: a real stream is mostly ordinary
    # news, and its false alarms at a low threshold are what compliance teams would pay for.
    labelled = base_examples(train, settings)
    comparison: dict[str, Any] = {}
    states: dict[str, dict[str, Any]] = {}
    sparse_oof: dict[int, tuple[Any, OOF]] = {}  # one out-of-fold pass per distinct sparse base
    embedder: Any = None
    vectors_of: dict[str, np.ndarray] = {}

    def embed(texts: Sequence[str]) -> np.ndarray:
        nonlocal embedder
        missing = list(dict.fromkeys(t for t in texts if t not in vectors_of))
        if missing:
            if embedder is None:
                from pipeline.classify.embeddings import Embedder

                embedder = Embedder(workers=embed_workers)
            for text, vec in zip(missing, embedder(missing), strict=True):
                vectors_of[text] = vec
        return np.vstack([vectors_of[t] for t in texts]) if texts else np.zeros((0, 512))

    for name in names:
        cand = CANDIDATES[name]
        key = id(cand.tfidf)
        if key not in sparse_oof:
            # Two passes: the first finds the breach passages of positive articles (out of fold),
            # the second learns from them too (see pipeline.training.passages).
            first = oof_features(cand.tfidf, train, segs, labelled, splits)  # type: ignore[arg-type]
            base = with_breach_passages(labelled, train, first.top_texts)
            sparse_oof[key] = (base, oof_features(cand.tfidf, train, segs, base, splits))  # type: ignore[arg-type]
        base, oof = sparse_oof[key]
        m_sparse = oof_combined(oof.rows, labels, splits)
        cal_sparse = platt_fit(m_sparse, labels)
        p_sparse = _platt(cal_sparse, m_sparse)
        state: dict[str, Any] = {"oof": oof, "base": base, "cal_sparse": cal_sparse}
        if cand.head is None:
            probs, calibration = p_sparse, cal_sparse
            thr, f1 = operating_point(probs)
        else:
            emb_rows = oof_embedding_rows(cand.head, embed, base, oof.top_texts, splits)
            full_rows = np.c_[oof.rows, emb_rows]
            m_full = oof_combined(full_rows, labels, splits)
            calibration = platt_fit(m_full, labels)
            p_full = _platt(calibration, m_full)
            thr, _ = operating_point(p_full)
            low, high = choose_band(p_sparse, p_full, thr)
            in_band = (p_sparse >= low) & (p_sparse < high)
            probs = np.where(in_band, p_full, p_sparse)
            f1 = float(binary_metrics(labels.tolist(), probs.tolist(), thr)["f1"])
            state.update(full_rows=full_rows, cascade={"low": low, "high": high},
                         second_stage_share=round(float(in_band.mean()), 4))  # fmt: skip
        state.update(calibration=calibration, threshold=thr)
        report = evaluate_items(
            train, probs.tolist(), thr, slices=("regime", "lang", "kind", "style")
        )
        m = report["overall"]
        comparison[name] = {
            "kind": cand.kind,
            "pr_auc": m["pr_auc"],
            "f1_at_best": round(f1, 4),
            "threshold": round(thr, 4),
            "everyday_false_alarms_per_1000": (
                round(float((probs[everyday] >= thr).mean()) * 1000, 1) if everyday.any() else None
            ),
            "precision_at_recall_0.9": m["precision_at_recall_0.9"],
            "roc_auc": m["roc_auc"],
            **({"second_stage_share": state["second_stage_share"]} if cand.head else {}),
            **{
                f"by_{table}": {
                    k: {"f1": v["f1"], "pr_auc": v["pr_auc"], "n": v["n"]}
                    for k, v in report[f"by_{table}"].items()
                }
                for table in ("lang", "regime", "style")
            },
            "by_kind": {
                k: {"recall": v["recall"], "fp": v["confusion"]["fp"], "n": v["n"]}
                for k, v in report["by_kind"].items()
            },
        }
        states[name] = state
        log.info("candidate %s: PR-AUC %s, F1 %.4f", name, m["pr_auc"], f1)
    chosen = max(names, key=lambda n: (comparison[n]["pr_auc"], comparison[n]["f1_at_best"]))
    cand, state = CANDIDATES[chosen], states[chosen]
    base = state["base"]
    calibration = state["calibration"]
    threshold = float(state["threshold"])
    bases = fit_bases(cand.tfidf, base, np.ones(len(base.texts), dtype=bool))  # type: ignore[arg-type]
    sparse_combiner = make_combiner().fit(state["oof"].rows, labels)
    estimator: dict[str, Any] = {
        "tfidf": bases.pipe,
        "general": bases.general,
        "combiner": sparse_combiner,
    }
    combiner_meta: dict[str, Any] = {
        "features": list(FEATURE_NAMES),
        "passages": settings.as_dict(),
    }
    meta: dict[str, Any] = {"kind": cand.kind, "combiner": combiner_meta}
    if cand.head is not None:
        from pipeline.classify.embeddings import embedder_version

        domain_texts = [t for t, d in zip(base.texts, base.domain, strict=True) if d]
        estimator["embedding_head"] = cand.head().fit(embed(domain_texts), base.labels[base.domain])
        estimator["combiner_sparse"] = sparse_combiner
        estimator["combiner"] = make_combiner().fit(state["full_rows"], labels)
        combiner_meta.update(
            features=[*FEATURE_NAMES, *EMBEDDING_FEATURES],
            cascade=state["cascade"],
            calibration_sparse=state["cal_sparse"],
        )
        meta["embedder"] = embedder_version()
    combiner_meta["coef"] = [round(float(c), 4) for c in estimator["combiner"].coef_[0]]
    model = TextModel(estimator, "unsaved", threshold, calibration, meta)
    if cand.head is not None:
        model.embedder = embed
    test_report = None
    if test:
        probs_test = model.predict_docs([doc_of(i) for i in test]).tolist()
        test_report = evaluate_items(test, probs_test, threshold)
    if embedder is not None:
        embedder.close()
    dhash = data_hash(train)
    version = f"{now:%Y%m%d-%H%M%S}-passages-{chosen.replace('-', '')[:12]}-{dhash[:6]}"
    meta.update(
        {
            "created_at": now.isoformat(),
            "candidate": chosen,
            "description": f"whole-article model: {cand.description} over the head and passages, "
            "combined by a logistic regression fitted on grouped out-of-fold base margins",
            "threshold": threshold,
            "operating_point": {
                "rule": "the best out-of-fold F1 among thresholds with out-of-fold precision "
                "at least min_precision and at most max_everyday_per_1000 false alarms per 1,000 "
                "ordinary-news items",
                "min_precision": MIN_PRECISION,
                "max_everyday_per_1000": max_everyday_per_1000,
                "everyday_items": int(everyday.sum()),
            },
            "calibration": calibration,
            "cross_validation": comparison,
            "folds": folds,
            "test_metrics": test_report,
            "training_data": {
                "sha256": dhash,
                "n_items": len(train),
                "n_positive": int(labels.sum()),
                "n_base_examples": len(base.texts),
                "test_sha256": data_hash(test) if test else None,
            },
            "git_commit": _git_commit(repo_root) if repo_root else None,
            "python": platform.python_version(),
        }
    )
    card = _card({**meta, "version": version, "sklearn_version": _sklearn_version()})
    path = save_model(model_dir, version, estimator, meta, card)
    return TrainResult(version, path, chosen, comparison, threshold, test_report)


def _platt(cal: dict[str, float], margins: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-(cal["a"] * margins + cal["b"]))), dtype=float)


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)
