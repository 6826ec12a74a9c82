"""Training and evaluating the breach-kind tagger (:mod:`pipeline.classify.kinds`), like the main model.

* Data: the positives of the corpus that carry ``breach_kinds`` (docs/labelling.md); positives
  without them are skipped and counted; items whose event is in the frozen split are never trained on
  (:func:`~pipeline.training.corpus.training_items`).
* Features: the main model's hashed TF-IDF word 1-2 + char_wb 3-5 grams (the feature union of the
  ``tfidf-word-char-lr`` candidate of :mod:`pipeline.training.train`), fitted once per fold.
* One-vs-rest: one balanced logistic regression per kind over those features.
* Grouped 5-fold cross-validation by ``event_id`` (stratified on each item's rarest kind), which
  chooses the regularisation, fits each kind's Platt calibration on out-of-fold margins and its
  threshold by best F1 on the calibrated out-of-fold probabilities, and decides whether an item that
  clears no threshold gets its most probable kind (``fallback: top1``) by out-of-fold macro-F1.
* Refit on every training item, then measured once on each held-out set given (the frozen split and
  the independent hold-out): per-kind precision, recall, F1 and support, micro- and macro-F1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from pipeline.classify.kinds import (
    CUED_INPUT,
    CUES_SHA256,
    PLAIN_INPUT,
    PREFIX,
    KindTagger,
    save_tagger,
    with_cues,
)
from pipeline.classify.model import article_text, platt_fit
from pipeline.knowledge.breaches import BREACH_KINDS
from pipeline.training.evaluate import best_f1_threshold
from pipeline.training.train import CANDIDATES, grouped_folds

__all__ = [
    "C_GRID",
    "FEATURES_FROM",
    "TaggerResult",
    "evaluate_tagger",
    "format_tagger_report",
    "kind_items",
    "kinds_hash",
    "train_tagger",
]

log = logging.getLogger(__name__)

FEATURES_FROM = "tfidf-word-char-lr"  # the main-model candidate whose feature union the tagger uses
C_GRID = (8.0, 32.0)
MIN_POSITIVES = 5  # a kind with fewer training items than this is not trained (and said so)


def kind_items(items: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """The labelled positives (label 1 with a ``breach_kinds`` list), and how many positives lacked it."""
    out, skipped = [], 0
    for item in items:
        if item.get("label") != 1:
            continue
        kinds = item.get("breach_kinds")
        if isinstance(kinds, list) and kinds and all(k in BREACH_KINDS for k in kinds):
            out.append(item)
        else:
            skipped += 1
    return out, skipped


def kinds_hash(items: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 over the text and ``breach_kinds`` of the items, sorted by id."""
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: str(i.get("id"))):
        keep = {k: item.get(k) for k in ("id", "title", "summary", "body", "breach_kinds")}
        digest.update(json.dumps(keep, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def _text(item: Mapping[str, Any]) -> str:
    return article_text(item.get("title"), item.get("summary"), item.get("body"))


def _features() -> Any:
    """The word + char feature union of the main model's ``tfidf-word-char-lr`` candidate."""
    return CANDIDATES[FEATURES_FROM].tfidf().named_steps["features"]  # type: ignore[misc]


def _lr(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, class_weight="balanced", max_iter=3000, solver="liblinear")


def _matrix(items: Sequence[Mapping[str, Any]], kinds: Sequence[str]) -> np.ndarray:
    return np.asarray(
        [[int(k in item["breach_kinds"]) for k in kinds] for item in items], dtype=int
    )


def _strata(items: Sequence[Mapping[str, Any]], counts: Counter[str], folds: int) -> np.ndarray:
    """Each item's rarest kind, for stratified folds; strata smaller than ``folds`` are merged."""
    rarest = [min(i["breach_kinds"], key=lambda k: (counts[k], k)) for i in items]
    sizes = Counter(rarest)
    return np.asarray([BREACH_KINDS.index(k) if sizes[k] >= folds else -1 for k in rarest])


def _git_commit(root: Path | None) -> str | None:
    if root is None:
        return None
    import subprocess

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


def _oof_margins(
    texts: list[str],
    y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    c_grid: Sequence[float],
) -> dict[float, np.ndarray]:
    """Out-of-fold margins of every kind for every C (features fitted once per fold, on its
    training items only)."""
    margins = {c: np.zeros(y.shape, dtype=float) for c in c_grid}
    for train_idx, test_idx in splits:
        feats = _features()
        x_train = feats.fit_transform([texts[i] for i in train_idx]).tocsr()
        used = np.unique(x_train.indices)  # the hashed columns these items use (about 1 in 20)
        x_train = x_train[:, used]
        x_test = feats.transform([texts[i] for i in test_idx]).tocsr()[:, used]
        for c in c_grid:
            for j in range(y.shape[1]):
                clf = _lr(c).fit(x_train, y[train_idx, j])
                margins[c][test_idx, j] = clf.decision_function(x_test)
    return margins


def _platt(cal: Mapping[str, float], margins: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-np.clip(cal["a"] * margins + cal["b"], -50, 50))))


def _scores(y: np.ndarray, pred: np.ndarray, kinds: Sequence[str]) -> dict[str, Any]:
    per_kind: dict[str, dict[str, Any]] = {}
    for j, kind in enumerate(kinds):
        tp = int((pred[:, j] & (y[:, j] == 1)).sum())
        fp = int((pred[:, j] & (y[:, j] == 0)).sum())
        fn = int((~pred[:, j] & (y[:, j] == 1)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        per_kind[kind] = {
            "support": int(y[:, j].sum()),
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "tp": tp,
            "fp": fp,
            "fn": fn,
        }
    present = [m for m in per_kind.values() if m["support"]]
    tp = sum(m["tp"] for m in per_kind.values())
    fp = sum(m["fp"] for m in per_kind.values())
    fn = sum(m["fn"] for m in per_kind.values())
    micro_p = tp / (tp + fp) if tp + fp else 0.0
    micro_r = tp / (tp + fn) if tp + fn else 0.0
    return {
        "n": int(y.shape[0]),
        "macro_f1": round(float(np.mean([m["f1"] for m in present])), 4) if present else None,
        "micro_f1": round(2 * micro_p * micro_r / (micro_p + micro_r), 4) if tp else 0.0,
        "exact_match": round(float((pred == (y == 1)).all(axis=1).mean()), 4) if len(y) else None,
        "per_kind": per_kind,
    }


def _decide(probs: np.ndarray, thresholds: np.ndarray, fallback: str) -> np.ndarray:
    pred = probs >= thresholds
    if fallback == "top1":
        empty = ~pred.any(axis=1)
        pred[empty, np.argmax(probs[empty], axis=1)] = True
    return pred


def evaluate_tagger(tagger: KindTagger, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-kind precision, recall, F1 and support, micro- and macro-F1 (over the kinds present in
    ``items``) and the exact-match rate of ``tagger`` on labelled positives."""
    labelled, skipped = kind_items(items)
    tags = tagger.tag([_text(i) for i in labelled])
    y = _matrix(labelled, tagger.kinds)
    pred = np.asarray([[k in t.kinds for k in tagger.kinds] for t in tags], dtype=bool)
    report = _scores(y, pred.reshape(y.shape), tagger.kinds)
    report["skipped_without_kinds"] = skipped
    report["tagger_version"] = tagger.version
    return report


def format_tagger_report(report: Mapping[str, Any]) -> str:
    lines = [
        f"items {report['n']}   macro-F1 {report['macro_f1']}   micro-F1 {report['micro_f1']}"
        f"   exact match {report['exact_match']}",
        "",
        f"  {'kind':<36} {'support':>7} {'prec':>6} {'recall':>6} {'F1':>6}",
    ]
    for kind, m in report["per_kind"].items():
        lines.append(
            f"  {kind:<36} {m['support']:>7} {m['precision']:>6.3f} {m['recall']:>6.3f} {m['f1']:>6.3f}"
        )
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class TaggerResult:
    version: str
    path: Path
    metadata: dict[str, Any]


def _card(meta: Mapping[str, Any]) -> str:
    rows = []
    tests = meta.get("test_metrics") or {}
    for kind in meta["kinds"]:
        cv = meta["cross_validation"]["per_kind"][kind]
        cells = [f"{cv['precision']:.3f} / {cv['recall']:.3f} / {cv['f1']:.3f} (n={cv['support']})"]
        for name in tests:
            m = tests[name]["per_kind"][kind]
            cells.append(
                f"{m['precision']:.3f} / {m['recall']:.3f} / {m['f1']:.3f} (n={m['support']})"
                if m["support"]
                else "-"
            )
        rows.append(f"| {kind} | {meta['thresholds'][kind]:.3f} | " + " | ".join(cells) + " |")
    heads = " | ".join(["grouped 5-fold CV", *tests])
    macro = ", ".join(f"{n}: {t['macro_f1']}" for n, t in tests.items())
    return f"""# Model card: breach-kind tagger {meta["version"]}

**Task.** For an item the main model flagged, which kinds of breach it alleges (multi-label, the
vocabulary of `pipeline/knowledge/breaches.py`). Input: title, summary and start of body.

**Model.** One balanced logistic regression per kind (C={meta["C"]}) over {meta["features"]}
(input `{meta["input"]}`: the text, followed by a token per kind whose cues of
`pipeline/knowledge/breaches.py` it uses); Platt calibration and a threshold per kind chosen by best F1
on grouped out-of-fold predictions; when no kind clears its threshold: `{meta["fallback"]}`. Chosen
among {len(meta["cross_validation"]["comparison"])} settings by out-of-fold macro-F1.

**Training data.** {meta["training_data"]["n_items"]} labelled positives of `data/corpus/` (breach_kinds,
see docs/labelling.md), sha256 `{meta["training_data"]["sha256"][:16]}…`; events of the frozen split
excluded.

**Per kind (precision / recall / F1, support).** Macro-F1 {macro}.

| kind | threshold | {heads} |
|---|---|{"---|" * (1 + len(tests))}
{chr(10).join(rows)}

**Limits.** Labels were written by one engineer reading each item; the corpus is our own writing about
real events. Rare kinds (luxury goods, other) rest on a handful of items. A tag is a lead, not a
finding.
"""


def train_tagger(
    train: Sequence[Mapping[str, Any]],
    *,
    model_dir: Path,
    now: datetime,
    tests: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    folds: int = 5,
    c_grid: Sequence[float] = C_GRID,
    repo_root: Path | None = None,
) -> TaggerResult:
    """Cross-validate, calibrate, threshold, refit and save a new tagger version (not promoted)."""
    items, skipped = kind_items(train)
    counts: Counter[str] = Counter(k for i in items for k in i["breach_kinds"])
    kinds = [k for k in BREACH_KINDS if counts[k] >= MIN_POSITIVES]
    dropped = {k: counts[k] for k in BREACH_KINDS if k not in kinds}
    if not kinds:
        raise ValueError("no kind has enough labelled training items")
    texts = [_text(i) for i in items]
    # the text alone, or followed by its kind-cue tokens (pipeline.classify.kinds.with_cues)
    variants = {
        "text": (PLAIN_INPUT, texts),
        "text+cues": (CUED_INPUT, [with_cues(t) for t in texts]),
    }
    y = _matrix(items, kinds)
    strata = _strata(items, counts, folds)
    splits = grouped_folds(strata, [str(i["event_id"]) for i in items], folds)
    best: dict[str, Any] | None = None
    comparison: dict[str, Any] = {}
    for variant, (input_kind, rows) in variants.items():
        oof = _oof_margins(rows, y, splits, c_grid)
        for c in c_grid:
            margins = oof[c]
            cal = {k: platt_fit(margins[:, j], y[:, j]) for j, k in enumerate(kinds)}
            probs = np.column_stack([_platt(cal[k], margins[:, j]) for j, k in enumerate(kinds)])
            thr = np.asarray(
                [best_f1_threshold(y[:, j], probs[:, j])[0] for j in range(len(kinds))]
            )
            for fallback in ("none", "top1"):
                scores = _scores(y, _decide(probs, thr, fallback), kinds)
                name = f"features={variant},C={c},fallback={fallback}"
                comparison[name] = scores["macro_f1"]
                log.info("tagger %s: out-of-fold macro-F1 %s", name, scores["macro_f1"])
                if best is None or (scores["macro_f1"] or 0) > (best["scores"]["macro_f1"] or 0):
                    best = {
                        "variant": variant,
                        "input": input_kind,
                        "c": c,
                        "cal": cal,
                        "thr": thr,
                        "fallback": fallback,
                        "scores": scores,
                    }
    assert best is not None
    feats = _features()
    x = feats.fit_transform(variants[best["variant"]][1]).tocsr()
    # Only the hashed columns the training items use can carry weight: the models are fitted on those
    # (fitting is several times faster and the artefact about twenty times smaller).
    columns = np.unique(x.indices).astype(np.int64)
    x = x[:, columns]
    estimator: dict[str, Any] = {"features": feats, "columns": columns}
    for j, kind in enumerate(kinds):
        estimator[PREFIX + kind] = _lr(best["c"]).fit(x, y[:, j])
    thresholds = {k: round(float(t), 6) for k, t in zip(kinds, best["thr"], strict=True)}
    calibration = {k: {n: float(v) for n, v in best["cal"][k].items()} for k in kinds}
    settings = {"fallback": best["fallback"], "input": best["input"]}
    tagger = KindTagger(estimator, "unsaved", tuple(kinds), thresholds, calibration, settings)
    test_metrics = {name: evaluate_tagger(tagger, rows) for name, rows in (tests or {}).items()}
    dhash = kinds_hash(items)
    version = f"{now:%Y%m%d-%H%M%S}-kinds-{dhash[:6]}"
    meta: dict[str, Any] = {
        "created_at": now.isoformat(),
        "kinds": kinds,
        "dropped_kinds": dropped,
        "C": best["c"],
        **settings,
        "cues_sha256": CUES_SHA256 if best["input"] == CUED_INPUT else None,
        "thresholds": thresholds,
        "calibration": calibration,
        "features": f"the word and char TF-IDF blocks of the main-model candidate {FEATURES_FROM}",
        "cross_validation": {**best["scores"], "folds": folds, "comparison": comparison},
        "test_metrics": test_metrics,
        "training_data": {
            "sha256": dhash,
            "n_items": len(items),
            "skipped_without_kinds": skipped,
            "per_kind": {k: counts[k] for k in BREACH_KINDS},
        },
        "git_commit": _git_commit(repo_root),
        "python": platform.python_version(),
    }
    path = save_tagger(model_dir, version, estimator, meta, _card({**meta, "version": version}))
    return TaggerResult(version, path, {**meta, "version": version})
