"""Scoring in worker processes, so a classify run with a backlog uses every core.

:class:`ScorePool` takes batches of :class:`~pipeline.classify.model.Doc` and returns their
:class:`~pipeline.classify.model.Score` lists, computed by ``processes`` worker processes that each load
the same model version once (the sentence embeddings and the sparse transforms hold the GIL, so
threads would not help). Guarantees:

- results come back per batch, through a :class:`~concurrent.futures.Future`, equal to what
  ``model.score_docs`` gives in the calling process (same version, same threshold, same regimes);
- with ``processes`` of 1 or less, or when worker processes cannot be started here (a daemonic
  process, such as a Celery prefork child, may not have children), batches are scored in the calling
  process and the reason is logged once: nothing is refused, only slower;
- a worker that dies (killed, out of memory) fails nothing: its batch, and every later one, is scored in
  the calling process, and a warning names the cause;
- workers start with ``forkserver`` (never ``fork``: the calling process may have threads, and may hold
  database connections), with the model module preloaded; :meth:`ScorePool.close` stops them;
- given a :class:`ModelRef` (a version and threshold, not a loaded model), the calling process loads
  the model only if it must score itself (no workers, or one died): a classify run whose workers do
  all the scoring never loads it there (about 2 s and the model's memory saved in that process).

:func:`score_processes` decides how many processes a run uses: none for a small backlog, whose work
(milliseconds per article) would not repay a worker's start (about 2 s with the model load).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.classify.model import Doc, Score, TextModel
from pipeline.errors import ModelError
from pipeline.knowledge.regimes import RegimeBook, load_regimes

__all__ = ["MIN_ARTICLES_PER_PROCESS", "ModelRef", "ScorePool", "score_processes"]

log = logging.getLogger(__name__)

# A worker costs about 2 s to start and load the model, and scores a few hundred articles a second:
# below this many articles per process, one process is as fast.
MIN_ARTICLES_PER_PROCESS = 500

# Worker-process state: the model and regimes, loaded once per process by the initializer.
_WORKER: tuple[TextModel, RegimeBook] | None = None


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A model version to score with, not loaded here: its version, the threshold it serves with,
    and how to load it in this process should this process have to score."""

    version: str
    threshold: float
    load: Callable[[], TextModel]


def score_processes(setting: int, backlog: int) -> int:
    """How many scoring processes a run with ``backlog`` articles to score uses: ``setting`` (0: the
    CPU count), fewer when there is not enough work; 1 or less means score in the calling process."""
    wanted = setting or os.cpu_count() or 1
    return max(1, min(wanted, backlog // MIN_ARTICLES_PER_PROCESS))


def init_worker(model_dir: Any, version: str, threshold: float, regimes_path: str) -> None:
    """Pool initializer: load ``version`` (one embedding thread: the processes are the parallelism)."""
    global _WORKER
    from pipeline.classify.registry import load_version

    model = load_version(model_dir, version, embed_workers=1)  # a folder or ModelLocations
    model.threshold = threshold
    _WORKER = (model, load_regimes(regimes_path))


def worker_state() -> tuple[TextModel, RegimeBook]:
    """The model and regimes this worker process loaded."""
    if _WORKER is None:
        raise RuntimeError("scoring worker not initialised")
    return _WORKER


def _ready() -> bool:
    return _WORKER is not None


def _score(docs: list[Doc], explain: bool = True) -> list[Score]:
    model, regimes = worker_state()
    return model.score_docs(docs, regimes=regimes, explain=explain)


class ScorePool:
    """``model.score_docs`` for batches, in ``processes`` worker processes (or in this process)."""

    def __init__(
        self,
        model: TextModel | ModelRef,
        regimes: RegimeBook,
        *,
        model_dir: Any,
        regimes_path: Path,
        processes: int,
    ) -> None:
        self.regimes = regimes
        self.version, self.threshold = model.version, model.threshold
        self._ref = model if isinstance(model, ModelRef) else None
        self._model = None if isinstance(model, ModelRef) else model
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        if processes > 1:
            self._pool = self._start(model_dir, regimes_path)

    @property
    def model(self) -> TextModel:
        """The model in this process: loaded on first use when the pool was given a
        :class:`ModelRef` (its threshold is the ref's)."""
        if self._model is None:
            assert self._ref is not None
            model = self._ref.load()
            if model.version != self.version:  # the workers' version is the run's
                raise RuntimeError(
                    f"loaded model {model.version}, but this run scores with {self.version}"
                )
            model.threshold = self.threshold
            self._model = model
        return self._model

    def _start(self, model_dir: Any, regimes_path: Path) -> ProcessPoolExecutor | None:
        if multiprocessing.current_process().daemon:
            log.info("scoring in this process: a daemonic process cannot start scoring workers")
            return None
        pool: ProcessPoolExecutor | None = None
        try:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["pipeline.classify.model", "pipeline.classify.registry"])
            pool = ProcessPoolExecutor(
                self.processes,
                mp_context=ctx,
                initializer=init_worker,
                initargs=(model_dir, self.version, self.threshold, str(regimes_path)),
            )
            # Start every worker now (each loads the model in parallel with the others).
            checks = [pool.submit(_ready) for _ in range(self.processes)]
            if not all(c.result() for c in checks):
                raise RuntimeError("a worker did not load the model")
        except (OSError, RuntimeError, AssertionError, BrokenProcessPool, ModelError) as err:
            log.warning("scoring in this process: the scoring workers did not start (%s)", err)
            if pool is not None:
                with contextlib.suppress(Exception):
                    pool.shutdown(wait=False, cancel_futures=True)
            return None
        return pool

    @property
    def parallel(self) -> bool:
        """True while batches go to worker processes."""
        return self._pool is not None

    def submit(self, docs: Sequence[Doc], *, explain: bool = True) -> Future[list[Score]]:
        """Score one batch; the future's result is the batch's scores in order (``explain``: as
        for ``score_docs``; pass the same value to :meth:`result`)."""
        if self._pool is not None:
            try:
                return self._pool.submit(_score, list(docs), explain)
            except (BrokenProcessPool, RuntimeError) as err:
                self._broken(err)
        done: Future[list[Score]] = Future()
        done.set_result(self.model.score_docs(docs, regimes=self.regimes, explain=explain))
        return done

    def result(
        self, future: Future[list[Score]], docs: Sequence[Doc], *, explain: bool = True
    ) -> list[Score]:
        """The batch's scores; when its worker died, the batch is scored here instead."""
        try:
            return future.result()
        except BrokenProcessPool as err:
            self._broken(err)
            return self.model.score_docs(docs, regimes=self.regimes, explain=explain)

    def _broken(self, err: BaseException) -> None:
        if self._pool is not None:
            log.warning("a scoring worker died (%s): scoring the rest in this process", err)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """Stop the worker processes (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ScorePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
