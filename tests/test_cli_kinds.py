"""`sanctions-watch kinds`: evaluate the shipped tagger on labelled files, refuse an unknown version,
and promote only a version that loads and passes the tagger gate (per-kind F1 on the frozen split
against data/test/kinds_baseline.json), refused with every reason unless forced with a name and a
reason, which is logged and recorded."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest
from helpers import ROOT

from pipeline.cli import build_parser
from pipeline.errors import InputError
from pipeline.knowledge.breaches import BREACH_KINDS
from pipeline.training.gate import split_sha256
from pipeline.training.kinds_gate import check_kinds_gate, kinds_gate_verdict, load_kinds_baseline

FROZEN = str(ROOT / "data" / "test" / "frozen.jsonl")


def test_kinds_subcommands_parse() -> None:
    parser = build_parser()
    train = parser.parse_args(["kinds", "train", "--folds", "3", "--promote"])
    assert (train.kinds_command, train.folds, train.promote) == ("train", 3, True)
    assert parser.parse_args(["kinds", "evaluate"]).data[0].endswith("frozen.jsonl")
    promote = parser.parse_args(["kinds", "promote", "V1"])
    assert promote.version == "V1" and promote.kinds_baseline.endswith("kinds_baseline.json")
    assert promote.gate_test.endswith("frozen.jsonl") and not promote.force
    train = parser.parse_args(
        ["kinds", "train", "--promote", "--force", "--by", "a", "--reason", "b"]
    )
    assert (train.force, train.by, train.reason) == (True, "a", "b")


def test_evaluate_prints_per_kind_figures_and_writes_a_report(run_cli, tmp_path: Path) -> None:
    report = tmp_path / "kinds.json"
    code, out, _ = run_cli(
        "--config",
        str(ROOT / "config"),
        "kinds",
        "evaluate",
        "--data",
        FROZEN,
        "--report",
        str(report),
    )
    assert code == 0 and "macro-F1" in out and "arms-transfer" in out
    data = json.loads(report.read_text())
    assert data[FROZEN]["n"] == 130 and data[FROZEN]["per_kind"]["arms-transfer"]["support"] == 82


def test_unknown_versions_are_refused(run_cli, make_config, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "kinds", models / "kinds")
    config = make_config(model_dir=models)
    code, _, err = run_cli("--config", str(config.config_dir), "kinds", "promote", "nope")
    assert code == 2 and "tagger nope: no folder" in err
    code, _, err = run_cli(
        "--config", str(config.config_dir), "kinds", "evaluate", "--model", "nope"
    )
    assert code == 2 and "tagger nope" in err
    active = json.loads((models / "kinds" / "registry.json").read_text())["active"]
    code, out, _ = run_cli("--config", str(config.config_dir), "kinds", "promote", active)
    assert code == 0 and f"promoted tagger {active}" in out


# ------------------------------------------------------------------------------ the tagger gate

KINDS_BASELINE = ROOT / "data" / "test" / "kinds_baseline.json"


def _models(tmp_path: Path) -> tuple[Path, str]:
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "kinds", models / "kinds")
    active = json.loads((models / "kinds" / "registry.json").read_text())["active"]
    return models, active


def _raised_baseline(tmp_path: Path) -> Path:
    """The pinned baseline with two floors above what the shipped tagger reaches."""
    data = json.loads(KINDS_BASELINE.read_text())
    data["minimums"]["macro_f1"] = 0.95
    data["minimums"]["per_kind"]["arms-transfer"] = 0.99
    path = tmp_path / "kinds_baseline.json"
    path.write_text(json.dumps(data))
    return path


def _history(models: Path) -> list[dict]:
    return json.loads((models / "kinds" / "registry.json").read_text())["history"]


def test_kinds_promote_passes_the_gate_and_records_its_verdict(
    run_cli, make_config, tmp_path: Path
) -> None:
    models, active = _models(tmp_path)
    config = make_config(model_dir=models)
    code, out, err = run_cli("--config", str(config.config_dir), "kinds", "promote", active)
    assert code == 0, err
    assert "tagger gate passed (macro-F1 0.8" in out and f"promoted tagger {active}" in out
    gate = _history(models)[-1]["gate"]
    assert gate["passed"] and gate["failures"] == [] and gate["forced_by"] is None
    assert gate["metrics"]["f1:arms-transfer"] >= 0.9


def test_kinds_promote_below_the_baseline_is_refused_with_every_reason(
    run_cli, make_config, tmp_path: Path
) -> None:
    models, active = _models(tmp_path)
    config = make_config(model_dir=models)
    before = _history(models)
    baseline = str(_raised_baseline(tmp_path))
    args = ("--config", str(config.config_dir), "kinds", "promote", active)
    code, out, err = run_cli(*args, "--kinds-baseline", baseline)
    assert code == 2 and "promotion refused by the tagger gate" in err
    assert re.search(r"macro-F1 = 0\.8\d+ is below the pinned minimum 0\.95", err), err
    assert re.search(r"arms-transfer F1 = 0\.9\d+ is below the pinned minimum 0\.99", err), err
    assert "promoted" not in out and _history(models) == before
    # a bare --force, or --by/--reason without --force, is refused too
    code, _, err = run_cli(*args, "--kinds-baseline", baseline, "--force", "--by", "ana")
    assert code == 2 and "--force needs --by NAME and --reason TEXT" in err
    code, _, err = run_cli(*args, "--kinds-baseline", baseline, "--by", "ana", "--reason", "x")
    assert code == 2 and "--by and --reason only go with --force" in err
    assert _history(models) == before


def test_forced_tagger_promotion_is_logged_and_recorded(
    run_cli, make_config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models, active = _models(tmp_path)
    config = make_config(model_dir=models)
    baseline = str(_raised_baseline(tmp_path))
    with caplog.at_level(logging.WARNING, logger="pipeline.classify.kinds"):
        code, out, err = run_cli(
            "--config", str(config.config_dir), "kinds", "promote", active,
            "--kinds-baseline", baseline,
            "--force", "--by", "Ana Analyst", "--reason", "hold-out improved; frozen labels revised",
        )  # fmt: skip
    assert code == 0, err
    assert out.count("TAGGER GATE FAILED (overridden)") == 2
    assert "forced by Ana Analyst: hold-out improved" in out
    assert any("promoted despite 2 gate failure(s)" in r.getMessage() for r in caplog.records)
    entry = _history(models)[-1]
    assert entry["by"] == "Ana Analyst" and entry["version"] == active
    assert entry["gate"]["forced_by"] == "Ana Analyst" and not entry["gate"]["passed"]
    assert entry["gate"]["reason"] == "hold-out improved; frozen labels revised"
    assert len(entry["gate"]["failures"]) == 2


def test_a_moved_frozen_split_fails_the_gate(tmp_path: Path) -> None:
    data = json.loads(KINDS_BASELINE.read_text())
    data["test_sha256"]["frozen.jsonl"] = "0" * 64
    baseline = tmp_path / "kinds_baseline.json"
    baseline.write_text(json.dumps(data))
    models, active = _models(tmp_path)
    verdict = kinds_gate_verdict(
        models / "kinds", active, test_path=Path(FROZEN), baseline_path=baseline
    )
    assert verdict.failures == (
        "the frozen test split changed (sha256 differs from data/test/kinds_baseline.json); "
        "test data must not move: restore it, or change the baseline explicitly with a reason",
    )


def test_check_kinds_gate_names_each_shortfall() -> None:
    baseline = {
        "test_sha256": {"frozen.jsonl": "a"},
        "minimums": {"macro_f1": 0.8, "per_kind": {"arms-transfer": 0.9, "cyber-theft": 0.9,
                                                   "luxury-goods": 0.5, "new-kind": 0.5}},
    }  # fmt: skip
    m = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 12}
    report = {
        "test_sha256": {"frozen.jsonl": "a"},
        "macro_f1": 0.85,
        "per_kind": {
            "arms-transfer": {**m, "f1": 0.95},
            "cyber-theft": m,
            "luxury-goods": {**m, "support": 0},
        },
    }
    assert check_kinds_gate(report, baseline) == [
        "cyber-theft F1 = 0.5 is below the pinned minimum 0.9 (precision 0.5, recall 0.5, 12 items)",
        "luxury-goods: no item of this kind in the split (pinned F1 0.5)",
        "new-kind: the tagger does not tag this kind (pinned F1 0.5)",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read the tagger baseline"),
        ('{"minimums": {}}', "needs 'minimums' with 'per_kind'"),
        ('{"minimums": {"per_kind": {"arms-transfer": 1.5}}}', "is not an F1 in [0, 1]"),
        ('{"minimums": {"per_kind": {}}}', "needs 'test_sha256'"),
    ],
)
def test_a_malformed_kinds_baseline_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(InputError, match=re.escape(message)):
        load_kinds_baseline(path)


def test_the_pinned_baseline_matches_the_frozen_split() -> None:
    baseline = load_kinds_baseline(KINDS_BASELINE)
    assert baseline["test_sha256"] == {"frozen.jsonl": split_sha256(Path(FROZEN))["frozen.jsonl"]}
    assert set(baseline["minimums"]["per_kind"]) <= set(BREACH_KINDS)
