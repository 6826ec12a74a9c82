"""The quality gate: the active model on the frozen test split against pinned minimum scores.

``data/test/baseline.json`` pins the SHA-256 of each file of the frozen split (``data/test/*.jsonl``:
short items, full-length articles, everyday news), the minimum scores a model must reach on it
(overall and per slice) and the maximums it must stay under (false alarms per 1,000 everyday items). CI fails when a model falls below them; changing the
baseline is an explicit, reviewed edit of that file (with a reason), never a side effect of training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.classify.model import TextModel, doc_of
from pipeline.errors import InputError
from pipeline.training.corpus import load_items
from pipeline.training.evaluate import evaluate_items

__all__ = ["check_gate", "evaluate_frozen", "file_sha256", "split_sha256"]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split_sha256(path: Path) -> dict[str, str]:
    """SHA-256 of each file of the frozen split (a file, or every ``*.jsonl`` of a folder)."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return {f.name: file_sha256(f) for f in files}


def evaluate_frozen(model: TextModel, test_path: Path) -> dict[str, Any]:
    items = load_items([test_path])
    probs = model.predict_docs([doc_of(i) for i in items])
    report = evaluate_items(items, probs.tolist(), model.threshold)
    report.setdefault("by_slice", {})
    # A slice the gate watches that is not a single field value: every non-English item together.
    non_en = [(i, p) for i, p in zip(items, probs.tolist(), strict=True) if i["lang"] != "en"]
    if non_en:
        sub = evaluate_items(
            [i for i, _ in non_en], [p for _, p in non_en], model.threshold, slices=()
        )
        report.setdefault("by_lang", {})["non-en"] = sub["overall"]
    indirect = [
        (i, p) for i, p in zip(items, probs.tolist(), strict=True) if i["kind"] == "indirect"
    ]
    if indirect:
        sub = evaluate_items(
            [i for i, _ in indirect], [p for _, p in indirect], model.threshold, slices=()
        )
        report.setdefault("by_kind", {})["indirect"] = sub["overall"]
    report["model_version"] = model.version
    report["test_sha256"] = split_sha256(test_path)
    return report


def check_gate(report: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    """Every way the report falls short of the baseline (empty when the gate passes)."""
    failures: list[str] = []
    if baseline.get("test_sha256") != report.get("test_sha256"):
        failures.append(
            "the frozen test split changed (sha256 differs from data/test/baseline.json); "
            "test data must not move: restore it, or change the baseline explicitly with a reason"
        )
    for bound, limits_by_scope in (
        ("minimums", baseline.get("minimums", {})),
        ("maximums", baseline.get("maximums", {})),
    ):
        for scope, limits in limits_by_scope.items():
            if scope == "overall":
                got = report["overall"]
            else:
                table, _, value = scope.partition(":")
                got = report.get(f"by_{table}", {}).get(value)
                if got is None:
                    failures.append(f"{scope}: no such slice in the report")
                    continue
            for metric, limit in limits.items():
                value = got.get(metric)
                if bound == "minimums" and (value is None or value < limit):
                    failures.append(
                        f"{scope} {metric} = {value} is below the pinned minimum {limit}"
                    )
                if bound == "maximums" and (value is None or value > limit):
                    failures.append(
                        f"{scope} {metric} = {value} is above the pinned maximum {limit}"
                    )
    return failures


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read the quality baseline: {err}") from err
    if not isinstance(data, dict) or "minimums" not in data:
        raise InputError(f"{path}: a baseline needs 'minimums'")
    return data
