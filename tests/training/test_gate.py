"""The quality gate (CI fails on a regression) and the evaluation command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

from pipeline.classify.registry import load_active
from pipeline.training.corpus import load_items, training_items
from pipeline.training.gate import check_gate, evaluate_frozen, load_baseline, split_sha256

FROZEN = ROOT / "data" / "test"  # the frozen split: every *.jsonl in it
BASELINE = ROOT / "data" / "test" / "baseline.json"


@pytest.fixture(scope="module")
def report():
    model = load_active(ROOT / "models")
    try:
        yield evaluate_frozen(model, FROZEN)
    finally:
        if hasattr(model.embedder, "close"):
            model.embedder.close()


def test_shipped_model_passes_the_pinned_baseline(report) -> None:
    failures = check_gate(report, load_baseline(BASELINE))
    assert failures == [], "\n".join(failures)


def test_frozen_test_split_is_never_trained_on() -> None:
    corpus = load_items([ROOT / "data" / "corpus"])
    test = load_items([FROZEN])
    train = training_items(corpus, test)
    assert {i["event_id"] for i in train}.isdisjoint({i["event_id"] for i in test})
    model_meta = json.loads(
        (ROOT / "models" / load_active(ROOT / "models").version / "metadata.json").read_text()
    )
    from pipeline.training.corpus import data_hash

    assert model_meta["training_data"]["test_sha256"] == data_hash(test)


def test_gate_catches_a_regression_and_a_moved_test_set(report) -> None:
    baseline = load_baseline(BASELINE)
    worse = json.loads(json.dumps(report))
    worse["overall"]["f1"] = 0.10
    assert any("overall f1" in f for f in check_gate(worse, baseline))
    moved = {**report, "test_sha256": {**report["test_sha256"], "frozen.jsonl": "0" * 64}}
    assert any("frozen test split changed" in f for f in check_gate(moved, baseline))
    assert baseline["test_sha256"] == split_sha256(FROZEN)
    assert set(baseline["test_sha256"]) == {
        "frozen.jsonl",
        "frozen_articles.jsonl",
        "frozen_everyday.jsonl",
    }


def test_gate_watches_articles_and_caps_false_alarms_on_everyday_news(report) -> None:
    baseline = load_baseline(BASELINE)
    assert {"articles", "articles, breach only in body", "everyday news"} <= report[
        "by_slice"
    ].keys()
    noisy = json.loads(json.dumps(report))
    noisy["by_slice"]["everyday news"]["false_alarms_per_1000"] = 80.0
    assert any("above the pinned maximum" in f for f in check_gate(noisy, baseline))
    deaf = json.loads(json.dumps(report))
    deaf["by_slice"]["articles, breach only in body"]["recall"] = 0.2
    assert any("breach only in body recall" in f for f in check_gate(deaf, baseline))


def test_evaluate_cli_prints_tables_and_writes_report(tmp_path: Path) -> None:
    out_file = tmp_path / "report.json"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "--config",
            str(ROOT / "config"),
            "evaluate",
            "--data",
            str(FROZEN),
            "--report",
            str(out_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    for heading in ("precision", "PR-AUC", "confusion", "regime", "lang", "kind", "slice"):
        assert heading in out.stdout
    saved = json.loads(out_file.read_text())
    assert {"overall", "by_regime", "by_lang", "by_kind", "by_slice"} <= saved.keys()
    assert "false alarms per 1,000" in out.stdout
    assert saved["overall"]["n"] == len(load_items([FROZEN]))


def test_evaluate_cli_refuses_unlabelled_items(tmp_path: Path) -> None:
    data = tmp_path / "x.jsonl"
    data.write_text(json.dumps({"id": "a", "title": "t", "summary": ""}) + "\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "--config",
            str(ROOT / "config"),
            "evaluate",
            "--data",
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 2 and "label" in out.stderr
