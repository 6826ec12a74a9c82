"""The breach-kind tagger as an artefact: trained by grouped CV on labelled positives, saved through the
registry, verified before use (hash, library version, its own type allow-list, its cue table), promoted
and loaded with fallback; and the shipped tagger's measured quality."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import ROOT
from sklearn.preprocessing import StandardScaler

from pipeline.classify.kinds import (
    KINDS_DIR,
    TAGGER_TYPES,
    load_active_tagger,
    load_tagger,
    promote_tagger,
    save_tagger,
    with_cues,
)
from pipeline.classify.registry import ALLOWED_TYPES, save_model
from pipeline.errors import ModelError
from pipeline.knowledge.breaches import BREACH_KINDS
from pipeline.training.corpus import load_items
from pipeline.training.kinds import evaluate_tagger, kind_items, train_tagger

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SMALL = ("arms-transfer", "cyber-theft", "banned-launch")  # vocabulary order


@pytest.fixture(scope="module")
def small_tagger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tagger over three kinds, trained on the DPRK files' positives (2 folds, one C)."""
    corpus = ROOT / "data" / "corpus"
    items = load_items([corpus / "dprk.jsonl", corpus / "round6_kinds.jsonl"])
    labelled, _ = kind_items(items)
    train = [i for i in labelled if set(i["breach_kinds"]) <= set(SMALL)]
    directory = tmp_path_factory.mktemp("kinds")
    result = train_tagger(train, model_dir=directory, now=NOW, folds=2, c_grid=(8.0,))
    return directory, result.version


def test_training_records_cv_thresholds_and_data(small_tagger: tuple[Path, str]) -> None:
    directory, version = small_tagger
    meta = json.loads((directory / version / "metadata.json").read_text())
    assert meta["task"] == "breach-kinds/v1" and meta["kinds"] == list(SMALL)
    assert set(meta["thresholds"]) == set(SMALL) and all(
        0 < t < 1 for t in meta["thresholds"].values()
    )
    assert meta["cross_validation"]["folds"] == 2
    assert set(meta["cross_validation"]["per_kind"]) == set(SMALL)
    assert len(meta["cross_validation"]["comparison"]) == 4  # 2 inputs x 1 C x 2 fallbacks
    assert meta["training_data"]["n_items"] > 50 and len(meta["training_data"]["sha256"]) == 64
    assert set(meta["types"]) <= TAGGER_TYPES
    assert (
        (directory / version / "MODEL_CARD.md").read_text().startswith("# Model card: breach-kind")
    )


def test_tags_are_in_vocabulary_order_with_every_score(small_tagger: tuple[Path, str]) -> None:
    tagger = load_tagger(*small_tagger)
    (tags,) = tagger.tag(
        ["North Korea fired an intercontinental ballistic missile into the sea, a banned launch."]
    )
    assert tags.kinds == ("banned-launch",) or "banned-launch" in tags.kinds
    assert list(tags.kinds) == [k for k in BREACH_KINDS if k in tags.kinds]
    assert set(tags.scores) == set(SMALL) and all(0 <= v <= 1 for v in tags.scores.values())
    (hack,) = tagger.tag(["Lazarus hackers stole $600 million in crypto from a bridge."])
    assert "cyber-theft" in hack.kinds


def test_evaluation_report(small_tagger: tuple[Path, str]) -> None:
    tagger = load_tagger(*small_tagger)
    items = [
        {
            "label": 1,
            "title": "Hackers stole crypto from an exchange",
            "breach_kinds": ["cyber-theft"],
        },
        {"label": 0, "title": "A parade in Pyongyang"},  # negatives are not tagged
        {"label": 1, "title": "Title without kinds"},  # counted, skipped
    ]
    report = evaluate_tagger(tagger, items)
    assert report["n"] == 1 and report["skipped_without_kinds"] == 1
    assert report["per_kind"]["cyber-theft"]["support"] == 1
    assert report["macro_f1"] == report["per_kind"]["cyber-theft"]["f1"]  # only kinds present


def _copy(small_tagger: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    directory, version = small_tagger
    shutil.copytree(directory / version, tmp_path / version)
    return tmp_path, version


def _edit_meta(path: Path, **changes: object) -> None:
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def test_a_tampered_file_is_refused(small_tagger: tuple[Path, str], tmp_path: Path) -> None:
    directory, version = _copy(small_tagger, tmp_path)
    model = directory / version / "model.skops"
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="does not match its recorded SHA-256"):
        load_tagger(directory, version)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sklearn_version": "0.1"}, "trained with scikit-learn 0.1"),
        ({"input": "text+kind-cues/v1", "cues_sha256": "0" * 64}, "another table of kind cues"),
        ({"input": "text+emoji/v9"}, "is not one this code makes"),
        ({"task": "something-else"}, "is not 'breach-kinds/v1'"),
        ({"kinds": ["arms-transfer", "made-up"]}, "not in the vocabulary"),
        ({"kinds": ["arms-transfer"]}, "do not match its kinds"),
        ({"thresholds": {"arms-transfer": 1.5}}, "threshold of arms-transfer is 1.5"),
    ],
)
def test_metadata_mismatches_are_refused(
    small_tagger: tuple[Path, str], tmp_path: Path, changes: dict, message: str
) -> None:
    directory, version = _copy(small_tagger, tmp_path)
    _edit_meta(directory / version / "metadata.json", **changes)
    with pytest.raises(ModelError, match=message):
        load_tagger(directory, version)


def test_types_the_main_registry_allows_but_the_tagger_does_not(tmp_path: Path) -> None:
    assert "sklearn.preprocessing._data.StandardScaler" in ALLOWED_TYPES - TAGGER_TYPES
    estimator = {"features": StandardScaler(), "columns": [0], "kind:other": StandardScaler()}
    with pytest.raises(ModelError, match="outside the tagger allow-list"):
        save_tagger(tmp_path, "v1", estimator, {"kinds": ["other"]}, "card")
    assert not (tmp_path / "v1").exists()
    # written through the main registry (which allows it), the tagger loader still refuses it
    save_model(tmp_path, "v2", estimator, {"task": "breach-kinds/v1", "kinds": ["other"]}, "card")
    with pytest.raises(ModelError, match="refused, holds types outside the allow-list"):
        load_tagger(tmp_path, "v2")


def test_promotion_and_fallback_to_the_previous_tagger(
    small_tagger: tuple[Path, str], tmp_path: Path
) -> None:
    directory, version = _copy(small_tagger, tmp_path)
    with pytest.raises(ModelError, match="no tagger is active"):
        load_active_tagger(directory)
    promote_tagger(directory, version, now=NOW)
    shutil.copytree(directory / version, directory / "broken")
    _edit_meta(directory / "broken" / "metadata.json", sklearn_version="0.1")
    with pytest.raises(ModelError):
        promote_tagger(directory, "broken", now=NOW)  # a version that does not load is not promoted
    pointer = json.loads((directory / "registry.json").read_text())
    pointer["active"] = "broken"
    (directory / "registry.json").write_text(json.dumps(pointer))
    assert load_active_tagger(directory).version == version  # the refused one is skipped


def test_cues_mark_kinds_across_languages() -> None:
    for text in (
        "Somali charcoal",
        "북한산 석탄",
        "уголь из КНДР",
        "朝鲜煤炭",
        "الفحم الصومالي",
        "charbon",
    ):
        assert "kindcue_banned_export" in with_cues(text), text
    assert with_cues("A quiet day at the border.") == "A quiet day at the border."


# ------------------------------------------------------------------------ the shipped tagger


@pytest.fixture(scope="module")
def shipped():
    return load_active_tagger(ROOT / "models" / KINDS_DIR)


@pytest.mark.parametrize(
    "split",
    [ROOT / "data" / "test" / "frozen.jsonl", ROOT / "data" / "holdout" / "independent.jsonl"],
)
def test_shipped_tagger_on_the_measured_sets(shipped, split: Path) -> None:
    """Issue 14's bar: each kind with at least 10 test items reaches F1 0.80, except the shortfalls
    pinned, with their measured figures and reasons, in models/kinds/baseline.json."""
    baseline = json.loads((ROOT / "models" / KINDS_DIR / "baseline.json").read_text())
    report = evaluate_tagger(shipped, load_items([split]))
    assert report["n"] > 100 and report["macro_f1"] >= baseline["macro_f1"][split.name]
    floors = baseline["shortfalls"].get(split.name, {})
    for kind, m in report["per_kind"].items():
        if m["support"] >= baseline["min_support"]:
            assert m["f1"] >= floors.get(kind, baseline["bar"]), (kind, m)
