"""The model registry: versioned artefacts in a model store, verified before they are served.

Where versions live (the model store and the shipped ``models/`` folder, local or fsspec URL), the
registry file's promotion history and listing versions are :mod:`pipeline.classify.modelstore`; its
public names are re-exported here. This module writes a new version (:func:`save_model`), verifies
and loads one into a :class:`~pipeline.classify.model.TextModel`, and promotes and rolls back.

The loader refuses a file whose SHA-256, scikit-learn version or feature schema does not match its
metadata, or that holds a type outside :data:`ALLOWED_TYPES`; :func:`load_active` then falls back to the
previous good version, so a broken promotion never stops scoring.

:func:`promote` pushes onto the registry's promotion history, :func:`rollback` pops it, so
successive rollbacks step back through every version promoted before (C → B → A), never toggling
between the last two; each is recorded in the registry's ``history``.

Every promotion carries a :class:`GateVerdict` for the very version promoted (the quality gate's
failures, or an explicit override naming who forced it and why); :func:`promote` refuses a verdict that
names another version, or one with failures and no override, and records the verdict in ``history``.
The verdict is made by :mod:`pipeline.training.promotion` (the gate lives in ``training``, which this
stage may not import); it is the only route the CLI and the DAGs take.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.classify.model import FEATURE_SCHEMA, LEGACY_SCHEMA, SUPPORTED_SCHEMAS, TextModel
from pipeline.classify.modelstore import MODEL_FILE as MODEL_FILE
from pipeline.classify.modelstore import REGISTRY_FILE as REGISTRY_FILE
from pipeline.classify.modelstore import (
    ModelInfo,
    ModelStore,
    Where,
    list_models,
    promotion_history,
    promotion_stack,
    publish,
    read_metadata,
    read_registry,
    store_label,
    writable_dir,
    write_json_atomic,
)
from pipeline.errors import GateError, ModelError

__all__ = [
    "ALLOWED_TYPES",
    "GateVerdict",
    "ModelInfo",
    "Where",
    "active_version",
    "list_models",
    "load_active",
    "load_version",
    "promote",
    "promotion_history",
    "publish",
    "rollback",
    "save_model",
    "store_label",
    "writable_dir",
]

log = logging.getLogger(__name__)

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
class GateVerdict:
    """The quality gate's verdict on one version: ``failures`` empty when it passed. A failed verdict
    allows promotion only when forced, with both ``forced_by`` and ``reason`` given."""

    version: str
    failures: tuple[str, ...]
    forced_by: str | None = None
    reason: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def forced(self) -> bool:
        return bool(
            self.forced_by and self.forced_by.strip() and self.reason and self.reason.strip()
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failures": list(self.failures),
            "forced_by": self.forced_by,
            "reason": self.reason,
            "metrics": dict(self.metrics),
        }


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
            "feature_schema": FEATURE_SCHEMA if "combiner" in metadata else LEGACY_SCHEMA,
            "sklearn_version": sklearn.__version__,
            "skops_version": skops.__version__,
            "types": types,
        }
        write_json_atomic(tmp / "metadata.json", meta)
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


def load_version(model_dir: Where, version: str, *, embed_workers: int = 1) -> TextModel:
    """Load one version (from the store, else the shipped folder) after verifying hash, library
    version, schema and types against metadata."""
    import sklearn
    import skops.io as sio

    vdir = ModelStore(model_dir).local_dir(version)
    meta = read_metadata(vdir)
    path = vdir / str(meta.get("model_file", MODEL_FILE))
    if not path.is_file():
        raise ModelError(f"model {version}: {path.name} is missing")
    if meta.get("sklearn_version") != sklearn.__version__:
        raise ModelError(
            f"model {version}: trained with scikit-learn {meta.get('sklearn_version')}, "
            f"this installation has {sklearn.__version__}; retrain or install the matching version"
        )
    schema = meta.get("feature_schema")
    if schema not in SUPPORTED_SCHEMAS:
        raise ModelError(
            f"model {version}: feature schema {schema!r} is not one this code serves "
            f"({', '.join(sorted(SUPPORTED_SCHEMAS))})"
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
    if schema == FEATURE_SCHEMA:
        expected = {
            "tfidf": {"tfidf", "general", "combiner"},
            "fusion": {"tfidf", "general", "embedding_head", "combiner", "combiner_sparse"},
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
    model_dir: Where, *, threshold: float | None = None, embed_workers: int = 1
) -> TextModel:
    """The active model; if it is refused, the most recent earlier promotion that loads (never a
    version that was rolled back)."""
    registry = read_registry(model_dir)
    candidates: list[str] = []
    for v in [registry.get("active"), *reversed(promotion_stack(registry))]:
        if v and v not in candidates:
            candidates.append(v)
    if not candidates:
        raise ModelError(
            f"no model is active in {store_label(model_dir)}; "
            "train one with `sanctions-watch train`"
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


def active_version(model_dir: Where, *, threshold: float | None = None) -> tuple[str, float]:
    """The active version and the threshold it serves with (``threshold`` when set, else its
    metadata's), read from the registry and metadata without loading or verifying the model, for a
    process that has others load it (the scoring workers verify it as :func:`load_version` does).
    :class:`ModelError` when no version is active or its metadata is unreadable; a caller that gets
    one, or whose workers refuse the version, falls back to :func:`load_active`."""
    version = read_registry(model_dir).get("active")
    if not isinstance(version, str) or not version:
        raise ModelError(f"no model is active in {store_label(model_dir)}")
    meta = read_metadata(ModelStore(model_dir).local_dir(version))
    stored = meta.get("threshold")
    if not isinstance(stored, int | float) or not 0 < stored < 1:
        raise ModelError(f"model {version}: metadata threshold {stored!r} is not in (0, 1)")
    return version, float(stored if threshold is None else threshold)


def check_verdict(verdict: GateVerdict, version: str, *, what: str, gate: str) -> None:
    """Refuse a promotion ``verdict`` does not allow: one made for another version, or a failed gate
    not forced (:class:`GateError` naming every failure); log a forced one as a warning. Shared by
    the model's and the breach-kind tagger's promotions (``what``: "model" or "tagger")."""
    if verdict.version != version:
        raise GateError(
            f"{what} {version}: the gate verdict given is for {verdict.version}; "
            "a verdict promotes only the version it was made for"
        )
    if not verdict.passed and not verdict.forced:
        raise GateError(
            f"{what} {version}: promotion refused by the {gate} ("
            + "; ".join(verdict.failures)
            + ")",
            verdict.failures,
        )
    if not verdict.passed:
        log.warning(
            "%s %s promoted despite %d gate failure(s), forced by %s: %s",
            what,
            version,
            len(verdict.failures),
            verdict.forced_by,
            verdict.reason,
        )


def promote(
    model_dir: Where, version: str, *, now: datetime, verdict: GateVerdict, actor: str = "cli"
) -> None:
    """Make ``version`` active after checking that it loads and that ``verdict`` (the quality gate's,
    for this version) allows it; pushed onto the promotion history, the verdict recorded with it.

    Raises :class:`GateError` (naming every failure) when the gate failed and was not forced."""
    check_verdict(verdict, version, what="model", gate="quality gate")
    load_version(model_dir, version)
    store = ModelStore(model_dir)
    registry = store.read_registry()
    previous = registry.get("active")
    stack = promotion_stack(registry)
    if not stack or stack[-1] != version:
        stack.append(version)
    registry["active"] = version
    registry["promotions"] = stack
    registry["history"].append(
        {
            "action": "promote",
            "version": version,
            "previous": previous,
            "at": now.isoformat(),
            "by": actor,
            "gate": verdict.as_dict(),
        }
    )
    store.write_registry(registry)
    log.info("promoted model %s (was %s) in %s", version, previous, store.label)


def rollback(model_dir: Where, *, now: datetime, actor: str = "cli") -> str:
    """Step back one promotion: pop the active version off the promotion history and re-activate
    the one promoted before it (after checking that it loads); returns it. Each call steps further
    back; :class:`ModelError` when there is no earlier promotion."""
    store = ModelStore(model_dir)
    registry = store.read_registry()
    current = registry.get("active")
    stack = promotion_stack(registry)
    if len(stack) < 2:
        raise ModelError(
            f"nothing to roll back to: {current or 'no version'} is the first promotion "
            f"in {store.label}/{REGISTRY_FILE}"
        )
    stack.pop()
    version = stack[-1]
    load_version(model_dir, version)
    registry["active"] = version
    registry["promotions"] = stack
    registry["history"].append(
        {
            "action": "rollback",
            "version": version,
            "previous": current,
            "at": now.isoformat(),
            "by": actor,
        }
    )
    store.write_registry(registry)
    log.info("rolled back from %s to %s", current, version)
    return version
