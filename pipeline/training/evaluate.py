"""Evaluation: precision, recall, F1, PR-AUC, a confusion table and per-slice tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from pipeline.classify.passages import THIN_WORDS, count_words

__all__ = [
    "NAMED_SLICES",
    "best_f1_threshold",
    "binary_metrics",
    "evaluate_items",
    "format_report",
    "named_slices",
    "precision_at_recall",
]


def precision_at_recall(labels: np.ndarray, probs: np.ndarray, recall: float = 0.9) -> float:
    """Highest precision among thresholds that keep recall at or above ``recall``."""
    if labels.sum() == 0:
        return float("nan")
    precision, rec, _ = precision_recall_curve(labels, probs)
    ok = rec >= recall
    return float(precision[ok].max()) if ok.any() else 0.0


def best_f1_threshold(
    labels: np.ndarray,
    probs: np.ndarray,
    *,
    min_precision: float = 0.0,
    ordinary: np.ndarray | None = None,
    max_ordinary_per_1000: float | None = None,
) -> tuple[float, float]:
    """The threshold that maximises F1 on these (out-of-fold) predictions, and that F1.

    With ``min_precision``, only thresholds whose precision reaches it are considered (alert fatigue
    costs compliance teams more than a borderline miss). With ``ordinary`` (a mask of the ordinary-news
    items) and ``max_ordinary_per_1000``, only thresholds that flag at most that many of every 1,000
    ordinary items are considered: a real stream is almost all ordinary news, so its false-alarm rate,
    not the corpus mix, decides how many alerts a compliance team reads. If no threshold meets the
    limits, the best-F1 one is used.
    """
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=float)
    precision, recall, thresholds = precision_recall_curve(labels, probs)
    if not len(thresholds):
        return 0.5, 0.0
    f1 = np.where(
        precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0
    )[:-1]
    allowed = precision[:-1] >= min_precision
    if ordinary is not None and max_ordinary_per_1000 is not None and np.any(ordinary):
        scores = np.sort(probs[np.asarray(ordinary, dtype=bool)])
        flagged = len(scores) - np.searchsorted(scores, thresholds, side="left")
        allowed &= flagged * 1000.0 / len(scores) <= max_ordinary_per_1000
    candidates = np.where(allowed, f1, -1.0) if allowed.any() else f1
    best = int(np.argmax(candidates))
    return float(thresholds[best]), float(f1[best])


def binary_metrics(
    labels: Sequence[int], probs: Sequence[float], threshold: float
) -> dict[str, Any]:
    y = np.asarray(labels, dtype=int)
    p = np.asarray(probs, dtype=float)
    pred = p >= threshold
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    tn = int((~pred & (y == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    both = 0 < y.sum() < len(y)
    return {
        "n": len(y),
        "positives": int(y.sum()),
        "precision": round(precision, 4),
        "recall": round(recall, 4) if recall == recall else None,
        "f1": round(f1, 4),
        "pr_auc": round(float(average_precision_score(y, p)), 4) if both else None,
        "roc_auc": round(float(roc_auc_score(y, p)), 4) if both else None,
        "precision_at_recall_0.9": round(precision_at_recall(y, p), 4) if both else None,
        "accuracy": round((tp + tn) / len(y), 4) if len(y) else None,
        # Calibration: the mean squared error of the probabilities (lower is better).
        "brier": round(float(np.mean((p - y) ** 2)), 4) if len(y) else None,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


# Named slices that are not a single field's value (see docs/model-card.md). Each is a predicate
# over a labelled item; "everyday news" also reports false alarms per 1,000 items.
EVERYDAY = "everyday news"
NAMED_SLICES: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "articles": lambda i: i.get("style") == "article",
    "articles, breach only in body": lambda i: (
        i.get("style") == "article" and not i.get("breach_in_head")
    ),
    "short items": lambda i: i.get("style") != "article" and i.get("kind") != "everyday_news",
    "headline only": lambda i: i.get("style") == "title_only" and i.get("kind") != "everyday_news",
    "thin text": lambda i: (
        i.get("kind") != "everyday_news"
        and count_words(" ".join(str(i.get(k) or "") for k in ("title", "summary", "body")))
        < THIN_WORDS
    ),
    "non-English": lambda i: i.get("lang") != "en",
    EVERYDAY: lambda i: i.get("kind") == "everyday_news",
}


def named_slices(
    items: Sequence[Mapping[str, Any]], probs: Sequence[float], threshold: float
) -> dict[str, dict[str, Any]]:
    """Metrics per named slice present in ``items``."""
    out: dict[str, dict[str, Any]] = {}
    for name, member in NAMED_SLICES.items():
        idx = [n for n, item in enumerate(items) if member(item)]
        if not idx:
            continue
        metrics = binary_metrics(
            [int(items[n]["label"]) for n in idx], [probs[n] for n in idx], threshold
        )
        if name == EVERYDAY:
            fp = metrics["confusion"]["fp"]
            metrics["false_alarms_per_1000"] = round(1000 * fp / len(idx), 2)
        out[name] = metrics
    return out


def evaluate_items(
    items: Sequence[dict[str, Any]],
    probs: Sequence[float],
    threshold: float,
    slices: Sequence[str] = ("regime", "lang", "kind", "style", "slice"),
) -> dict[str, Any]:
    """Overall metrics plus one table per slice key present in the items (``"slice"``: the
    :data:`NAMED_SLICES`)."""
    labels = [int(i["label"]) for i in items]
    report: dict[str, Any] = {
        "threshold": threshold,
        "overall": binary_metrics(labels, probs, threshold),
    }
    for key in slices:
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            if key in item:
                groups.setdefault(str(item[key]), []).append(index)
        if not groups:
            continue
        report[f"by_{key}"] = {
            value: binary_metrics([labels[i] for i in idx], [probs[i] for i in idx], threshold)
            for value, idx in sorted(groups.items())
        }
    if "slice" in slices:
        report["by_slice"] = named_slices(items, probs, threshold)
    return report


def format_report(report: dict[str, Any]) -> str:
    """A plain-text rendering of :func:`evaluate_items` for the terminal."""
    o = report["overall"]
    c = o["confusion"]
    lines = [
        f"threshold {report['threshold']:.3f}   items {o['n']}   positives {o['positives']}",
        f"precision {o['precision']:.3f}   recall {o['recall']}   F1 {o['f1']:.3f}   PR-AUC {o['pr_auc']}"
        f"   P@R0.9 {o['precision_at_recall_0.9']}   Brier {o['brier']}",
        "",
        "confusion          predicted+  predicted-",
        f"  actual+          {c['tp']:>10}  {c['fn']:>10}",
        f"  actual-          {c['fp']:>10}  {c['tn']:>10}",
    ]
    for key in (k for k in report if k.startswith("by_")):
        lines += [
            "",
            f"{key[3:]:<22} {'n':>5} {'pos':>5} {'FP':>4} {'FN':>4} {'prec':>6} {'recall':>6} {'F1':>6} {'PR-AUC':>7}",
        ]
        if key == "by_slice" and EVERYDAY in report[key]:
            lines.append(
                f"  (everyday news: {report[key][EVERYDAY]['false_alarms_per_1000']} false alarms "
                "per 1,000 items)"
            )
        for value, m in report[key].items():

            def fmt(x: float | None, width: int, has: bool = True) -> str:
                return f"{'-':>{width}}" if x is None or not has else f"{x:>{width}.3f}"

            has_pos = m["positives"] > 0
            c = m["confusion"]
            lines.append(
                f"  {value[:20]:<20} {m['n']:>5} {m['positives']:>5} {c['fp']:>4} {c['fn']:>4} "
                f"{fmt(m['precision'], 6, c['tp'] + c['fp'] > 0)} {fmt(m['recall'], 6, has_pos)} "
                f"{fmt(m['f1'], 6, has_pos)} {fmt(m['pr_auc'], 7)}"
            )
    return "\n".join(lines)
