"""The model registry: versioned artefacts under ``models/``, verified before they are served.

Layout::

    models/registry.json          {"active": "<version>", "history": [...]}
    models/<version>/model.skops  the estimator, in skops' safe format (never pickle)
    models/<version>/metadata.json
    models/<version>/MODEL_CARD.md

The loader refuses a file whose SHA-256, scikit-learn version or feature schema does not match its
metadata, or that holds a type outside :data:`ALLOWED_TYPES`; :func:`load_active` then falls back to the
previous good version, so a broken promotion never stops scoring.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.classify.model import FEATURE_SCHEMA, TextModel
from pipeline.errors import ModelError

__all__ = [
    "ALLOWED_TYPES",
    "ModelInfo",
    "list_models",
    "load_active",
    "load_version",
    "promote",
    "rollback",
    "save_model",
]

log = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
REGISTRY_FILE = "registry.json"

# Every type a served model may contain. skops refuses anything else, so a crafted file cannot make
# the loader build arbitrary objects. Extend deliberately, with review, when a new model kind arrives.
ALLOWED_TYPES = frozenset(
    {
        "builtins.bool",
        "builtins.dict",
        "builtins.float",
        "builtins.int",
        "builtins.list",
        "builtins.NoneType",
        "builtins.slice",
        "builtins.str",
        "builtins.tuple",
        "numpy.float32",
        "collections.OrderedDict",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "scipy.sparse._csr.csr_matrix",
        "sklearn.feature_extraction.text.HashingVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._stochastic_gradient.SGDClassifier",
        "sklearn.pipeline.FeatureUnion",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.svm._classes.LinearSVC",
    }
)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    version: str
    path: Path
    metadata: Mapping[str, Any]
    active: bool


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def types_in(path: Path) -> set[str]:
    """Every type a skops file would build, read from its schema (without building anything)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > 64 * 1024 * 1024:
                raise ModelError(f"{path.name}: schema.json is implausibly large")
            schema = json.loads(archive.read(info))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as err:
        raise ModelError(f"{path.name} is not a skops file: {type(err).__name__}: {err}") from err
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("__class__"), str) and isinstance(node.get("__module__"), str):
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_registry(model_dir: Path) -> dict[str, Any]:
    path = model_dir / REGISTRY_FILE
    if not path.exists():
        return {"active": None, "history": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: unreadable registry: {err}") from err
    if not isinstance(data, dict) or "history" not in data:
        raise ModelError(f"{path}: not a registry file (no 'history')")
    return data


def _read_metadata(version_dir: Path) -> dict[str, Any]:
    path = version_dir / "metadata.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ModelError(f"model {version_dir.name}: metadata.json is missing") from err
    except (OSError, ValueError) as err:
        raise ModelError(f"model {version_dir.name}: metadata.json unreadable: {err}") from err
    if not isinstance(data, dict):
        raise ModelError(f"model {version_dir.name}: metadata.json is not an object")
    return data


def save_model(
    model_dir: Path, version: str, estimator: Any, metadata: Mapping[str, Any], card: str
) -> Path:
    """Write a new version atomically (a temp folder renamed into place). Does not promote it."""
    import sklearn
    import skops
    import skops.io as sio

    model_dir.mkdir(parents=True, exist_ok=True)
    final = model_dir / version
    if final.exists():
        raise ModelError(f"model {version} already exists in {model_dir}")
    tmp = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".{version}."))
    try:
        sio.dump(estimator, tmp / MODEL_FILE)
        types = sorted(types_in(tmp / MODEL_FILE))
        outside = sorted(set(types) - ALLOWED_TYPES)
        if outside:
            raise ModelError(f"model {version} holds types outside the allow-list: {outside}")
        meta = {
            **metadata,
            "version": version,
            "model_file": MODEL_FILE,
            "model_sha256": _sha256(tmp / MODEL_FILE),
            "feature_schema": FEATURE_SCHEMA,
            "sklearn_version": sklearn.__version__,
            "skops_version": skops.__version__,
            "types": types,
        }
        _write_json_atomic(tmp / "metadata.json", meta)
        (tmp / "MODEL_CARD.md").write_text(card, encoding="utf-8")
        for child in tmp.iterdir():
            child.chmod(0o644)
        tmp.chmod(0o755)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved model %s to %s", version, final)
    return final


def load_version(model_dir: Path, version: str, *, embed_workers: int = 1) -> TextModel:
    """Load one version after verifying hash, library version, schema and types against metadata."""
    import sklearn
    import skops.io as sio

    vdir = model_dir / version
    if not vdir.is_dir():
        raise ModelError(f"model {version}: no folder {vdir}")
    meta = _read_metadata(vdir)
    path = vdir / str(meta.get("model_file", MODEL_FILE))
    if not path.is_file():
        raise ModelError(f"model {version}: {path.name} is missing")
    if meta.get("sklearn_version") != sklearn.__version__:
        raise ModelError(
            f"model {version}: trained with scikit-learn {meta.get('sklearn_version')}, "
            f"this installation has {sklearn.__version__}; retrain or install the matching version"
        )
    if meta.get("feature_schema") != FEATURE_SCHEMA:
        raise ModelError(
            f"model {version}: feature schema {meta.get('feature_schema')!r} is not "
            f"{FEATURE_SCHEMA!r}, the one this code serves"
        )
    digest = _sha256(path)
    if digest != meta.get("model_sha256"):
        raise ModelError(f"model {version}: {path.name} does not match its recorded SHA-256")
    try:
        outside = sorted(types_in(path) - ALLOWED_TYPES)
        if outside:
            raise ModelError(
                f"model {version}: refused, holds types outside the allow-list: {outside}"
            )
        untrusted = set(sio.get_untrusted_types(file=path))
        estimator = sio.load(path, trusted=sorted(untrusted & ALLOWED_TYPES))
    except ModelError:
        raise
    except Exception as err:
        raise ModelError(
            f"model {version}: {path.name} cannot be loaded: {type(err).__name__}: {err}"
        ) from err
    threshold = meta.get("threshold")
    calibration = meta.get("calibration") or {}
    if not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise ModelError(f"model {version}: metadata threshold {threshold!r} is not in (0, 1)")
    kind = meta.get("kind", "tfidf")
    parts = estimator if isinstance(estimator, dict) else {"tfidf": estimator}
    expected = {
        "tfidf": {"tfidf"},
        "embedding": {"embedding_head"},
        "fusion": {"tfidf", "embedding_head"},
    }
    if kind not in expected or set(parts) != expected[kind]:
        raise ModelError(
            f"model {version}: kind {kind!r} does not match the stored parts {sorted(parts)}"
        )
    if not all(hasattr(part, "decision_function") for part in parts.values()):
        raise ModelError(f"model {version}: a stored part has no decision_function")
    embedder = None
    if "embedding_head" in parts:
        from pipeline.classify.embeddings import Embedder, embedder_version

        installed = embedder_version()
        if meta.get("embedder") != installed:
            raise ModelError(
                f"model {version}: trained with embeddings {meta.get('embedder')!r}, "
                f"this installation has {installed!r}"
            )
        embedder = Embedder(workers=embed_workers)
    return TextModel(
        estimator=estimator,
        version=version,
        threshold=float(threshold),
        calibration={k: float(v) for k, v in calibration.items()},
        metadata=meta,
        embedder=embedder,
    )


def load_active(
    model_dir: Path, *, threshold: float | None = None, embed_workers: int = 1
) -> TextModel:
    """The active model; if it is refused, the most recent previously active version that loads."""
    registry = _read_registry(model_dir)
    candidates: list[str] = []
    if registry.get("active"):
        candidates.append(registry["active"])
    for event in reversed(registry.get("history", [])):
        v = event.get("version")
        if v and v not in candidates and event.get("action") in ("promote", "rollback"):
            candidates.append(v)
    if not candidates:
        raise ModelError(
            f"no model is active in {model_dir}; train one with `sanctions-watch train`"
        )
    errors: list[str] = []
    for version in candidates:
        try:
            model = load_version(model_dir, version, embed_workers=embed_workers)
        except ModelError as err:
            log.error("refusing model: %s", err)
            errors.append(str(err))
            continue
        if errors:
            log.error("serving fallback model %s because the active one was refused", version)
        if threshold is not None:
            model.threshold = threshold
        return model
    raise ModelError("no servable model: " + "; ".join(errors))


def list_models(model_dir: Path) -> list[ModelInfo]:
    registry = _read_registry(model_dir)
    out: list[ModelInfo] = []
    if not model_dir.is_dir():
        return out
    for vdir in sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            meta = _read_metadata(vdir)
        except ModelError as err:
            meta = {"error": str(err)}
        out.append(ModelInfo(vdir.name, vdir, meta, vdir.name == registry.get("active")))
    return out


def promote(model_dir: Path, version: str, *, now: datetime, actor: str = "cli") -> None:
    """Make ``version`` active after checking that it loads."""
    load_version(model_dir, version)
    registry = _read_registry(model_dir)
    previous = registry.get("active")
    registry["active"] = version
    registry["history"].append(
        {
            "action": "promote",
            "version": version,
            "previous": previous,
            "at": now.isoformat(),
            "by": actor,
        }
    )
    _write_json_atomic(model_dir / REGISTRY_FILE, registry)
    log.info("promoted model %s (was %s)", version, previous)


def rollback(model_dir: Path, *, now: datetime, actor: str = "cli") -> str:
    """Re-activate the version that was active before the current one; returns it."""
    registry = _read_registry(model_dir)
    current = registry.get("active")
    seen: list[str] = []
    for event in registry.get("history", []):
        v = event.get("version")
        if event.get("action") in ("promote", "rollback") and v:
            seen.append(v)
    # Walk back through the activation history to the last version that differs from the current one.
    for version in reversed(seen):
        if version != current:
            load_version(model_dir, version)
            registry["active"] = version
            registry["history"].append(
                {
                    "action": "rollback",
                    "version": version,
                    "previous": current,
                    "at": now.isoformat(),
                    "by": actor,
                }
            )
            _write_json_atomic(model_dir / REGISTRY_FILE, registry)
            log.info("rolled back from %s to %s", current, version)
            return version
    raise ModelError(f"nothing to roll back to: {current} is the only version ever active")
