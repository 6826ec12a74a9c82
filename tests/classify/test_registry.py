"""Model artefacts: safe format, verification against metadata, promotion, rollback and fallback."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from helpers import NOW, ROOT

from pipeline.classify.registry import (
    list_models,
    load_active,
    load_version,
    promote,
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
    promote(copy, v1, now=NOW)
    promote(copy, v2, now=NOW)
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
        promote(directory, v2, now=NOW)
    assert load_active(directory).version == v1


def test_no_model_at_all(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model is active"):
        load_active(tmp_path)
