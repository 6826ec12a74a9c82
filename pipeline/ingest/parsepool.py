"""Feed parsing in worker processes, so an ingest run uses every core (feedparser holds the GIL).

:class:`ParsePool` has :func:`~pipeline.ingest.parse.parse_feed`'s signature: the ingest threads
fetch (I/O) and hand each body to it, and it parses the body in one of ``processes`` worker processes
and returns the same :class:`~pipeline.ingest.parse.ParsedFeed` (or raises the same
:class:`~pipeline.errors.FeedParseError`). Guarantees:

- in a daemonic process (which may not have children) it parses in the calling thread, as with one
  process, and says so once in the log;
- the processes start only when the first body arrives (an unchanged cycle, all 304, starts none), and
  only when the run has enough feeds to repay their start (:func:`parse_processes`); otherwise the
  pool parses in the calling thread, exactly as ``parse_feed`` does;
- the run's :class:`~pipeline.ingest.parse.ParseBudget` still bounds the bytes parsed at once across
  all processes (the calling thread holds the body's weight while its process parses it);
- a worker that dies (killed, out of memory on a hostile document) fails that feed with a
  ``FeedParseError`` naming the cause, and a new pool serves the next feed;
- the problems a worker's parse reports are logged here, in the calling process, once (the worker's
  own logging of them is silenced), so the task log reads as it does with threads;
- :meth:`ParsePool.close` stops the workers (``ingest`` closes it when the run ends).

Workers are started with ``forkserver`` (never ``fork``: the ingest process has threads), with
:mod:`pipeline.ingest.parse` preloaded.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pipeline.errors import FeedParseError
from pipeline.ingest.parse import ParseBudget, ParsedFeed, parse_feed

__all__ = ["MIN_FEEDS_PER_PROCESS", "ParsePool", "parse_processes"]

log = logging.getLogger(__name__)

# A worker costs about half a second to start and parses a 50-item feed in tens of milliseconds:
# below this many due feeds per process, parsing in the ingest threads is as fast.
MIN_FEEDS_PER_PROCESS = 25


def parse_processes(setting: int, due_feeds: int) -> int:
    """How many parse processes a run of ``due_feeds`` feeds uses: ``setting`` (0: the CPU count),
    fewer when there is not enough work for them; 1 or less means parse in the ingest threads."""
    wanted = setting or os.cpu_count() or 1
    return max(1, min(wanted, due_feeds // MIN_FEEDS_PER_PROCESS))


def _quiet() -> None:
    """Worker initialiser: problems come back in ParsedFeed.problems and are logged by the parent."""
    logging.getLogger("pipeline.ingest.parse").setLevel(logging.CRITICAL)


def _parse(content: bytes, kwargs: dict[str, Any]) -> ParsedFeed:
    return parse_feed(content, **kwargs)


class ParsePool:
    """``parse_feed`` in ``processes`` worker processes (in the calling thread when ``processes``
    is 1 or less)."""

    def __init__(self, processes: int, budget: ParseBudget | None = None) -> None:
        if processes > 1 and multiprocessing.current_process().daemon:
            # A daemonic process (a Celery prefork child, an executor's daemon worker) may not start
            # processes: parse in the ingest threads instead of failing every feed.
            log.info("parsing in the ingest threads: a daemonic process cannot start parse workers")
            processes = 1
        self.processes = processes
        self.budget = budget
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.closed = False

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self.closed:
                raise FeedParseError("the ingest run's parse processes were stopped")
            if self._pool is None:
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(["pipeline.ingest.parse"])
                self._pool = ProcessPoolExecutor(self.processes, mp_context=ctx, initializer=_quiet)
            return self._pool

    def _renew(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)

    def __call__(self, content: bytes, **kwargs: Any) -> ParsedFeed:
        """Parse like ``parse_feed(content, **kwargs)``."""
        budget = kwargs.pop("budget", None) or self.budget
        if self.processes <= 1:
            return parse_feed(content, budget=budget, **kwargs)
        pool = self._executor()
        feed_id = kwargs.get("feed_id", "?")
        try:
            if budget is not None:
                with budget.hold(len(content)):
                    parsed = pool.submit(_parse, content, kwargs).result()
            else:
                parsed = pool.submit(_parse, content, kwargs).result()
        except BrokenProcessPool as err:
            self._renew(pool)
            raise FeedParseError(
                f"the parser process died while parsing this feed ({err})"
            ) from err
        for problem in parsed.problems:
            log.warning("feed %s: %s", feed_id, problem)
        return parsed

    def close(self) -> None:
        """Stop the worker processes (idempotent)."""
        with self._lock:
            self.closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
