"""The model store: where model versions and the registry file live, and what the registry records.

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

``promotions`` is the promotion history, oldest first, its last entry the active version:
:func:`~pipeline.classify.registry.promote` pushes onto it, :func:`~pipeline.classify.registry.rollback`
pops it, so successive rollbacks step back through every version promoted before (C → B → A), never
toggling between the last two. ``history`` is the audit log of every promotion and rollback. A
registry written before ``promotions`` existed gets it by replaying its ``history``.

Verifying and loading a version, saving a new one, and promoting and rolling back are in
:mod:`pipeline.classify.registry`, which re-exports this module's public names.
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
from pathlib import Path
from typing import Any

from pipeline.config.records import ModelLocations
from pipeline.errors import ModelError

__all__ = [
    "MODEL_FILE",
    "REGISTRY_FILE",
    "ModelInfo",
    "ModelStore",
    "Where",
    "list_models",
    "promotion_history",
    "promotion_stack",
    "publish",
    "read_metadata",
    "read_registry",
    "store_label",
    "writable_dir",
    "write_json_atomic",
]

# Records keep the logger name they had before the store moved out of pipeline.classify.registry.
log = logging.getLogger("pipeline.classify.registry")

MODEL_FILE = "model.skops"
REGISTRY_FILE = "registry.json"


# A model store with its shipped fallback (the config's ``model_dir``), or one plain folder.
Where = Path | ModelLocations


@dataclass(frozen=True, slots=True)
class ModelInfo:
    version: str
    path: Path
    metadata: Mapping[str, Any]
    active: bool
    place: str = "store"  # "store" or "shipped"


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
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


class ModelStore:
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
            write_json_atomic(self.root / REGISTRY_FILE, clean)
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


def read_registry(where: Where) -> dict[str, Any]:
    return ModelStore(where).read_registry()


def store_label(where: Where) -> str:
    """The model store's folder or URL, for messages."""
    return ModelStore(where).label


def writable_dir(where: Where) -> Path:
    """The local folder ``train`` writes a new version into (then :func:`publish` it)."""
    return ModelStore(where).writable_dir()


def publish(where: Where, version: str) -> None:
    """Make a version written into :func:`writable_dir` visible in the store (uploads it to a URL
    store; nothing to do for a folder)."""
    ModelStore(where).publish(version)


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


def promotion_stack(registry: Mapping[str, Any]) -> list[str]:
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
    return promotion_stack(read_registry(model_dir))


def read_metadata(version_dir: Path) -> dict[str, Any]:
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


def list_models(model_dir: Where) -> list[ModelInfo]:
    """Every version in the store, then those only in the shipped folder (``place`` says which)."""
    store = ModelStore(model_dir)
    registry = store.read_registry()
    out: list[ModelInfo] = []
    for version, place in store.versions():
        try:
            vdir = store.local_dir(version)
            meta = read_metadata(vdir)
        except ModelError as err:
            vdir, meta = Path(version), {"error": str(err)}
        out.append(ModelInfo(version, vdir, meta, version == registry.get("active"), place))
    return out
