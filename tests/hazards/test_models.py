"""Hazards: model artefacts that are not what they claim, and writes cut short.

A copy of the shipped registry (``models/``: the active fusion model and the TF-IDF model it
replaced) is tampered with: a pickle renamed as the model file (that would run code when loaded), a
type outside the allow-list (a real estimator, and a crafted schema naming ``os.system``), a flipped
byte, a truncated file, another scikit-learn version in the metadata. Each is refused, and the
previous version keeps serving, through the pipeline's classify stage. Writes of a new version and
of the registry are killed half-way (a subprocess that ``os._exit``\\ s): nothing half-written is ever
served.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hazardkit import REPO, clean_env, entry
from helpers import NOW, ROOT
from sqlalchemy import select

from pipeline.classify.registry import list_models, load_version
from pipeline.config import FeedConfig
from pipeline.errors import ModelError
from pipeline.jobs import Runtime, classify
from pipeline.store.articles import sync_feeds, upsert_entries
from pipeline.store.schema import Classification

pytestmark = pytest.mark.timeout(120)


def _rewrite(path: Path, data: bytes) -> None:
    """Replace a file with new bytes through a new inode (the copy's files are hard links to the
    repository's: writing in place would change the shipped model)."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _set_meta(version_dir: Path, **changes: object) -> None:
    meta = json.loads((version_dir / "metadata.json").read_text())
    meta.update(changes)
    _rewrite(version_dir / "metadata.json", json.dumps(meta).encode())


def _rehash(version_dir: Path) -> None:
    """What an attacker who can write the folder does: make the recorded SHA-256 match again."""
    _set_meta(
        version_dir,
        model_sha256=hashlib.sha256((version_dir / "model.skops").read_bytes()).hexdigest(),
    )


@dataclass(frozen=True)
class Registry:
    path: Path
    active: str
    previous: str  # what load_active falls back to: the most recent other version once active


@pytest.fixture
def models(tmp_path: Path) -> Registry:
    """A copy of the shipped registry (hard links where possible), taken now: the classifier's
    owners promote new versions, so nothing here assumes which ones."""
    copy = tmp_path / "models"

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:  # another file system: copy
            shutil.copy2(src, dst)

    shutil.copytree(ROOT / "models", copy, copy_function=link)
    registry = json.loads((copy / "registry.json").read_text())
    active = registry["active"]
    previous = next(
        e["version"]
        for e in reversed(registry["history"])
        if e.get("action") in ("promote", "rollback") and e["version"] != active
    )
    return Registry(copy, active, previous)


class _Exploit:
    """Unpickling this creates a marker file: proof that loading ran attacker code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "pwned"))


def _tamper(version_dir: Path, how: str, marker: Path) -> None:
    model = version_dir / "model.skops"
    if how == "pickle-renamed":
        _rewrite(model, pickle.dumps(_Exploit(marker)))
        _rehash(version_dir)
    elif how == "type-outside-allow-list":
        import skops.io as sio
        from sklearn.ensemble import RandomForestClassifier

        sio.dump(RandomForestClassifier(n_estimators=1), version_dir / "rf.skops")
        os.replace(version_dir / "rf.skops", model)
        _rehash(version_dir)
    elif how == "crafted-schema-os-system":
        with zipfile.ZipFile(model) as src:
            files = {n: src.read(n) for n in src.namelist()}
        schema = json.loads(files["schema.json"])
        schema["evil"] = {"__class__": "system", "__module__": "os", "__loader__": "ObjectNode"}
        files["schema.json"] = json.dumps(schema).encode()
        tmp = version_dir / "crafted.skops"
        with zipfile.ZipFile(tmp, "w") as dst:
            for name, data in files.items():
                dst.writestr(name, data)
        os.replace(tmp, model)
        _rehash(version_dir)
    elif how == "flipped-byte":
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF
        _rewrite(model, bytes(data))
    elif how == "truncated":
        _rewrite(model, model.read_bytes()[: len(model.read_bytes()) // 3])
    elif how == "other-sklearn-version":
        _set_meta(version_dir, sklearn_version="1.2.2")
    else:  # pragma: no cover
        raise AssertionError(how)


def _classify(config, titles: list[str]) -> tuple[Any, set[str]]:
    """One feed's articles ``titles`` stored and classified: the report and the model versions
    their verdicts name."""
    rt = Runtime.open(config)
    try:
        with rt.sessions.begin() as s:
            sync_feeds(s, [FeedConfig(id="a", name="A", url="https://a.example/rss")])
            upsert_entries(s, [entry("a", t) for t in titles], now=NOW)
        report = classify(rt, now=NOW)
        with rt.sessions() as s:
            versions = set(s.scalars(select(Classification.model_version)))
    finally:
        rt.close()
    return report, versions


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("pickle-renamed", "not a skops file"),
        ("type-outside-allow-list", "outside the allow-list"),
        ("crafted-schema-os-system", "outside the allow-list: .*os.system"),
        ("flipped-byte", "SHA-256"),
        ("truncated", "SHA-256"),
        ("other-sklearn-version", "scikit-learn 1.2.2"),
    ],
)
def test_a_bad_active_model_is_refused_and_the_previous_keeps_serving(
    models: Registry,
    make_config,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    how: str,
    reason: str,
) -> None:
    marker = tmp_path / "pwned"
    _tamper(models.path / models.active, how, marker)
    with pytest.raises(ModelError, match=reason):
        load_version(models.path, models.active)
    assert not marker.exists()

    # The pipeline's classify stage serves the previous version, and says why.
    registry_before = (models.path / "registry.json").read_bytes()
    report, versions = _classify(make_config(model_dir=models.path), ["1"])
    assert report["model_version"] == models.previous and versions == {models.previous}
    messages = [r.getMessage() for r in caplog.records if r.name == "pipeline.classify.registry"]
    assert any(reason.split(":")[0].split(".*")[0] in m for m in messages if "refusing" in m)
    assert any(f"serving fallback model {models.previous}" in m for m in messages)
    assert not marker.exists()
    assert (models.path / "registry.json").read_bytes() == registry_before  # nothing rewritten


@pytest.mark.parametrize("how", ["pickle-renamed", "flipped-byte"])
def test_scoring_workers_refuse_a_bad_active_model_too(
    models: Registry, make_config, tmp_path: Path, monkeypatch, caplog, how: str
) -> None:
    """With worker processes, the calling process does not load the model: the workers do, with
    the same checks. A bad active version fails their start; the run then loads (and serves) the
    previous version as above, and no worker ran the file's code."""
    monkeypatch.setattr("pipeline.classify.pool.MIN_ARTICLES_PER_PROCESS", 1)
    monkeypatch.setattr("pipeline.classify.cycle.MIN_ARTICLES_PER_PROCESS", 1)
    marker = tmp_path / "pwned"
    _tamper(models.path / models.active, how, marker)
    config = make_config(model_dir=models.path, settings={"classify": {"processes": 2}})
    report, versions = _classify(config, ["1", "2", "3"])
    assert report["model_version"] == models.previous and versions == {models.previous}
    assert "the scoring workers did not start" in caplog.text
    assert not marker.exists()


# ------------------------------------------------------------------------------ atomic writes

_SAVE_AND_DIE = """
import os, sys
from pathlib import Path
import numpy as np
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from pipeline.classify import registry

where = sys.argv[2]
real_dump = sio.dump

def dump_then_die(obj, file):
    real_dump(obj, file)
    if where == "model":  # killed with the model file half-written
        data = Path(file).read_bytes()
        Path(file).write_bytes(data[: len(data) // 2])
        os._exit(70)

sio.dump = dump_then_die
real_replace = os.replace

def replace_then_die(src, dst):
    if where == "rename" and Path(dst).name == "new-version":
        os._exit(70)  # killed just before the folder is renamed into place
    if where == "registry" and Path(dst).name == "registry.json":
        os._exit(70)  # killed with the new registry written to its temp file only
    return real_replace(src, dst)

os.replace = replace_then_die
estimator = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
if where == "registry":
    from datetime import UTC, datetime
    registry.rollback(Path(sys.argv[1]), now=datetime(2026, 11, 27, tzinfo=UTC))
else:
    registry.save_model(Path(sys.argv[1]), "new-version", estimator, {"threshold": 0.5}, "card")
"""


@pytest.mark.parametrize("where", ["model", "rename", "registry"])
def test_a_write_killed_half_way_is_never_served(models: Registry, where: str) -> None:
    before = (models.path / "registry.json").read_bytes()
    out = subprocess.run(
        [sys.executable, "-c", _SAVE_AND_DIE, str(models.path), where],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert out.returncode == 70, out.stderr[-3000:]
    # The half-written version is invisible: no folder by its name, not listed, not loadable.
    assert not (models.path / "new-version").exists()
    assert "new-version" not in {m.version for m in list_models(models.path)}
    with pytest.raises(ModelError):
        load_version(models.path, "new-version")
    # The registry is the old one, whole.
    assert (models.path / "registry.json").read_bytes() == before
    assert json.loads(before)["active"] == models.active
