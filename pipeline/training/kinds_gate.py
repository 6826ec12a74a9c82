"""The breach-kind tagger's promotion gate, like the main model's (:mod:`pipeline.training.promotion`).

``data/test/kinds_baseline.json`` pins the SHA-256 of the frozen split the tagger is measured on
(``data/test/frozen.jsonl``: its ``breach_kinds`` labels), a minimum macro-F1 and a minimum F1 per
kind (``per_kind``). :func:`kinds_gate_verdict` evaluates a tagger version on the frozen split
(:func:`pipeline.training.kinds.evaluate_tagger`) and lists every way it falls short:

* the split's hash differs (test data must not move: restore it, or change the baseline explicitly);
* macro-F1 below its minimum;
* a pinned kind's F1 below its floor, or the kind missing from the tagger or from the split.

:func:`promote_tagger_through_gate` hands the verdict to
:func:`pipeline.classify.kinds.promote_tagger`, which refuses a failed one with every reason
(:class:`~pipeline.errors.GateError`) unless it is forced with a name and a reason
(``--force --by NAME --reason TEXT``): then it is logged as a warning and recorded, with the failures
it overrode, in ``models/kinds/registry.json``. ``kinds promote`` and ``kinds train --promote`` both
go through it. Changing the baseline is a reviewed edit of that file, with a reason, never a side
effect of training.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.classify.kinds import load_tagger, promote_tagger
from pipeline.classify.registry import GateVerdict
from pipeline.errors import GateError, InputError
from pipeline.training.corpus import load_items
from pipeline.training.gate import split_sha256
from pipeline.training.kinds import evaluate_tagger

__all__ = [
    "check_kinds_gate",
    "evaluate_tagger_frozen",
    "kinds_gate_verdict",
    "load_kinds_baseline",
    "promote_tagger_through_gate",
]


def load_kinds_baseline(path: Path) -> dict[str, Any]:
    """The tagger's baseline; :class:`InputError` naming the file and what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read the tagger baseline: {err}") from err
    if not isinstance(data, dict):
        raise InputError(f"{path}: a tagger baseline is a JSON object")
    minimums = data.get("minimums")
    if not isinstance(minimums, dict) or not isinstance(minimums.get("per_kind"), dict):
        raise InputError(f"{path}: a tagger baseline needs 'minimums' with 'per_kind'")
    for kind, floor in minimums["per_kind"].items():
        if not isinstance(floor, int | float) or not 0 <= floor <= 1:
            raise InputError(f"{path}: minimums.per_kind.{kind}: {floor!r} is not an F1 in [0, 1]")
    if not isinstance(data.get("test_sha256"), dict):
        raise InputError(f"{path}: a tagger baseline needs 'test_sha256'")
    return data


def evaluate_tagger_frozen(kinds_dir: Path, version: str, test_path: Path) -> dict[str, Any]:
    """The tagger ``version`` on the frozen split, with the split's hashes."""
    report = evaluate_tagger(load_tagger(kinds_dir, version), load_items([test_path]))
    report["test_sha256"] = split_sha256(test_path)
    return report


def check_kinds_gate(report: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    """Every way the report falls short of the baseline (empty when the gate passes)."""
    failures: list[str] = []
    pinned = baseline.get("test_sha256", {})
    got = report.get("test_sha256", {})
    if any(got.get(name) != sha for name, sha in pinned.items()):
        failures.append(
            "the frozen test split changed (sha256 differs from data/test/kinds_baseline.json); "
            "test data must not move: restore it, or change the baseline explicitly with a reason"
        )
    minimums = baseline["minimums"]
    macro = report.get("macro_f1")
    if "macro_f1" in minimums and (macro is None or macro < minimums["macro_f1"]):
        failures.append(f"macro-F1 = {macro} is below the pinned minimum {minimums['macro_f1']}")
    per_kind = report.get("per_kind", {})
    for kind, floor in minimums["per_kind"].items():
        m = per_kind.get(kind)
        if m is None:
            failures.append(f"{kind}: the tagger does not tag this kind (pinned F1 {floor})")
        elif not m.get("support"):
            failures.append(f"{kind}: no item of this kind in the split (pinned F1 {floor})")
        elif m["f1"] < floor:
            failures.append(
                f"{kind} F1 = {m['f1']} is below the pinned minimum {floor} "
                f"(precision {m['precision']}, recall {m['recall']}, {m['support']} items)"
            )
    return failures


def kinds_gate_verdict(
    kinds_dir: Path,
    version: str,
    *,
    test_path: Path,
    baseline_path: Path,
    forced_by: str | None = None,
    reason: str | None = None,
) -> GateVerdict:
    """The gate's verdict on tagger ``version`` (an override needs both a name and a reason)."""
    if (forced_by is None) != (reason is None) or (
        forced_by is not None and not (forced_by.strip() and reason and reason.strip())
    ):
        raise GateError("a forced promotion needs both --by NAME and --reason TEXT, not empty")
    baseline = load_kinds_baseline(baseline_path)
    report = evaluate_tagger_frozen(kinds_dir, version, test_path)
    metrics = {"macro_f1": report.get("macro_f1"), "micro_f1": report.get("micro_f1")}
    metrics |= {f"f1:{k}": m["f1"] for k, m in report["per_kind"].items() if m.get("support")}
    return GateVerdict(
        version, tuple(check_kinds_gate(report, baseline)), forced_by, reason, metrics
    )


def promote_tagger_through_gate(
    kinds_dir: Path,
    version: str,
    *,
    now: datetime,
    test_path: Path,
    baseline_path: Path,
    actor: str = "cli",
    forced_by: str | None = None,
    reason: str | None = None,
) -> GateVerdict:
    """Gate tagger ``version`` and promote it if the gate passes (or is explicitly forced); returns
    the verdict. Raises :class:`GateError` listing every failure when it is refused."""
    verdict = kinds_gate_verdict(
        kinds_dir,
        version,
        test_path=test_path,
        baseline_path=baseline_path,
        forced_by=forced_by,
        reason=reason,
    )
    promote_tagger(kinds_dir, version, now=now, actor=forced_by or actor, verdict=verdict)
    return verdict
