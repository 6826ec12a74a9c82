"""The gate inside every promotion path: refused with reasons, or forced explicitly and recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import NOW, ROOT

from pipeline.classify.registry import GateVerdict, load_active, promote, promotion_history
from pipeline.errors import GateError
from pipeline.training.corpus import load_items
from pipeline.training.gate import split_sha256
from pipeline.training.promotion import gate_verdict, promote_through_gate
from pipeline.training.train import train_model

DPRK = ROOT / "data" / "corpus" / "dprk.jsonl"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, str]:
    """A small real model (never promoted) and a small frozen split it was not trained on."""
    base = tmp_path_factory.mktemp("gate")
    items = load_items([DPRK])
    test_dir = base / "test"
    test_dir.mkdir()
    with (test_dir / "frozen.jsonl").open("w", encoding="utf-8") as fh:
        for item in items[1::6]:
            fh.write(json.dumps({k: v for k, v in item.items() if k != "_source"}) + "\n")
    version = train_model(
        items[::2], model_dir=base / "models", now=NOW, candidates=["tfidf-word-lr"], folds=3
    ).version
    return base / "models", test_dir, version


def _baseline(path: Path, test_dir: Path, minimum: float) -> Path:
    path.write_text(
        json.dumps(
            {
                "test_sha256": split_sha256(test_dir),
                "minimums": {"overall": {"f1": minimum, "pr_auc": minimum}},
            }
        )
    )
    return path


@pytest.fixture
def setup(built, tmp_path: Path, make_config) -> dict[str, object]:
    models, test_dir, version = built
    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    store = tmp_path / "store"  # the CLI writes the registry to the model store, never to models/
    config = make_config(model_dir=copy, settings={"model_store": str(store)})
    return {
        "models": copy,
        "store": store,
        "config": config,
        "test": test_dir,
        "version": version,
        "strict": _baseline(tmp_path / "strict.json", test_dir, 0.999),
        "lenient": _baseline(tmp_path / "lenient.json", test_dir, 0.0),
        "args": ["--config", str(config.config_dir), "--test", str(test_dir)],
    }


def test_models_promote_of_a_version_failing_the_gate_is_refused_with_the_reasons(
    setup, run_cli
) -> None:
    code, _, err = run_cli(
        "models", "promote", setup["version"], *setup["args"], "--baseline", str(setup["strict"])
    )
    assert code == 2
    assert "refused by the quality gate" in err
    assert "overall f1" in err and "overall pr_auc" in err  # every failure, not only the first
    assert "below the pinned minimum 0.999" in err
    assert not (setup["store"] / "registry.json").exists()  # nothing became active


def test_models_promote_of_a_version_passing_the_gate_records_the_verdict(setup, run_cli) -> None:
    code, out, _ = run_cli(
        "models", "promote", setup["version"], *setup["args"], "--baseline", str(setup["lenient"])
    )
    assert code == 0 and f"gate passed; promoted {setup['version']}" in out
    assert load_active(setup["config"].model_dir).version == setup["version"]
    assert not (setup["models"] / "registry.json").exists()  # the shipped folder is read-only
    event = json.loads((setup["store"] / "registry.json").read_text())["history"][-1]
    assert event["gate"]["passed"] is True and event["gate"]["failures"] == []
    assert event["gate"]["metrics"]["f1"] >= 0


@pytest.mark.parametrize(
    "extra",
    [["--force"], ["--force", "--by", "ana"], ["--force", "--reason", "x"], ["--by", "ana"],
     ["--force", "--by", " ", "--reason", "x"]],
)  # fmt: skip
def test_a_bare_or_half_named_override_is_refused(setup, run_cli, extra: list[str]) -> None:
    code, _, err = run_cli(
        "models", "promote", setup["version"], *setup["args"], "--baseline", str(setup["strict"]),
        *extra,
    )  # fmt: skip
    assert code == 2 and ("--force needs --by" in err or "only go with --force" in err)
    assert not (setup["store"] / "registry.json").exists()


def test_a_forced_promotion_names_who_and_why_and_keeps_the_failures(
    setup, run_cli, caplog
) -> None:
    code, out, _ = run_cli(
        "models", "promote", setup["version"], *setup["args"], "--baseline", str(setup["strict"]),
        "--force", "--by", "lead", "--reason", "incident 42: the active model is broken",
    )  # fmt: skip
    assert code == 0 and "forced by lead" in out and "GATE FAILED (overridden)" in out
    event = json.loads((setup["store"] / "registry.json").read_text())["history"][-1]
    assert event["by"] == "lead"
    assert event["gate"]["forced_by"] == "lead"
    assert event["gate"]["reason"] == "incident 42: the active model is broken"
    assert event["gate"]["passed"] is False and len(event["gate"]["failures"]) == 2
    assert any("forced by lead" in r.getMessage() for r in caplog.records)


def test_a_moved_frozen_split_fails_the_gate(setup, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(setup["test"], moved)
    with (moved / "frozen.jsonl").open("a", encoding="utf-8") as fh:
        fh.write((setup["test"] / "frozen.jsonl").read_text().splitlines()[0] + "\n")
    with pytest.raises(GateError, match="frozen test split changed"):
        promote_through_gate(
            setup["models"], setup["version"], now=NOW, test_path=moved,
            baseline_path=setup["lenient"],
        )  # fmt: skip
    assert promotion_history(setup["models"]) == []


def test_a_verdict_promotes_only_the_version_it_was_made_for(setup) -> None:
    verdict = gate_verdict(
        setup["models"], setup["version"], test_path=setup["test"], baseline_path=setup["lenient"]
    )
    assert verdict.passed
    with pytest.raises(GateError, match="verdict given is for"):
        promote(setup["models"], "some-other-version", now=NOW, verdict=verdict)
    failed = GateVerdict(setup["version"], ("overall f1 = 0.1 is below the pinned minimum 0.9",))
    with pytest.raises(GateError, match=r"overall f1 = 0\.1") as refused:
        promote(setup["models"], setup["version"], now=NOW, verdict=failed)
    assert refused.value.failures == failed.failures


def test_train_promote_of_a_model_failing_the_gate_is_refused(
    setup, run_cli, tmp_path: Path
) -> None:
    data = tmp_path / "small.jsonl"
    lines = DPRK.read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join(lines[::3]) + "\n", encoding="utf-8")
    code, _, err = run_cli(
        "train", "--data", str(data), "--candidates", "tfidf-word-lr", "--folds", "3",
        "--promote", *setup["args"], "--baseline", str(setup["strict"]),
    )  # fmt: skip
    assert code == 2 and "refused by the quality gate" in err and "overall f1" in err
    assert promotion_history(setup["models"]) == []  # trained and kept, never made active
