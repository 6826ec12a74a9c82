"""The model registry: versioned artefacts in a model store, verified before they are served.

Layout of a store (and of the shipped ``models/`` folder)::

    <store>/registry.json          {"active": "<version>", "promotions": [...], "history": [...]}
    <store>/<version>/model.skops  the estimator, in skops' safe format (never pickle)
    <store>/<version>/metadata.json
    <store>/<version>/MODEL_CARD.md

Two places, one registry (:class:`~pipeline.config.records.ModelLocations`, the ``model_store`` and
``model_dir`` settings): the **model store** (``var/models/`` by default, or an fsspec URL such as
``s3://bucket/models``) is where ``train`` writes versions and where the registry is written; the
**shipped** folder ``models/`` is read-only and is the fallback: while the store has no
``registry.json`` the shipped one is in force, and the first promotion or rollback copies it into the
store (so its promotion history, and the shipped default as the rollback target, carry over). A
version is looked up in the store first, then in the shipped folder. Every function here also takes a
plain folder, which is then both store and the only place. A version in a URL store is copied to a
local cache before it is verified and loaded; it is written locally first and uploaded file by file,
``metadata.json`` last, so a half-uploaded version has no metadata and is never listed.

The loader refuses a file whose SHA-256, scikit-learn version or feature schema does not match its
metadata, or that holds a type outside :data:`ALLOWED_TYPES`; :func:`load_active` then falls back to the
previous good version, so a broken promotion never stops scoring.

``promotions`` is the promotion history, oldest first, its last entry the active version:
:func:`promote` pushes onto it, :func:`rollback` pops it, so successive rollbacks step back through
every version promoted before (C → B → A), never toggling between the last two. ``history`` is the
audit log of every promotion and rollback. A registry written before ``promotions`` existed gets it
by replaying its ``history``.

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
from pipeline.config.records import ModelLocations
from pipeline.errors import GateError, ModelError

__all__ = [
    "ALLOWED_TYPES",
    "GateVerdict",
    "ModelInfo",
    "Where",
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


# A model store with its shipped fallback (the config's ``model_dir``), or one plain folder.
Where = Path | ModelLocations


@dataclass(frozen=True, slots=True)
class ModelInfo:
    version: str
    path: Path
    metadata: Mapping[str, Any]
    active: bool
    place: str = "store"  # "store" or "shipped"


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


def _parse_registry(raw: bytes | None, where: str) -> dict[str, Any]:
    if raw is None:
        return {"active": None, "history": []}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ModelError(f"{where}: unreadable registry: {err}") from err
    if not isinstance(data, dict) or "history" not in data:
        raise ModelError(f"{where}: not a registry file (no 'history')")
    return data


def _read_local(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ModelError(f"{path}: unreadable registry: {err}") from err


class _Store:
    """One model store (a folder or an fsspec URL) and its read-only shipped fallback."""

    def __init__(self, where: Where) -> None:
        if isinstance(where, ModelLocations):
            location, shipped, cache = where.store, where.shipped, where.cache
        else:
            location, shipped, cache = str(where), None, Path(where) / ".cache"
        self.label = location
        self.url = location if "://" in location else None
        self.root = None if self.url else Path(location)
        self.cache = cache
        if self.root is not None and shipped is not None and _same(self.root, shipped):
            shipped = None  # the store is the shipped folder: one place
        self.shipped = shipped
        self.fs: Any = None
        self.base = ""
        if self.url:
            try:
                import fsspec  # type: ignore[import-untyped]
            except ImportError as err:  # installed with Airflow; a plain install may lack it
                raise ModelError(
                    f"model store {self.url}: a URL store needs fsspec (pip install fsspec)"
                ) from err
            try:
                self.fs, self.base = fsspec.core.url_to_fs(self.url)
            except (ImportError, ValueError) as err:
                raise ModelError(
                    f"model store {self.url}: no fsspec backend for it ({err}); install the "
                    "matching package (s3fs, gcsfs, adlfs) or use a folder"
                ) from err
            self.base = self.base.rstrip("/")

    # -- the registry file -------------------------------------------------------------------
    def _store_registry_raw(self) -> bytes | None:
        if self.root is not None:
            return _read_local(self.root / REGISTRY_FILE)
        path = f"{self.base}/{REGISTRY_FILE}"
        try:
            return bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            return None
        except OSError as err:
            raise ModelError(f"{self.url}/{REGISTRY_FILE}: unreadable registry: {err}") from err

    def read_registry(self) -> dict[str, Any]:
        """The store's registry; while it has none, the shipped one (marked ``inherited``)."""
        raw = self._store_registry_raw()
        if raw is not None or self.shipped is None:
            return _parse_registry(raw, f"{self.label}/{REGISTRY_FILE}")
        path = self.shipped / REGISTRY_FILE
        data = _parse_registry(_read_local(path), str(path))
        return {**data, "inherited_from": str(self.shipped)}

    def write_registry(self, data: Mapping[str, Any]) -> None:
        clean = {k: v for k, v in data.items() if k != "inherited_from"}
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            _write_json_atomic(self.root / REGISTRY_FILE, clean)
            return
        body = json.dumps(clean, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        self.fs.pipe_file(f"{self.base}/{REGISTRY_FILE}", body.encode("utf-8"))

    # -- versions ----------------------------------------------------------------------------
    def in_store(self, version: str) -> bool:
        if self.root is not None:
            return (self.root / version).is_dir()
        return bool(self.fs.exists(f"{self.base}/{version}/metadata.json"))

    def local_dir(self, version: str) -> Path:
        """A local folder holding ``version``: the store's, a cached copy of a URL store's, or the
        shipped one. :class:`ModelError` when it is in neither place."""
        if not version or "/" in version or version.startswith("."):
            raise ModelError(f"model {version!r}: not a version name")
        if self.root is not None and (self.root / version).is_dir():
            return self.root / version
        if self.url and self.in_store(version):
            return self._fetch(version)
        if self.shipped is not None and (self.shipped / version).is_dir():
            return self.shipped / version
        where = self.label if self.shipped is None else f"{self.label} nor in {self.shipped}"
        first = self.root / version if self.root is not None and self.shipped is None else None
        if first is not None:
            raise ModelError(f"model {version}: no folder {first}")
        raise ModelError(f"model {version}: no folder for it in {where}")

    def _fetch(self, version: str) -> Path:
        digest = hashlib.sha256(self.label.encode("utf-8")).hexdigest()[:12]
        target = self.cache / digest / version
        if (target / "metadata.json").is_file():
            return target  # versions never change; load_version checks the hash anyway
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{version}."))
        try:
            for remote in self.fs.ls(f"{self.base}/{version}", detail=False):
                name = str(remote).rstrip("/").rsplit("/", 1)[-1]
                self.fs.get_file(remote, str(tmp / name))
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    def versions(self) -> list[tuple[str, str]]:
        """(version, place) for every version in the store, then those only shipped."""
        found: list[tuple[str, str]] = []
        if self.root is not None and self.root.is_dir():
            found += [(p.name, "store") for p in self.root.iterdir() if _is_version(p)]
        elif self.url and self.fs.exists(self.base):
            for entry in self.fs.ls(self.base, detail=False):
                name = str(entry).rstrip("/").rsplit("/", 1)[-1]
                if not name.startswith(".") and self.fs.exists(f"{entry}/metadata.json"):
                    found.append((name, "store"))
        seen = {v for v, _ in found}
        if self.shipped is not None and self.shipped.is_dir():
            found += [
                (p.name, "shipped")
                for p in self.shipped.iterdir()
                if _is_version(p) and p.name not in seen
            ]
        return sorted(found)

    def writable_dir(self) -> Path:
        """Where a new version is written: the store folder, or a local staging folder for a URL
        store (then :meth:`publish`)."""
        if self.root is not None:
            return self.root
        digest = hashlib.sha256(self.label.encode("utf-8")).hexdigest()[:12]
        return self.cache / digest

    def publish(self, version: str) -> None:
        """Upload a version written to :meth:`writable_dir` (a no-op for a folder store);
        ``metadata.json`` last, so a half-uploaded version is never listed or loaded."""
        if self.root is not None:
            return
        local = self.writable_dir() / version
        files = sorted(local.iterdir(), key=lambda p: p.name == "metadata.json")
        for path in files:
            self.fs.put_file(str(path), f"{self.base}/{version}/{path.name}")
        log.info("uploaded model %s to %s", version, self.url)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _is_version(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".")


def _read_registry(where: Where) -> dict[str, Any]:
    return _Store(where).read_registry()


def store_label(where: Where) -> str:
    """The model store's folder or URL, for messages."""
    return _Store(where).label


def writable_dir(where: Where) -> Path:
    """The local folder ``train`` writes a new version into (then :func:`publish` it)."""
    return _Store(where).writable_dir()


def publish(where: Where, version: str) -> None:
    """Make a version written into :func:`writable_dir` visible in the store (uploads it to a URL
    store; nothing to do for a folder)."""
    _Store(where).publish(version)


def _replay(history: list[dict[str, Any]]) -> list[str]:
    """The promotion stack a registry written before ``promotions`` existed implies."""
    stack: list[str] = []
    for event in history:
        version = event.get("version")
        if not isinstance(version, str) or not version:
            continue
        if event.get("action") == "promote":
            stack.append(version)
        elif event.get("action") == "rollback":
            if stack:
                stack.pop()
            if version in stack:  # back to an earlier promotion: what came after it is undone
                del stack[len(stack) - stack[::-1].index(version) :]
            else:
                stack.append(version)
    return stack


def _promotions(registry: Mapping[str, Any]) -> list[str]:
    """The promotion stack (oldest first, active last), replayed from ``history`` if absent."""
    stored = registry.get("promotions")
    if isinstance(stored, list) and stored and all(isinstance(v, str) for v in stored):
        stack = list(stored)
    else:
        stack = _replay(registry.get("history", []))
    active = registry.get("active")
    if active and (not stack or stack[-1] != active):  # set by hand: it is what is active now
        stack.append(active)
    return stack


def promotion_history(model_dir: Where) -> list[str]:
    """The versions :func:`rollback` would step back through: the active one last."""
    return _promotions(_read_registry(model_dir))


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
            "feature_schema": FEATURE_SCHEMA if "combiner" in metadata else LEGACY_SCHEMA,
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


def load_version(model_dir: Where, version: str, *, embed_workers: int = 1) -> TextModel:
    """Load one version (from the store, else the shipped folder) after verifying hash, library
    version, schema and types against metadata."""
    import sklearn
    import skops.io as sio

    vdir = _Store(model_dir).local_dir(version)
    meta = _read_metadata(vdir)
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
    registry = _read_registry(model_dir)
    candidates: list[str] = []
    for v in [registry.get("active"), *reversed(_promotions(registry))]:
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


def list_models(model_dir: Where) -> list[ModelInfo]:
    """Every version in the store, then those only in the shipped folder (``place`` says which)."""
    store = _Store(model_dir)
    registry = store.read_registry()
    out: list[ModelInfo] = []
    for version, place in store.versions():
        try:
            vdir = store.local_dir(version)
            meta = _read_metadata(vdir)
        except ModelError as err:
            vdir, meta = Path(version), {"error": str(err)}
        out.append(ModelInfo(version, vdir, meta, version == registry.get("active"), place))
    return out


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
    store = _Store(model_dir)
    registry = store.read_registry()
    previous = registry.get("active")
    stack = _promotions(registry)
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
    store = _Store(model_dir)
    registry = store.read_registry()
    current = registry.get("active")
    stack = _promotions(registry)
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
