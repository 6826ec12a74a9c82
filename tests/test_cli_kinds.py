"""`sanctions-watch kinds`: evaluate the shipped tagger on labelled files, refuse an unknown version,
and promote only a version that loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers import ROOT

from pipeline.cli import build_parser

FROZEN = str(ROOT / "data" / "test" / "frozen.jsonl")


def test_kinds_subcommands_parse() -> None:
    parser = build_parser()
    train = parser.parse_args(["kinds", "train", "--folds", "3", "--promote"])
    assert (train.kinds_command, train.folds, train.promote) == ("train", 3, True)
    assert parser.parse_args(["kinds", "evaluate"]).data[0].endswith("frozen.jsonl")
    assert parser.parse_args(["kinds", "promote", "V1"]).version == "V1"


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
