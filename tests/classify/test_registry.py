"""Model artefacts: safe format, verification against metadata, promotion, rollback and fallback."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from helpers import NOW, ROOT

from pipeline.classify.registry import (
    GateVerdict,
    list_models,
    load_active,
    load_version,
    promote,
    promotion_history,
    rollback,
    save_model,
)
from pipeline.errors import ModelError
from pipeline.training.corpus import load_items
from pipeline.training.train import train_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str, str]:
    """Two small real versions in a temp registry (trained on a slice of the corpus)."""
    directory = tmp_path_factory.mktemp("models")
    items = load_items([ROOT / "data" / "corpus" / "dprk.jsonl"])[::2]
    v1 = train_model(
        items, model_dir=directory, now=NOW, candidates=["tfidf-word-lr"], folds=3
    ).version
    v2 = train_model(
        items[::-1],
        model_dir=directory,
        now=NOW.replace(minute=5),
        candidates=["tfidf-word-lr"],
        folds=3,
    ).version
    return directory, v1, v2


@pytest.fixture
def registry(trained, tmp_path: Path) -> tuple[Path, str, str]:
    directory, v1, v2 = trained
    copy = tmp_path / "models"
    shutil.copytree(directory, copy)
    promote(copy, v1, now=NOW, verdict=GateVerdict(v1, ()))
    promote(copy, v2, now=NOW, verdict=GateVerdict(v2, ()))
    return copy, v1, v2


def test_promote_rollback_and_list(registry) -> None:
    directory, v1, v2 = registry
    assert load_active(directory).version == v2
    assert rollback(directory, now=NOW) == v1
    assert load_active(directory).version == v1
    listed = {m.version: m.active for m in list_models(directory)}
    assert listed == {v1: True, v2: False}
    meta = json.loads((directory / v1 / "metadata.json").read_text())
    for key in (
        "model_sha256",
        "sklearn_version",
        "training_data",
        "threshold",
        "calibration",
        "feature_schema",
        "cross_validation",
    ):
        assert key in meta
    assert (directory / v1 / "MODEL_CARD.md").read_text().startswith("# Model card")


def _tamper(path: Path, how: str) -> None:
    model = path / "model.skops"
    meta_path = path / "metadata.json"
    if how == "flipped-byte":
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model.write_bytes(bytes(data))
    elif how == "truncated":
        model.write_bytes(model.read_bytes()[:1000])
    elif how == "pickle-renamed":
        model.write_bytes(pickle.dumps({"not": "a model"}))
        meta = json.loads(meta_path.read_text())
        meta["model_sha256"] = __import__("hashlib").sha256(model.read_bytes()).hexdigest()
        meta_path.write_text(json.dumps(meta))
    elif how == "other-sklearn":
        meta = json.loads(meta_path.read_text())
        meta["sklearn_version"] = "0.24.2"
        meta_path.write_text(json.dumps(meta))
    elif how == "other-schema":
        meta = json.loads(meta_path.read_text())
        meta["feature_schema"] = "title-only/v0"
        meta_path.write_text(json.dumps(meta))
    elif how == "no-metadata":
        meta_path.unlink()


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("flipped-byte", "SHA-256"),
        ("truncated", "SHA-256"),
        ("pickle-renamed", "not a skops file"),
        ("other-sklearn", "scikit-learn 0.24.2"),
        ("other-schema", "feature schema"),
        ("no-metadata", "metadata.json is missing"),
    ],
)
def test_bad_active_model_is_refused_and_previous_keeps_serving(
    registry, how: str, message: str, caplog
) -> None:
    directory, v1, v2 = registry
    _tamper(directory / v2, how)
    with pytest.raises(ModelError, match=message):
        load_version(directory, v2)
    assert load_active(directory).version == v1
    assert any(message in r.getMessage() for r in caplog.records)


def test_type_outside_allow_list_is_refused(registry, tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    directory, v1, _ = registry
    bad = directory / "bad-types"
    shutil.copytree(directory / v1, bad)
    sio.dump(RandomForestClassifier(n_estimators=1), bad / "model.skops")
    meta = json.loads((bad / "metadata.json").read_text())
    meta["model_sha256"] = (
        __import__("hashlib").sha256((bad / "model.skops").read_bytes()).hexdigest()
    )
    (bad / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="outside the allow-list"):
        load_version(directory, "bad-types")
    with pytest.raises(ModelError, match="outside the allow-list"):
        save_model(
            directory, "new-bad", RandomForestClassifier(n_estimators=1), {"threshold": 0.5}, "card"
        )
    assert not (directory / "new-bad").exists()
    assert not [p for p in directory.iterdir() if p.name.startswith(".new-bad")]


def test_promote_refuses_broken_version(registry) -> None:
    directory, v1, v2 = registry
    rollback(directory, now=NOW)
    _tamper(directory / v2, "flipped-byte")
    with pytest.raises(ModelError):
        promote(directory, v2, now=NOW, verdict=GateVerdict(v2, ()))
    assert load_active(directory).version == v1


def test_no_model_at_all(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model is active"):
        load_active(tmp_path)


def _three_promotions(registry) -> tuple[Path, str, str, str]:
    """v1, v2 (the fixture's promotions) and v3, a copy of v2 under its own name, promoted last."""
    directory, v1, v2 = registry
    v3 = "v3-copy-of-v2"
    shutil.copytree(directory / v2, directory / v3)
    promote(directory, v3, now=NOW, verdict=GateVerdict(v3, ()))
    return directory, v1, v2, v3


def test_rollback_steps_back_through_three_promotions(registry) -> None:
    directory, v1, v2, v3 = _three_promotions(registry)
    assert promotion_history(directory) == [v1, v2, v3]
    assert rollback(directory, now=NOW) == v2
    assert promotion_history(directory) == [v1, v2]
    assert rollback(directory, now=NOW) == v1  # further back, not back to v3
    assert load_active(directory).version == v1
    with pytest.raises(ModelError, match="nothing to roll back to"):
        rollback(directory, now=NOW)
    saved = json.loads((directory / "registry.json").read_text())
    assert saved["active"] == v1 and saved["promotions"] == [v1]
    assert [e["action"] for e in saved["history"]] == ["promote"] * 3 + ["rollback"] * 2
    promote(
        directory, v3, now=NOW, verdict=GateVerdict(v3, ())
    )  # a new promotion pushes onto what is left
    assert promotion_history(directory) == [v1, v3]


def test_fallback_never_serves_a_rolled_back_version(registry) -> None:
    directory, v1, v2, _ = _three_promotions(registry)
    rollback(directory, now=NOW)  # v3 rolled back: v2 active
    _tamper(directory / v2, "flipped-byte")
    assert load_active(directory).version == v1


def test_a_registry_without_promotions_replays_its_history(registry) -> None:
    """A registry.json written before the promotion history existed (like the shipped one)."""
    directory, v1, v2, v3 = _three_promotions(registry)
    path = directory / "registry.json"
    saved = json.loads(path.read_text())
    del saved["promotions"]
    path.write_text(json.dumps(saved))
    assert promotion_history(directory) == [v1, v2, v3]
    assert rollback(directory, now=NOW) == v2
    assert rollback(directory, now=NOW) == v1


def test_models_command_lists_the_history_and_rolls_back_step_by_step(
    registry, make_config, run_cli
) -> None:
    directory, v1, v2, v3 = _three_promotions(registry)
    config = make_config(model_dir=directory)
    args = ["--config", str(config.config_dir)]
    code, listing, _ = run_cli("models", "list", *args)
    assert code == 0
    history = listing.split("promotion history")[1].split()
    assert history[history.index("active") + 1] == v3
    assert history[history.index("-1") + 1] == v2 and history[history.index("-2") + 1] == v1
    assert run_cli("models", "rollback", *args) == (0, f"rolled back to {v2}\n", "")
    assert run_cli("models", "rollback", *args) == (0, f"rolled back to {v1}\n", "")
    code, _, err = run_cli("models", "rollback", *args)
    assert code == 2 and "nothing to roll back to" in err
