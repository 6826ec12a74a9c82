"""Retraining: corpus + analysts' labels → a challenger, measured beside the champion, promoted only
through the quality gate.

Guarantees:

* **Training set.** The corpus items (less any whose id or event is in the frozen split) plus the
  analysts' labels (the corpus-format items :func:`pipeline.review.labels.export_labels` gives: one
  per article, its latest label, ``unsure`` left out). Duplicates are dropped by normalised text; an
  analyst's label wins over a corpus item with the same text (it is the later judgement). Articles on
  which analysts disagree are resolved by the latest label, and every such conflict is recorded in
  the report (with every side).
* **Label batch check.** Before training, the champion scores the labelled items; a label it
  strongly contradicts (*relevant* at least ``margin`` below its threshold, *not relevant* at least
  ``margin`` above) counts as a disagreement. When at least ``min_batch`` labels are judged and the
  share of disagreements is above ``max_disagreement``, the batch is **flagged** (a poisoned or
  careless batch looks like this) and the flag is a gate failure: the challenger trained on it is
  refused, with the reason, unless a person forces it.
* **Comparison.** Champion and challenger are both scored on the frozen split (the gate's report)
  and on the recently labelled items (labelled in the last ``recent_days``; the challenger has
  trained on them, which the report says).
* **Promotion** only through :func:`pipeline.training.promotion.promote_through_gate`; a refusal is
  a result (``promoted`` false, ``refused`` naming every failure), not an error. ``dry_run`` trains,
  measures and judges but promotes nothing.
* **Model card.** A "Retraining" section (data, conflicts, batch check, side by side, verdict) is
  appended to the new version's ``MODEL_CARD.md``, the whole report written beside it as
  ``retrain.json``; :func:`comparison_message` is the analysts' mail.

Pure over its inputs: no database, no mail, no clock (``now`` is passed in). The job that reads the
labels and sends the mail is :func:`pipeline.modeljobs.retrain_job`.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.classify.model import TextModel, doc_of
from pipeline.classify.registry import (
    Where,
    load_active,
    load_version,
    publish,
    writable_dir,
)
from pipeline.errors import GateError
from pipeline.training.corpus import load_items, training_items
from pipeline.training.evaluate import evaluate_items
from pipeline.training.gate import evaluate_frozen
from pipeline.training.promotion import gate_verdict, promote_through_gate
from pipeline.training.train import train_model

__all__ = [
    "LabelBatch",
    "RetrainReport",
    "RetrainSettings",
    "comparison_message",
    "judge_labels",
    "merge_training",
    "retrain",
]

log = logging.getLogger(__name__)

METRICS = ("f1", "pr_auc", "precision", "recall")


@dataclass(frozen=True, slots=True)
class RetrainSettings:
    """The knobs of one retraining run (the DAG's params)."""

    candidates: tuple[str, ...] = ()  # empty: train.py's default candidates
    folds: int = 5
    dry_run: bool = False
    recent_days: float = 30.0
    margin: float = 0.3  # how far on the wrong side of the threshold counts as strong disagreement
    max_disagreement: float = 0.25  # share of judged labels above which the batch is flagged
    min_batch: int = 5  # fewer labels than this are not judged
    actor: str = "retrain"


@dataclass(frozen=True, slots=True)
class LabelBatch:
    """The champion's view of the analysts' labels."""

    judged: int
    disagreements: tuple[dict[str, Any], ...]
    share: float
    limit: float
    flagged: bool

    def failure(self) -> str | None:
        if not self.flagged:
            return None
        return (
            f"label batch flagged: the champion strongly disagrees with {len(self.disagreements)} "
            f"of {self.judged} analyst labels ({self.share:.0%}, limit {self.limit:.0%}); "
            "re-check them (label quality report) before training on them"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "judged": self.judged,
            "disagreements": list(self.disagreements),
            "share": round(self.share, 4),
            "limit": self.limit,
            "flagged": self.flagged,
        }


@dataclass(frozen=True, slots=True)
class RetrainReport:
    champion: str
    challenger: str | None
    promoted: bool
    dry_run: bool
    refused: tuple[str, ...]
    training: Mapping[str, Any]
    label_batch: Mapping[str, Any]
    comparison: Mapping[str, Any]
    forced_by: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        if self.dry_run:
            return "dry run: nothing promoted"
        if self.promoted:
            return f"challenger {self.challenger} promoted"
        return f"challenger {self.challenger} refused"

    def as_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion,
            "challenger": self.challenger,
            "promoted": self.promoted,
            "dry_run": self.dry_run,
            "outcome": self.outcome,
            "refused": list(self.refused),
            "training": dict(self.training),
            "label_batch": dict(self.label_batch),
            "comparison": dict(self.comparison),
            **dict(self.extra),
        }

    def as_xcom(self) -> dict[str, Any]:
        """Ids, counts and the verdict only (no texts of items)."""
        return {
            "champion": self.champion,
            "challenger": self.challenger,
            "promoted": self.promoted,
            "dry_run": self.dry_run,
            "refused": list(self.refused),
            "n_training": self.training.get("n_items"),
            "n_labels": self.training.get("n_labels"),
            "label_batch_flagged": bool(self.label_batch.get("flagged")),
        }


def _text_key(item: Mapping[str, Any]) -> str:
    text = " ".join(str(item.get(k) or "") for k in ("title", "summary", "body"))
    norm = re.sub(r"\s+", " ", text).strip().casefold()
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def merge_training(
    corpus: Sequence[dict[str, Any]],
    labels: Sequence[dict[str, Any]],
    frozen: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The training set and what was done to build it: corpus items less the frozen split's, plus
    the labels, deduplicated by normalised text (a label replaces a corpus item with its text; of
    two labels with one text the later ``labelled_at`` wins)."""
    kept: dict[str, dict[str, Any]] = {}
    dropped: list[str] = []
    for item in training_items(corpus, frozen):
        key = _text_key(item)
        if key in kept:
            dropped.append(str(item["id"]))
            continue
        kept[key] = item
    replaced: list[dict[str, Any]] = []
    for item in sorted(labels, key=lambda i: str(i.get("labelled_at") or "")):
        key = _text_key(item)
        before = kept.get(key)
        if before is not None:
            replaced.append(
                {"id": str(before["id"]), "by": str(item["id"]), "label": int(item["label"])}
            )
        kept[key] = item
    items = list(kept.values())
    n_labels = sum(1 for i in items if i.get("kind") == "analyst_label")
    return items, {
        "n_items": len(items),
        "n_corpus": len(items) - n_labels,
        "n_labels": n_labels,
        "duplicates_dropped": dropped,
        "replaced_by_label": replaced,
    }


def judge_labels(
    champion: TextModel, labels: Sequence[dict[str, Any]], settings: RetrainSettings
) -> LabelBatch:
    """The champion's strong disagreements with the labels, and whether the batch is flagged."""
    if not labels:
        return LabelBatch(0, (), 0.0, settings.max_disagreement, False)
    probs = champion.predict_docs([doc_of(i) for i in labels]).tolist()
    thr, margin = champion.threshold, settings.margin
    wrong = tuple(
        {"id": str(i["id"]), "label": int(i["label"]), "score": round(float(p), 4)}
        for i, p in zip(labels, probs, strict=True)
        if (i["label"] == 1 and p <= thr - margin) or (i["label"] == 0 and p >= thr + margin)
    )
    share = len(wrong) / len(labels)
    flagged = len(labels) >= settings.min_batch and share > settings.max_disagreement
    return LabelBatch(len(labels), wrong, share, settings.max_disagreement, flagged)


def _overall(report: Mapping[str, Any]) -> dict[str, Any]:
    o = report.get("overall") or {}
    return {k: o.get(k) for k in (*METRICS, "n") if k in o}


def _on_recent(model: TextModel, recent: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    if not recent:
        return None
    probs = model.predict_docs([doc_of(i) for i in recent]).tolist()
    return _overall(evaluate_items(recent, probs, model.threshold, slices=()))


def _close(model: TextModel) -> None:
    close = getattr(model.embedder, "close", None)
    if close is not None:
        close()


def recent_labels(
    labels: Sequence[dict[str, Any]], *, now: datetime, days: float
) -> list[dict[str, Any]]:
    since = now - timedelta(days=days)
    out = []
    for item in labels:
        try:
            when = datetime.fromisoformat(str(item.get("labelled_at")))
        except ValueError:
            continue
        if when >= since:
            out.append(item)
    return out


def retrain(
    where: Where,
    *,
    corpus_paths: Sequence[Path],
    test_path: Path,
    baseline_path: Path,
    labels: Sequence[dict[str, Any]],
    conflicts: Sequence[Mapping[str, Any]],
    now: datetime,
    settings: RetrainSettings,
    repo_root: Path | None = None,
) -> RetrainReport:
    """Train a challenger on corpus + labels, compare it with the champion, gate and (unless a dry
    run) promote it; see the module docstring."""
    corpus = load_items(list(corpus_paths))
    frozen = load_items([test_path])
    items, training = merge_training(corpus, labels, frozen)
    training["conflicts"] = [dict(c) for c in conflicts]
    training["conflict_rule"] = "an article's latest label wins; every side is listed here"
    champion = load_active(where)
    try:
        batch = judge_labels(champion, labels, settings)
        recent = recent_labels(labels, now=now, days=settings.recent_days)
        champion_frozen = evaluate_frozen(champion, test_path)
        champion_recent = _on_recent(champion, recent)
    finally:
        _close(champion)
    staging = writable_dir(where)
    result = train_model(
        items,
        model_dir=staging,
        now=now,
        test=None,
        candidates=list(settings.candidates) or None,
        folds=settings.folds,
        repo_root=repo_root,
    )
    publish(where, result.version)
    challenger = load_version(where, result.version)
    try:
        challenger_frozen = evaluate_frozen(challenger, test_path)
        challenger_recent = _on_recent(challenger, recent)
    finally:
        _close(challenger)
    comparison = {
        "frozen": {
            "champion": _overall(champion_frozen),
            "challenger": _overall(challenger_frozen),
        },
        "recent_labels": {
            "n": len(recent),
            "days": settings.recent_days,
            "champion": champion_recent,
            "challenger": challenger_recent,
            "note": "the challenger was trained on these labels",
        },
    }
    extra = [f] if (f := batch.failure()) else []
    promoted = False
    if settings.dry_run:
        verdict = gate_verdict(
            where, result.version, test_path=test_path, baseline_path=baseline_path
        )
        refused = (*verdict.failures, *extra)
    else:
        try:
            verdict = promote_through_gate(
                where,
                result.version,
                now=now,
                test_path=test_path,
                baseline_path=baseline_path,
                actor=settings.actor,
                extra_failures=extra,
            )
            promoted, refused = True, ()
        except GateError as err:
            refused = tuple(err.failures) if getattr(err, "failures", None) else (str(err),)
    report = RetrainReport(
        champion=champion.version,
        challenger=result.version,
        promoted=promoted,
        dry_run=settings.dry_run,
        refused=tuple(refused),
        training=training,
        label_batch=batch.as_dict(),
        comparison=comparison,
    )
    _append_card(where, staging, result.version, report)
    log.info("retrain: %s", report.outcome)
    return report


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def comparison_rows(report: RetrainReport) -> list[tuple[str, str, str]]:
    """(measure, champion, challenger) rows, frozen split first, then the recent labels."""
    rows: list[tuple[str, str, str]] = []
    frozen = report.comparison.get("frozen", {})
    for m in METRICS:
        rows.append(
            (
                f"frozen split {m}",
                _fmt((frozen.get("champion") or {}).get(m)),
                _fmt((frozen.get("challenger") or {}).get(m)),
            )
        )
    recent = report.comparison.get("recent_labels", {})
    for m in ("f1", "precision", "recall"):
        rows.append(
            (
                f"recent labels {m} (n={recent.get('n', 0)})",
                _fmt((recent.get("champion") or {}).get(m)),
                _fmt((recent.get("challenger") or {}).get(m)),
            )
        )
    return rows


def card_section(report: RetrainReport) -> str:
    t, b = report.training, report.label_batch
    lines = [
        "",
        "## Retraining",
        "",
        f"Outcome: **{report.outcome}** (champion {report.champion}).",
        "",
        f"Training set: {t.get('n_items')} items = {t.get('n_corpus')} corpus + "
        f"{t.get('n_labels')} analyst labels; {len(t.get('duplicates_dropped', []))} duplicate "
        f"corpus items dropped, {len(t.get('replaced_by_label', []))} replaced by a label.",
        f"Label conflicts (resolved by the latest label): {len(t.get('conflicts', []))}.",
        f"Label batch check: {b.get('judged')} labels judged, {len(b.get('disagreements', []))} "
        f"strongly contradicted by the champion ({_fmt(b.get('share'))}; limit {b.get('limit')})"
        + (" — **flagged**" if b.get("flagged") else "."),
        "",
        "| measure | champion | challenger |",
        "|---|---|---|",
        *[f"| {m} | {c} | {n} |" for m, c, n in comparison_rows(report)],
        "",
    ]
    if report.refused:
        lines += ["Gate refused it:", "", *[f"- {r}" for r in report.refused], ""]
    return "\n".join(lines)


def _append_card(where: Where, staging: Path, version: str, report: RetrainReport) -> None:
    """The "Retraining" section of the version's card, and the full report as ``retrain.json``
    beside it (ids and figures only, no item texts)."""
    card = staging / version / "MODEL_CARD.md"
    if not card.is_file():
        return
    card.write_text(card.read_text(encoding="utf-8") + card_section(report), encoding="utf-8")
    body = json.dumps(report.as_dict(), indent=2, sort_keys=True, ensure_ascii=False, default=str)
    (staging / version / "retrain.json").write_text(body + "\n", encoding="utf-8")
    publish(where, version)


def comparison_message(report: RetrainReport) -> tuple[str, str, str]:
    """The analysts' mail: (subject, text, HTML), every value escaped in the HTML."""
    subject = f"sanctions-watch retraining: {report.outcome}"
    rows = comparison_rows(report)
    width = max(len(r[0]) for r in rows)
    text = [subject, "", f"{'measure':<{width}}  champion  challenger"]
    text += [f"{m:<{width}}  {c:>8}  {n:>10}" for m, c, n in rows]
    b = report.label_batch
    text += [
        "",
        f"champion: {report.champion}",
        f"challenger: {report.challenger}",
        f"label batch: {b.get('judged')} judged, {len(b.get('disagreements', []))} strongly "
        f"contradicted" + (" (FLAGGED)" if b.get("flagged") else ""),
        f"label conflicts resolved by the latest label: {len(report.training.get('conflicts', []))}",
    ]
    if report.refused:
        text += ["", "refused by the gate:", *[f"- {r}" for r in report.refused]]
    e = html.escape
    table = "".join(f"<tr><td>{e(m)}</td><td>{e(c)}</td><td>{e(n)}</td></tr>" for m, c, n in rows)
    reasons = "".join(f"<li>{e(r)}</li>" for r in report.refused)
    body = (
        f"<h1>{e(subject)}</h1><table><tr><th>measure</th><th>champion {e(report.champion)}</th>"
        f"<th>challenger {e(str(report.challenger))}</th></tr>{table}</table>"
        + (f"<p>Refused by the gate:</p><ul>{reasons}</ul>" if reasons else "")
    )
    return subject, "\n".join(text) + "\n", f"<!doctype html><html><body>{body}</body></html>"
