"""The model store outside the repository: train writes there, the registry lives there, the shipped
models are the read-only fallback; a URL store (fsspec) works the same way."""

from __future__ import annotations

import json
import shutil
import uuid
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
    publish,
    rollback,
    writable_dir,
)
from pipeline.config import ModelLocations
from pipeline.errors import ModelError
from pipeline.training.corpus import load_items
from pipeline.training.train import train_model

DPRK = ROOT / "data" / "corpus" / "dprk.jsonl"


def _passed(version: str) -> GateVerdict:
    return GateVerdict(version, ())


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str, str]:
    """Two small real versions in one folder: v1 (to ship) and v2 (to put in a store)."""
    folder = tmp_path_factory.mktemp("versions")
    items = load_items([DPRK])
    v1 = train_model(
        items[::2], model_dir=folder, now=NOW, candidates=["tfidf-word-lr"], folds=3
    ).version
    v2 = train_model(
        items[1::2],
        model_dir=folder,
        now=NOW.replace(hour=13),
        candidates=["tfidf-word-lr"],
        folds=3,
    ).version
    return folder, v1, v2


@pytest.fixture
def shipped(trained, tmp_path: Path) -> tuple[Path, str, str]:
    """A read-only shipped folder with v1 active (its registry written by a real promotion)."""
    folder, v1, v2 = trained
    ship = tmp_path / "models"
    shutil.copytree(folder / v1, ship / v1)
    promote(ship, v1, now=NOW, verdict=_passed(v1))
    return ship, v1, v2


def test_an_empty_store_serves_the_shipped_model_and_lists_both_places(
    shipped, trained, tmp_path: Path
) -> None:
    ship, v1, v2 = shipped
    where = ModelLocations(str(tmp_path / "store"), ship, tmp_path / "cache")
    assert load_active(where).version == v1
    assert promotion_history(where) == [v1]
    assert [(i.version, i.place, i.active) for i in list_models(where)] == [(v1, "shipped", True)]
    # a new version goes into the store, never into the shipped folder
    assert writable_dir(where) == tmp_path / "store"
    shutil.copytree(trained[0] / v2, tmp_path / "store" / v2)
    listed = {i.version: (i.place, i.active) for i in list_models(where)}
    assert listed == {v1: ("shipped", True), v2: ("store", False)}


def test_promotion_and_rollback_write_the_store_registry_and_leave_models_untouched(
    shipped, trained, tmp_path: Path
) -> None:
    ship, v1, v2 = shipped
    before = (ship / "registry.json").read_bytes()
    store = tmp_path / "store"
    shutil.copytree(trained[0] / v2, store / v2)
    where = ModelLocations(str(store), ship, tmp_path / "cache")
    promote(where, v2, now=NOW, verdict=_passed(v2), actor="test")
    assert load_active(where).version == v2
    saved = json.loads((store / "registry.json").read_text())
    assert saved["active"] == v2 and saved["promotions"] == [v1, v2]  # shipped history carried over
    assert "inherited_from" not in saved
    assert (ship / "registry.json").read_bytes() == before  # the shipped registry never changes
    assert rollback(where, now=NOW) == v1  # the shipped default is the rollback target
    assert load_active(where).version == v1
    with pytest.raises(ModelError, match="nothing to roll back to"):
        rollback(where, now=NOW)
    assert (ship / "registry.json").read_bytes() == before


def test_a_version_in_neither_place_is_refused_naming_both(shipped, tmp_path: Path) -> None:
    ship, _, _ = shipped
    where = ModelLocations(str(tmp_path / "store"), ship, tmp_path / "cache")
    with pytest.raises(ModelError, match=r"no folder for it in .*store nor in .*models"):
        load_version(where, "20990101-000000-nope")
    with pytest.raises(ModelError, match="not a version name"):
        load_version(where, "../models")


def test_a_url_store_through_fsspec_works_the_same_way(shipped, trained, tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    ship, v1, v2 = shipped
    url = f"memory://sw-test-{uuid.uuid4().hex}/models"
    where = ModelLocations(url, ship, tmp_path / "cache")
    assert load_active(where).version == v1  # nothing in the store yet: the shipped model
    staging = writable_dir(where)
    assert staging.is_relative_to(tmp_path / "cache")
    shutil.copytree(trained[0] / v2, staging / v2)
    fs = fsspec.filesystem("memory")
    # before publishing, the version is not in the store
    assert [i.version for i in list_models(where)] == [v1]
    publish(where, v2)
    assert fs.exists(f"{url.removeprefix('memory://')}/{v2}/metadata.json")
    promote(where, v2, now=NOW, verdict=_passed(v2))
    assert json.loads(fs.cat_file(f"{url.removeprefix('memory://')}/registry.json"))["active"] == v2
    shutil.rmtree(staging / v2)  # served from the store (copied to the cache), not from staging
    model = load_active(where)
    assert model.version == v2 and model.threshold > 0
    assert {i.version: i.place for i in list_models(where)} == {v1: "shipped", v2: "store"}
    assert not (ship / v2).exists()


def test_a_half_uploaded_url_version_is_invisible(shipped, trained, tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    ship, v1, v2 = shipped
    url = f"memory://sw-test-{uuid.uuid4().hex}/models"
    root = url.removeprefix("memory://")
    fs = fsspec.filesystem("memory")
    fs.pipe_file(f"{root}/{v2}/model.skops", (trained[0] / v2 / "model.skops").read_bytes())
    where = ModelLocations(url, ship, tmp_path / "cache")
    assert [i.version for i in list_models(where)] == [v1]
    with pytest.raises(ModelError, match="no folder for it"):
        load_version(where, v2)


def test_an_unknown_url_scheme_is_refused_clearly(shipped, tmp_path: Path) -> None:
    ship, _, _ = shipped
    where = ModelLocations("nosuchscheme://bucket/models", ship, tmp_path / "cache")
    with pytest.raises(ModelError, match="no fsspec backend"):
        load_active(where)


def test_config_reads_model_store_default_relative_and_url(make_config, tmp_path: Path) -> None:
    config = make_config()
    assert config.model_dir.store == str(tmp_path / "var" / "models")  # under base_dir
    assert config.model_dir.shipped == ROOT / "models"
    assert config.model_dir / "kinds" == ROOT / "models" / "kinds"  # the tagger stays shipped
    url = make_config(settings={"model_store": "s3://bucket/sw/models"})
    assert url.model_dir.store == "s3://bucket/sw/models"
    rel = make_config(settings={"model_store": "elsewhere/models"})
    assert rel.model_dir.store == str(tmp_path / "elsewhere" / "models")


def test_the_models_command_shows_both_places_and_writes_only_the_store(
    shipped, trained, tmp_path: Path, make_config, run_cli
) -> None:
    ship, v1, v2 = shipped
    store = tmp_path / "store"
    shutil.copytree(trained[0] / v2, store / v2)
    config = make_config(model_dir=ship, settings={"model_store": str(store)})
    args = ["--config", str(config.config_dir)]
    code, listing, _ = run_cli("models", "list", *args)
    assert code == 0 and f"model store: {store} (shipped: {ship})" in listing
    rows = [
        line.replace("*", "* ", 1).split() for line in listing.splitlines() if "threshold" in line
    ]
    assert [r[:3] for r in rows] == [["*", v1, "shipped"], [v2, "store", "tfidf-word-lr"]]
    code, shown, _ = run_cli("models", "show", v2, *args)
    assert code == 0 and json.loads(shown)["place"] == "store"
    code, _, err = run_cli("models", "show", "nope", *args)
    assert code == 2 and "nor among the shipped models" in err
    code, _, err = run_cli("models", "rollback", *args)
    assert code == 2 and "nothing to roll back to" in err
    assert not (store / "registry.json").exists()  # a refused rollback writes nothing
    assert sorted(p.name for p in ship.iterdir()) == sorted([v1, "registry.json"])
