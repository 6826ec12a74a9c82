"""Promotion through the quality gate: the only way a model version becomes active.

:func:`gate_verdict` loads the version, scores the frozen test split (``data/test/*.jsonl``) with
:func:`pipeline.training.gate.evaluate_frozen` and compares it with the pinned baseline
(:func:`check_gate`). :func:`promote_through_gate` then hands that verdict to
:func:`pipeline.classify.registry.promote`, which refuses a failed verdict with every reason
(:class:`GateError`). The one bypass is an explicit override naming who forces it and why
(``--force --by NAME --reason TEXT``): it is logged as a warning and recorded, with the failures it
overrode, in the registry's history. ``train --promote``, ``models promote`` and the retraining DAG
all call :func:`promote_through_gate`. A caller may add failures of its own (``extra_failures``: the
retraining run's flagged label batch); they refuse the promotion exactly like the baseline's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pipeline.classify.registry import GateVerdict, Where, load_version, promote
from pipeline.errors import GateError
from pipeline.training.gate import check_gate, evaluate_frozen, load_baseline

__all__ = ["gate_verdict", "promote_through_gate"]

log = logging.getLogger(__name__)


def gate_verdict(
    model_dir: Where,
    version: str,
    *,
    test_path: Path,
    baseline_path: Path,
    forced_by: str | None = None,
    reason: str | None = None,
    extra_failures: Sequence[str] = (),
) -> GateVerdict:
    """The gate's verdict on ``version``: every failure against the baseline, and the override if one
    was given (an override needs both a name and a reason, else :class:`GateError`)."""
    if (forced_by is None) != (reason is None) or (
        forced_by is not None and not (forced_by.strip() and reason and reason.strip())
    ):
        raise GateError("a forced promotion needs both --by NAME and --reason TEXT, not empty")
    baseline = load_baseline(baseline_path)
    model = load_version(model_dir, version)
    try:
        report = evaluate_frozen(model, test_path)
    finally:
        close = getattr(model.embedder, "close", None)  # embedding worker processes, if any
        if close is not None:
            close()
    failures = (*check_gate(report, baseline), *extra_failures)
    overall = report.get("overall", {})
    metrics = {k: overall.get(k) for k in ("f1", "pr_auc", "precision", "recall") if k in overall}
    return GateVerdict(version, failures, forced_by, reason, metrics)


def promote_through_gate(
    model_dir: Where,
    version: str,
    *,
    now: datetime,
    test_path: Path,
    baseline_path: Path,
    actor: str = "cli",
    forced_by: str | None = None,
    reason: str | None = None,
    extra_failures: Sequence[str] = (),
) -> GateVerdict:
    """Gate ``version`` and promote it if the gate passes (or is explicitly forced); returns the
    verdict. Raises :class:`GateError` listing every failure when it is refused."""
    verdict = gate_verdict(
        model_dir,
        version,
        test_path=test_path,
        baseline_path=baseline_path,
        forced_by=forced_by,
        reason=reason,
        extra_failures=extra_failures,
    )
    promote(model_dir, version, now=now, verdict=verdict, actor=forced_by or actor)
    if verdict.passed:
        log.info("model %s passed the gate and was promoted", version)
    return verdict
