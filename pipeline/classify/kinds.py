"""The breach-kind tagger: which kinds of breach (:mod:`pipeline.knowledge.breaches`) a flagged item
alleges, as a versioned artefact verified before use.

Layout, beside the main model's registry and kept apart from it::

    models/kinds/registry.json           {"active": "<version>", "history": [...]}
    models/kinds/<version>/model.skops   {"features": hashed word+char TF-IDF, "columns": the hashed
                                         columns used, "kind:<slug>": a linear model over them}
    models/kinds/<version>/metadata.json kinds, per-kind Platt calibration and threshold, CV and test
                                         metrics, training-data hash, library versions
    models/kinds/<version>/MODEL_CARD.md

Saving goes through :func:`pipeline.classify.registry.save_model` (skops, atomic folder, SHA-256,
type allow-list). Loading checks what :func:`~pipeline.classify.registry.load_version` checks for a
main model (scikit-learn version, feature schema, SHA-256, types read from the file before anything is
built) against this artefact's own, narrower allow-list :data:`TAGGER_TYPES`, and its own structure:
one linear model per kind named in the metadata, each with a threshold in (0, 1).
:func:`load_active_tagger` falls back to the previously promoted version when the active one is
refused, like the main model.

:meth:`KindTagger.tag` gives every kind whose calibrated probability clears its threshold (chosen by
best F1 on grouped out-of-fold predictions); when none does, the single most probable kind if
the metadata's ``fallback`` says so. The tagger is meant for items the main model flagged: it was
trained on positives only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.model import LEGACY_SCHEMA
from pipeline.classify.registry import (
    MODEL_FILE,
    GateVerdict,
    check_verdict,
    save_model,
    types_in,
)
from pipeline.errors import ModelError
from pipeline.knowledge.breaches import BREACH_KINDS, KIND_CUES

__all__ = [
    "CUED_INPUT",
    "CUES_SHA256",
    "KINDS_DIR",
    "TAGGER_TYPES",
    "TASK",
    "KindTagger",
    "KindTags",
    "load_active_tagger",
    "load_tagger",
    "promote_tagger",
    "save_tagger",
    "with_cues",
]

log = logging.getLogger(__name__)

TASK = "breach-kinds/v1"
KINDS_DIR = "kinds"  # under the configured model_dir
POINTER = "registry.json"
PREFIX = "kind:"

# Every type a tagger file may hold: fewer than the main registry allows (no SVM, no SGD, no scaler).
TAGGER_TYPES = frozenset(
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
        "collections.OrderedDict",
        "numpy.dtype",
        "numpy.float32",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "scipy.sparse._csr.csr_matrix",
        "sklearn.feature_extraction.text.HashingVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.pipeline.FeatureUnion",
        "sklearn.pipeline.Pipeline",
    }
)


# The tagger's input: the article text, or (CUED_INPUT) the text followed by one token per kind whose
# cues (pipeline.knowledge.breaches.KIND_CUES) it uses, which the word features then see.
PLAIN_INPUT = "text/v1"
CUED_INPUT = "text+kind-cues/v1"
CUES_SHA256 = hashlib.sha256(
    json.dumps(KIND_CUES, sort_keys=True, ensure_ascii=False).encode("utf-8")
).hexdigest()
_NON_SPACED = re.compile(r"[\u0600-\u06ff\u3040-\u9fff\uac00-\ud7af]")


def _cue_pattern(cues: tuple[str, ...]) -> re.Pattern[str]:
    """Cues in spaced scripts match at the start of a word, Arabic, CJK and Hangul ones anywhere."""
    spaced = [re.escape(c) for c in cues if not _NON_SPACED.search(c)]
    other = [re.escape(c) for c in cues if _NON_SPACED.search(c)]
    parts = ([rf"(?<!\w)(?:{'|'.join(spaced)})"] if spaced else []) + (
        [f"(?:{'|'.join(other)})"] if other else []
    )
    return re.compile("|".join(parts), re.IGNORECASE)


_CUES = {kind: _cue_pattern(cues) for kind, cues in KIND_CUES.items()}


def with_cues(text: str) -> str:
    """``text`` followed by ``kindcue_<kind>`` for every kind whose cues it uses."""
    folded = unicodedata.normalize("NFKC", text)
    marks = [f"kindcue_{k.replace('-', '_')}" for k, rx in _CUES.items() if rx.search(folded)]
    return f"{text}\n{' '.join(marks)}" if marks else text


@dataclass(frozen=True, slots=True)
class KindTags:
    """The kinds of one item, in vocabulary order, and every kind's calibrated probability."""

    kinds: tuple[str, ...]
    scores: Mapping[str, float] = field(default_factory=dict)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))
    return out


@dataclass(slots=True)
class KindTagger:
    estimator: Mapping[str, Any]
    version: str
    kinds: tuple[str, ...]
    thresholds: Mapping[str, float]
    calibration: Mapping[str, Mapping[str, float]]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fallback(self) -> str:
        return str(self.metadata.get("fallback", "none"))

    @property
    def cued(self) -> bool:
        return self.metadata.get("input") == CUED_INPUT

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probability of each kind (columns in :attr:`kinds` order) for each article
        text (:func:`pipeline.classify.model.article_text`)."""
        if not texts:
            return np.zeros((0, len(self.kinds)))
        inputs = [with_cues(t) for t in texts] if self.cued else list(texts)
        x = self.estimator["features"].transform(inputs).tocsr()[:, self.estimator["columns"]]
        cols = []
        for kind in self.kinds:
            margin = np.asarray(self.estimator[PREFIX + kind].decision_function(x), dtype=float)
            cal = self.calibration.get(kind) or {}
            cols.append(_sigmoid(cal.get("a", 1.0) * margin + cal.get("b", 0.0)))
        return np.column_stack(cols)

    def tag(self, texts: Sequence[str]) -> list[KindTags]:
        probs = self.probabilities(texts)
        limits = np.asarray([self.thresholds[k] for k in self.kinds])
        out: list[KindTags] = []
        for row in probs:
            chosen = [k for k, p, t in zip(self.kinds, row, limits, strict=True) if p >= t]
            if not chosen and self.fallback == "top1" and len(row):
                chosen = [self.kinds[int(np.argmax(row))]]
            order = [k for k in BREACH_KINDS if k in chosen]
            scores = {k: round(float(p), 4) for k, p in zip(self.kinds, row, strict=True)}
            out.append(KindTags(tuple(order), scores))
        return out


# ------------------------------------------------------------------------------------ artefacts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_tagger(
    model_dir: Path,
    version: str,
    estimator: Mapping[str, Any],
    metadata: Mapping[str, Any],
    card: str,
) -> Path:
    """Write a new tagger version (not promoted) through the registry's :func:`save_model`, then
    refuse it (removing the folder) if it holds a type outside :data:`TAGGER_TYPES`."""
    path = save_model(model_dir, version, dict(estimator), {**metadata, "task": TASK}, card)
    outside = sorted(types_in(path / MODEL_FILE) - TAGGER_TYPES)
    if outside:
        shutil.rmtree(path, ignore_errors=True)
        raise ModelError(f"tagger {version} holds types outside the tagger allow-list: {outside}")
    return path


def _metadata(vdir: Path) -> dict[str, Any]:
    try:
        data = json.loads((vdir / "metadata.json").read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ModelError(f"tagger {vdir.name}: metadata.json is missing") from err
    except (OSError, ValueError) as err:
        raise ModelError(f"tagger {vdir.name}: metadata.json unreadable: {err}") from err
    if not isinstance(data, dict):
        raise ModelError(f"tagger {vdir.name}: metadata.json is not an object")
    return data


def load_tagger(model_dir: Path, version: str) -> KindTagger:
    """Load one tagger version after verifying it (see the module docstring)."""
    import sklearn
    import skops.io as sio

    vdir = model_dir / version
    if not vdir.is_dir():
        raise ModelError(f"tagger {version}: no folder {vdir}")
    meta = _metadata(vdir)
    if meta.get("task") != TASK:
        raise ModelError(f"tagger {version}: task {meta.get('task')!r} is not {TASK!r}")
    if meta.get("sklearn_version") != sklearn.__version__:
        raise ModelError(
            f"tagger {version}: trained with scikit-learn {meta.get('sklearn_version')}, this "
            f"installation has {sklearn.__version__}; retrain with `sanctions-watch kinds train`"
        )
    if meta.get("feature_schema") != LEGACY_SCHEMA:
        raise ModelError(f"tagger {version}: feature schema {meta.get('feature_schema')!r} unknown")
    if meta.get("input", PLAIN_INPUT) not in (PLAIN_INPUT, CUED_INPUT):
        raise ModelError(
            f"tagger {version}: input {meta.get('input')!r} is not one this code makes"
        )
    if meta.get("input") == CUED_INPUT and meta.get("cues_sha256") != CUES_SHA256:
        raise ModelError(
            f"tagger {version}: trained with another table of kind cues; retrain it with "
            "`sanctions-watch kinds train`"
        )
    path = vdir / str(meta.get("model_file", MODEL_FILE))
    if not path.is_file():
        raise ModelError(f"tagger {version}: {path.name} is missing")
    if _sha256(path) != meta.get("model_sha256"):
        raise ModelError(f"tagger {version}: {path.name} does not match its recorded SHA-256")
    outside = sorted(types_in(path) - TAGGER_TYPES)
    if outside:
        raise ModelError(
            f"tagger {version}: refused, holds types outside the allow-list: {outside}"
        )
    try:
        untrusted = set(sio.get_untrusted_types(file=path))
        estimator = sio.load(path, trusted=sorted(untrusted & TAGGER_TYPES))
    except Exception as err:  # any failure to build the file means the artefact is refused
        raise ModelError(f"tagger {version}: {path.name} cannot be loaded: {err}") from err
    kinds = tuple(meta.get("kinds") or ())
    unknown = [k for k in kinds if k not in BREACH_KINDS]
    if not kinds or unknown:
        raise ModelError(f"tagger {version}: kinds {unknown or 'missing'} not in the vocabulary")
    expected = {"features", "columns", *(PREFIX + k for k in kinds)}
    if not isinstance(estimator, dict) or set(estimator) != expected:
        got = sorted(estimator) if isinstance(estimator, dict) else type(estimator).__name__
        raise ModelError(f"tagger {version}: stored parts {got} do not match its kinds")
    columns = estimator["columns"]
    if not isinstance(columns, np.ndarray) or columns.ndim != 1 or columns.dtype.kind != "i":
        raise ModelError(f"tagger {version}: 'columns' is not a vector of column numbers")
    thresholds = meta.get("thresholds") or {}
    for kind in kinds:
        t = thresholds.get(kind)
        if not isinstance(t, int | float) or not 0 < t < 1:
            raise ModelError(f"tagger {version}: threshold of {kind} is {t!r}, not in (0, 1)")
        if not hasattr(estimator[PREFIX + kind], "decision_function"):
            raise ModelError(f"tagger {version}: the part for {kind} has no decision_function")
    calibration = {
        k: {n: float(v) for n, v in (meta.get("calibration") or {}).get(k, {}).items()}
        for k in kinds
    }
    return KindTagger(
        estimator=estimator,
        version=version,
        kinds=kinds,
        thresholds={k: float(thresholds[k]) for k in kinds},
        calibration=calibration,
        metadata=meta,
    )


def _pointer(model_dir: Path) -> dict[str, Any]:
    path = model_dir / POINTER
    if not path.exists():
        return {"active": None, "history": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: unreadable tagger registry: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("history"), list):
        raise ModelError(f"{path}: not a tagger registry (no 'history')")
    return data


def _write_pointer(model_dir: Path, data: Mapping[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=model_dir, prefix=f".{POINTER}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, model_dir / POINTER)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def promote_tagger(
    model_dir: Path,
    version: str,
    *,
    now: datetime,
    actor: str = "cli",
    verdict: GateVerdict | None = None,
) -> None:
    """Make ``version`` the active tagger after checking that it loads and, with ``verdict`` (the
    tagger gate's, :func:`pipeline.training.kinds_gate.promote_tagger_through_gate`, which the
    command line always goes through), that the gate passed or was forced with a name and a reason:
    else :class:`GateError` naming every failure. The verdict is recorded in the history."""
    if verdict is not None:
        check_verdict(verdict, version, what="tagger", gate="tagger gate")
    load_tagger(model_dir, version)
    data = _pointer(model_dir)
    previous = data.get("active")
    data["active"] = version
    entry: dict[str, Any] = {
        "action": "promote",
        "version": version,
        "previous": previous,
        "at": now.isoformat(),
        "by": actor,
    }
    if verdict is not None:
        entry["gate"] = verdict.as_dict()
    data["history"].append(entry)
    _write_pointer(model_dir, data)
    log.info("promoted tagger %s (was %s)", version, previous)


def load_active_tagger(model_dir: Path) -> KindTagger:
    """The active tagger; if it is refused, the most recently promoted earlier one that loads."""
    data = _pointer(model_dir)
    candidates: list[str] = []
    for v in [data.get("active"), *(e.get("version") for e in reversed(data["history"]))]:
        if isinstance(v, str) and v and v not in candidates:
            candidates.append(v)
    if not candidates:
        raise ModelError(
            f"no tagger is active in {model_dir}; train one with `sanctions-watch kinds train`"
        )
    errors = []
    for version in candidates:
        try:
            tagger = load_tagger(model_dir, version)
        except ModelError as err:
            log.error("refusing tagger: %s", err)
            errors.append(str(err))
            continue
        if errors:
            log.error("serving fallback tagger %s because the active one was refused", version)
        return tagger
    raise ModelError("no servable tagger: " + "; ".join(errors))
