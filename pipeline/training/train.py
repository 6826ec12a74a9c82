"""Training and model selection by grouped cross-validation.

Near-duplicate stories of one event never straddle folds (``StratifiedGroupKFold`` on ``event_id``).
Candidates are compared on out-of-fold PR-AUC (then F1); the winner's out-of-fold margins fit its Platt
calibration and choose its threshold (best F1); it is then refit on all training items, scored once on
the frozen test split, and written to the registry as a new version (not promoted unless asked).
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

from pipeline.classify.model import FEATURE_SCHEMA, TextModel, article_text, platt_fit
from pipeline.classify.registry import save_model
from pipeline.training.corpus import data_hash
from pipeline.training.evaluate import best_f1_threshold, evaluate_items

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


def _stack_oof(
    parts: np.ndarray, labels: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Out-of-fold fused margins: for each fold, a stacker fitted on the other folds' OOF margins."""
    fused = np.zeros(len(labels))
    for train_idx, test_idx in splits:
        stacker = LogisticRegression(max_iter=1000).fit(parts[train_idx], labels[train_idx])
        fused[test_idx] = stacker.decision_function(parts[test_idx])
    return fused


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


def _card(meta: dict[str, Any]) -> str:
    cv = meta["cross_validation"]
    rows = "\n".join(
        f"| {name} | {m['pr_auc']} | {m['f1_at_best']} | {m['precision_at_recall_0.9']} |"
        for name, m in cv.items()
    )
    test = meta.get("test_metrics") or {}
    overall = test.get("overall", {})
    return f"""# Model card: {meta["version"]}

**Task.** Flags news items (title, summary, start of body) that report a possible breach or evasion of
UN Security Council sanctions. Output: a calibrated probability; flagged when >= {meta["threshold"]:.3f}.

**Model.** `{meta["candidate"]}`: {meta["description"]}. Platt-calibrated on grouped out-of-fold margins.
scikit-learn {meta["sklearn_version"]}; feature schema `{FEATURE_SCHEMA}`.

**Training data.** {meta["training_data"]["n_items"]} items ({meta["training_data"]["n_positive"]} positive)
from `data/corpus/` (our own writing about real events; see docs/labelling.md), sha256
`{meta["training_data"]["sha256"][:16]}…`. Items whose event is in the frozen test split are excluded.

**Selection (5-fold cross-validation grouped by event).**

| candidate | PR-AUC | best F1 | precision at recall 0.9 |
|---|---|---|---|
{rows}

**Frozen test split** ({overall.get("n", 0)} items, never trained on or used for the threshold):
precision {overall.get("precision")}, recall {overall.get("recall")}, F1 {overall.get("f1")},
PR-AUC {overall.get("pr_auc")}. Per-slice tables: `sanctions-watch evaluate`.

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
    embed_workers: int = 2,
) -> TrainResult:
    """Compare candidates by grouped CV, calibrate and threshold the best, refit, save a new version."""
    names = list(candidates or CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidates {unknown}; known: {sorted(CANDIDATES)}")
    texts = [item_text(i) for i in train]
    labels = np.asarray([int(i["label"]) for i in train])
    per_class = np.bincount(labels, minlength=2)
    if per_class.min() < folds:
        raise ValueError(
            f"training needs at least {folds} items of each label, got {per_class.tolist()}"
        )
    splits = grouped_folds(labels, [str(i["event_id"]) for i in train], folds)
    needs_embeddings = any(CANDIDATES[n].head is not None for n in names)
    embedder = None
    vectors = test_vectors = None
    if needs_embeddings:
        from pipeline.classify.embeddings import Embedder, embedder_version

        embedder = Embedder(workers=embed_workers)
        vectors = embedder(texts)
        if test:
            test_vectors = embedder([item_text(i) for i in test])
        embedder.close()

    oof_parts: dict[str, np.ndarray] = {}  # cache: one CV per distinct part

    def part_oof(key: str, build: Callable[[], Any], inputs: Any) -> np.ndarray:
        if key not in oof_parts:
            oof_parts[key] = cross_validate(build, inputs, labels, splits)
        return oof_parts[key]

    comparison: dict[str, Any] = {}
    oof: dict[str, np.ndarray] = {}
    for name in names:
        cand = CANDIDATES[name]
        if cand.kind == "tfidf":
            margins = part_oof(f"tfidf:{name}", cand.tfidf, texts)  # type: ignore[arg-type]
        elif cand.kind == "embedding":
            margins = part_oof("head", cand.head, vectors)  # type: ignore[arg-type]
        else:
            stacked = np.c_[
                part_oof("tfidf:tfidf-word-char-lr", cand.tfidf, texts),  # type: ignore[arg-type]
                part_oof("head", cand.head, vectors),  # type: ignore[arg-type]
            ]
            margins = _stack_oof(stacked, labels, splits)
        cal = platt_fit(margins, labels)
        probs = 1 / (1 + np.exp(-(cal["a"] * margins + cal["b"])))
        thr, f1 = best_f1_threshold(labels, probs)
        report = evaluate_items(train, probs.tolist(), thr, slices=("regime", "lang", "kind"))
        m = report["overall"]
        comparison[name] = {
            "kind": cand.kind,
            "pr_auc": m["pr_auc"],
            "f1_at_best": round(f1, 4),
            "threshold": round(thr, 4),
            "precision_at_recall_0.9": m["precision_at_recall_0.9"],
            "roc_auc": m["roc_auc"],
            "by_lang": {
                k: {"f1": v["f1"], "pr_auc": v["pr_auc"], "n": v["n"]}
                for k, v in report["by_lang"].items()
            },
            "by_regime": {
                k: {"f1": v["f1"], "pr_auc": v["pr_auc"], "n": v["n"]}
                for k, v in report["by_regime"].items()
            },
            "by_kind": {
                k: {"recall": v["recall"], "fp": v["confusion"]["fp"], "n": v["n"]}
                for k, v in report["by_kind"].items()
            },
        }
        oof[name] = margins
        log.info("candidate %s: PR-AUC %s, F1 %.4f", name, m["pr_auc"], f1)
    chosen = max(names, key=lambda n: (comparison[n]["pr_auc"], comparison[n]["f1_at_best"]))
    cand = CANDIDATES[chosen]
    calibration = platt_fit(oof[chosen], labels)
    threshold = float(comparison[chosen]["threshold"])
    meta: dict[str, Any] = {"kind": cand.kind}
    parts: dict[str, Any] = {}
    if cand.tfidf is not None:
        parts["tfidf"] = cand.tfidf()
        parts["tfidf"].fit(texts, labels)
    if cand.head is not None:
        parts["embedding_head"] = cand.head()
        parts["embedding_head"].fit(vectors, labels)
        meta["embedder"] = embedder_version()
    if cand.kind == "fusion":
        stacked = np.c_[oof_parts["tfidf:tfidf-word-char-lr"], oof_parts["head"]]
        stacker = LogisticRegression(max_iter=1000).fit(stacked, labels)
        meta["fusion"] = {
            "w_tfidf": float(stacker.coef_[0][0]),
            "w_embedding": float(stacker.coef_[0][1]),
            "bias": float(stacker.intercept_[0]),
        }
    estimator: Any = parts["tfidf"] if cand.kind == "tfidf" else parts
    model = TextModel(estimator, "unsaved", threshold, calibration, meta)
    test_report = None
    if test:
        test_texts = [item_text(i) for i in test]
        if test_vectors is not None:
            cached = dict(zip(test_texts, test_vectors, strict=True))
            model.embedder = lambda batch: np.vstack([cached[t] for t in batch])
        probs_test = model.predict_proba(test_texts).tolist()
        test_report = evaluate_items(test, probs_test, threshold)
    dhash = data_hash(train)
    version = f"{now:%Y%m%d-%H%M%S}-{chosen.replace('-', '')[:12]}-{dhash[:6]}"
    meta.update(
        {
            "created_at": now.isoformat(),
            "candidate": chosen,
            "description": cand.description,
            "threshold": threshold,
            "calibration": calibration,
            "cross_validation": comparison,
            "folds": folds,
            "test_metrics": test_report,
            "training_data": {
                "sha256": dhash,
                "n_items": len(train),
                "n_positive": int(labels.sum()),
                "test_sha256": data_hash(test) if test else None,
            },
            "git_commit": _git_commit(repo_root) if repo_root else None,
            "python": platform.python_version(),
        }
    )
    card = _card({**meta, "version": version, "sklearn_version": _sklearn_version()})
    path = save_model(model_dir, version, estimator, meta, card)
    return TrainResult(version, path, chosen, comparison, threshold, test_report)


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__
