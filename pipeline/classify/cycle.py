"""The classify stage: score every article revision no model has classified yet (:func:`classify`).

Called through :mod:`pipeline.jobs` (the Airflow tasks and the CLI) with a
:class:`~pipeline.runtime.Runtime`; like every stage it opens its own database sessions, is
idempotent, takes ``now`` from the caller, and returns a frozen report of ids and counts
(:class:`~pipeline.reports.ClassifyReport`), never article bodies. It orchestrates only: the SQL
lives in :mod:`pipeline.store`, scoring in the rest of :mod:`pipeline.classify`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import datetime

from pipeline import logs, metrics
from pipeline.classify.model import Doc, Score, TextModel
from pipeline.classify.pool import MIN_ARTICLES_PER_PROCESS, ModelRef, ScorePool, score_processes
from pipeline.classify.registry import active_version, list_models, load_version
from pipeline.errors import ModelError
from pipeline.ingest.article import PageCandidate, full_text_pass
from pipeline.reports import ClassifyReport
from pipeline.runtime import Runtime
from pipeline.store.articles import (
    ArticleRevision,
    Verdict,
    add_classifications,
    articles_to_classify,
    count_to_classify,
)
from pipeline.store.pages import page_candidates, store_pages

__all__ = ["classify"]

# Records keep the logger name they had before this stage moved out of pipeline.jobs (tests read it).
log = logging.getLogger("pipeline.jobs")


def _article_pages(rt: Runtime, pool: ScorePool, *, now: datetime) -> None:
    """Article pages for new summary-only items where the page can change the decision (the
    cascade of pipeline/ingest/article.py), stored before their first score; the candidates' head
    scores come from ``pool`` (its workers when it has them). No transaction is open while pages
    are fetched."""
    modes = {f.id: f.full_text for f in rt.config.feeds}
    with rt.sessions.begin() as session:
        candidates = page_candidates(session, modes)
    if not candidates:
        return

    def triage(items: Sequence[PageCandidate]) -> list[tuple[float, Sequence[str]]]:
        limit = rt.config.classify.max_text_chars
        docs = [_doc(c.title, c.summary, c.body, limit) for c in items]
        scores = pool.result(pool.submit(docs, explain=False), docs, explain=False)
        return [(s.score, s.evidence.regimes) for s in scores]

    outcomes = full_text_pass(
        candidates,
        triage=triage,
        threshold=pool.threshold,
        settings=rt.config.full_text,
        policy=rt.config.fetch,
    )
    with rt.sessions.begin() as session:
        store_pages(session, outcomes, now=now)


def _doc(title: str | None, summary: str | None, body: str | None, limit: int) -> Doc:
    """What the model reads of one article: title, summary, body, ``limit`` characters in all."""
    title = (title or "")[:limit]
    summary = (summary or "")[: max(0, limit - len(title))]
    body = (body or "")[: max(0, limit - len(title) - len(summary))]
    return Doc.of(title, summary, body)


def _idle_version(rt: Runtime) -> str | None:
    """The active model's version when it has nothing to do (no article revision that no model has
    classified, no article page to fetch), read from the registry without loading the model (about
    1 s of a quiet cycle); None when there is work, or when the registry names no active version
    (loading the model then says why)."""
    if rt._model is not None:
        return None
    active = [m.version for m in list_models(rt.config.model_dir) if m.active]
    if not active:
        return None
    modes = {f.id: f.full_text for f in rt.config.feeds}
    with rt.sessions() as session:
        if articles_to_classify(session, active[0], limit=1):
            return None
        if page_candidates(session, modes, limit=1):
            return None
    return active[0]


def _score_pool(rt: Runtime, processes: int) -> ScorePool:
    """The run's scorer. With worker processes to start, the active version is read from the
    registry and only the workers load it, so this process never does (about 2 s, and the model's
    memory); when that version cannot be read or the workers refuse it, this process loads the
    active model as ever (:func:`~pipeline.classify.registry.load_active`, with its fallback to an
    earlier promotion) and scores with that."""

    def pool_of(model: TextModel | ModelRef) -> ScorePool:
        return ScorePool(
            model,
            rt.regimes,
            model_dir=rt.config.model_dir,
            regimes_path=rt.config.config_dir / "regimes.yaml",
            processes=processes,
        )

    if processes > 1 and rt._model is None:
        try:
            version, threshold = active_version(rt.config.model_dir, threshold=rt.config.threshold)
        except ModelError as err:
            log.warning("loading the model in this process: %s", err)
        else:

            def load() -> TextModel:
                return load_version(
                    rt.config.model_dir, version, embed_workers=rt.config.embed_workers
                )

            pool = pool_of(ModelRef(version, threshold, load))
            if pool.parallel:
                return pool
            pool.close()
    return pool_of(rt.model)


def classify(rt: Runtime, *, now: datetime, batch: int | None = None) -> ClassifyReport:
    """Score every article revision no model has classified yet (after fetching the article pages
    the full-text cascade asks for): the new and edited articles of this run, and any backlog a
    failed run left. Articles an earlier model scored are re-scored by the ``rescore`` DAG only.

    Work is read in keyset pages of ``batch`` (``classify.batch_size``) articles by id, so no query
    or report grows with the backlog; each article's text is cut to ``classify.max_text_chars``. A
    backlog of more than one page per process is scored in ``classify.processes`` worker processes
    (:mod:`pipeline.classify.pool`) while this process reads the next page and writes the verdicts of
    the last, one transaction per page; a page's verdicts are written only once it is scored, so a
    failed run leaves the rest of the backlog for the next one."""
    started = metrics.start()
    idle = _idle_version(rt)
    if idle is not None:  # an unchanged cycle: the model is not even loaded
        log.info("classified 0 articles: nothing new for model %s", idle)
        report = ClassifyReport(idle, 0, 0)
        metrics.emit_report(rt.config.metrics, report, started=started)
        return report
    settings = rt.config.classify
    size = batch or settings.batch_size
    with rt.sessions() as session:
        backlog = count_to_classify(session, cap=MIN_ARTICLES_PER_PROCESS * 64)
    processes = score_processes(settings.processes, backlog)
    flagged = scored = watermark = 0
    pool = _score_pool(rt, processes)
    version, threshold = pool.version, pool.threshold
    logs.serve_model(version)
    if pool.parallel:
        log.info("scoring a backlog of %s articles in %d worker processes", backlog, processes)
    # Pages read, scored (in the workers) and written in order; at most one page per process is in
    # flight beyond the one being read, so memory stays bounded whatever the backlog.
    in_flight: deque[tuple[list[ArticleRevision], list[Doc], Future[list[Score]]]] = deque()

    def store(refs: list[ArticleRevision], docs: list[Doc], future: Future[list[Score]]) -> int:
        scores = pool.result(future, docs)
        verdicts = [
            Verdict(
                ref,
                score=s.score,
                flagged=s.flagged,
                regimes=s.evidence.regimes,
                evidence={**s.evidence.as_dict(), "confidence": s.confidence},
            )
            for ref, s in zip(refs, scores, strict=True)
        ]
        with rt.sessions.begin() as session:  # one INSERT a page
            add_classifications(
                session, verdicts, model_version=version, threshold=threshold, now=now
            )
        return sum(s.flagged for s in scores)

    with pool:
        _article_pages(rt, pool, now=now)
        while True:
            with rt.sessions() as session:
                articles = articles_to_classify(session, version, after_id=watermark, limit=size)
                refs = [ArticleRevision(a.id, a.revision) for a in articles]
                docs = [_doc(a.title, a.summary, a.body, settings.max_text_chars) for a in articles]
            if not refs:
                break
            in_flight.append((refs, docs, pool.submit(docs)))
            scored += len(refs)
            watermark = refs[-1].id
            while len(in_flight) > (pool.processes if pool.parallel else 0):
                flagged += store(*in_flight.popleft())
            if len(refs) < size:
                break
        while in_flight:
            flagged += store(*in_flight.popleft())
    log.info("classified %d articles with model %s: %d flagged", scored, version, flagged)
    report = ClassifyReport(version, scored, flagged)
    metrics.emit_report(rt.config.metrics, report, started=started)
    return report
