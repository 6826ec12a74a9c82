"""The pipeline's stages as plain functions: what the Airflow tasks and the CLI both call.

``migrate`` (once, before a run) → ``ingest`` → ``classify`` → ``record_alerts`` → ``deliver`` →
``check_health``; ``compose_digests`` (hourly, the ``digest`` DAG) → ``deliver``. Each stage takes
a :class:`Runtime` (``with Runtime.open(config) as rt:``), opens its own database sessions, is
idempotent, takes ``now`` from the caller, and returns a frozen report of ids and counts
(:mod:`pipeline.reports`; ``as_dict()`` is what goes into XCom), never article bodies.

This module orchestrates only: the SQL lives in :mod:`pipeline.store` (and the outbox), the wording of
every message in :mod:`pipeline.deliver` and its templates.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from itertools import islice
from types import TracebackType
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline import logs, metrics
from pipeline.alerts.digest import compose_digests as compose_due_digests
from pipeline.alerts.record import record_story_alerts
from pipeline.classify.model import Doc, Score, TextModel
from pipeline.classify.pool import MIN_ARTICLES_PER_PROCESS, ScorePool, score_processes
from pipeline.classify.registry import list_models, load_active
from pipeline.config import Config, FeedConfig, FetchPolicy
from pipeline.deliver.mail import MailSender, SmtpSender
from pipeline.deliver.notices import record_health_notices, send_notices
from pipeline.deliver.outbox import deliver_pending
from pipeline.deliver.webhook import WebhookPolicy, WebhookSender
from pipeline.errors import FeedError
from pipeline.health import check_feeds, feed_batches, feed_line
from pipeline.ingest.article import PageCandidate, full_text_pass
from pipeline.ingest.fetch import HTTPStatusError, fetch_feed
from pipeline.ingest.harvest import Harvest
from pipeline.ingest.parse import ParseBudget, ParsedFeed, parse_feed
from pipeline.ingest.parsepool import ParsePool, parse_processes
from pipeline.ingest.prescan import ParseLimits
from pipeline.knowledge.regimes import RegimeBook, load_regimes
from pipeline.reports import (
    AlertsReport,
    ClassifyReport,
    DeliveryReport,
    DigestReport,
    FeedOutcome,
    HealthReport,
    IngestReport,
    MigrateReport,
    RunSummary,
)
from pipeline.store.articles import (
    ArticleRevision,
    NotModified,
    add_classification,
    articles_to_classify,
    count_to_classify,
    record_fetch,
    record_not_modified,
    sync_feeds,
    upsert_entries,
)
from pipeline.store.db import (
    make_engine,
    make_sessionmaker,
    require_current_schema,
    upgrade_database,
)
from pipeline.store.deliveries import count_pending
from pipeline.store.feeds import FetchState, fetch_states, refusal_reason
from pipeline.store.pages import page_candidates, store_pages
from pipeline.store.retention import maintain, purge_old_rows
from pipeline.store.summary import database_summary as _database_summary

__all__ = [
    "MAX_RETRY_AFTER",
    "Runtime",
    "check_health",
    "classify",
    "compose_digests",
    "database_summary",
    "deliver",
    "housekeeping",
    "ingest",
    "migrate",
    "plan_batches",
    "record_alerts",
    "run_once",
    "webhook_sender",
]

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What the stages share in one process: config, database, and lazily loaded model/knowledge.

    A context manager: ``with Runtime.open(config) as rt:`` closes it (model workers stopped, engine
    disposed) however the block ends. :meth:`open` migrates the schema by default (the CLI, tests);
    with ``migrate=False`` (the DAG's tasks, after its ``migrate_database`` task) it only checks,
    quietly, that the schema is current, and raises :class:`~pipeline.errors.StoreError` if not.
    """

    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    _model: TextModel | None = field(default=None, repr=False)
    closed: bool = field(default=False, repr=False)

    @classmethod
    def open(cls, config: Config, *, migrate: bool = True) -> Runtime:
        logs.install(logs.secrets_of(config))  # context fields and masked secrets in log records
        engine = make_engine(config.database_url)
        try:
            if migrate:
                upgrade_database(engine)
            else:
                require_current_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(config, engine, make_sessionmaker(engine))

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def model(self) -> TextModel:
        if self._model is None:
            self._model = load_active(
                self.config.model_dir,
                threshold=self.config.threshold,
                embed_workers=self.config.embed_workers,
            )
        return self._model

    @cached_property
    def regimes(self) -> RegimeBook:
        return load_regimes(self.config.config_dir / "regimes.yaml")

    @cached_property
    def designation_index(self) -> Any:
        """The UN Consolidated List index (a DesignationIndex), or None when no list is configured."""
        path = self.config.designations_path
        if path is None:
            return None
        from pipeline.knowledge.designations import load_consolidated_list

        return load_consolidated_list(path)

    @cached_property
    def designations(self) -> Callable[[str], list[str]] | None:
        """A callable text -> matched designated names, or None when no list is configured."""
        index = self.designation_index
        if index is None:
            return None

        def match(text: str) -> list[str]:
            seen: dict[str, str] = {}
            for m in index.match(text):
                seen.setdefault(m.ref, f"{m.name} ({m.ref}, {m.kind})")
            return list(seen.values())

        return match

    @cached_property
    def describer(self) -> Any:
        """A :class:`~pipeline.alerts.describe.Describer`: story -> what its alert alleges (kinds, actors with direction, places, date); see
        :mod:`pipeline.alerts.describe`. Without a servable breach-kind tagger the kinds are not
        tagged (logged once); without places.yaml or actors.yaml fewer names are found."""
        from pipeline.alerts.describe import Describer
        from pipeline.classify.kinds import KINDS_DIR, load_active_tagger
        from pipeline.errors import ModelError
        from pipeline.knowledge.actors import load_actors
        from pipeline.knowledge.places import load_places

        cdir = self.config.config_dir
        try:
            tagger = load_active_tagger(self.config.model_dir / KINDS_DIR)
        except ModelError as err:
            log.error("alerts will not say what kind of breach: %s", err)
            tagger = None
        places = load_places(cdir / "places.yaml", missing_ok=True)
        actors = load_actors(
            cdir / "actors.yaml", cdir / "regimes.yaml", cdir / "places.yaml", missing_ok=True
        )
        describer = Describer(
            tagger=tagger, actors=actors, places=places, designations=self.designation_index
        )
        return describer

    def close(self) -> None:
        """Stop the model's embedding workers and dispose of the engine (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            stop = getattr(self._model and self._model.embedder, "close", None)
            if stop is not None:  # the embedder's worker processes
                stop()
        finally:
            self.engine.dispose()


def migrate(config: Config) -> MigrateReport:
    """Bring the database schema to this code's head revision (idempotent): once per run, before
    the stages (the DAG's first task; ``run-once`` does it by opening its runtime)."""
    engine = make_engine(config.database_url)
    try:
        upgrade_database(engine)
        return MigrateReport(require_current_schema(engine))
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------------------- ingest


# A server's Retry-After is honoured up to this long: a hostile or broken value (an HTTP-date in
# the year 9999, fifteen digits of seconds) must neither overflow the clock nor silence a feed.
MAX_RETRY_AFTER = timedelta(hours=24)


def _retry_at(feed_id: str, now: datetime, seconds: float | None) -> datetime | None:
    if not seconds or seconds <= 0:
        return None
    if seconds >= MAX_RETRY_AFTER.total_seconds():
        log.warning(
            "feed %s: Retry-After of %.0f s capped at %s", feed_id, seconds, MAX_RETRY_AFTER
        )
        return now + MAX_RETRY_AFTER
    return now + timedelta(seconds=seconds)


def _harvest(
    feed: FeedConfig,
    state: FetchState,
    policy: FetchPolicy,
    now: datetime,
    client: httpx.Client | None,
    budget: ParseBudget,
    parse: Callable[..., ParsedFeed] = parse_feed,
) -> Harvest:
    """Fetch (conditionally), then parse (``parse``: ``parse_feed`` or a :class:`ParsePool`): one
    feed's harvest; a failure is recorded, not raised. A body identical to the last one stored (its
    SHA-256) is not parsed: the feed is recorded as not modified, as on a 304."""
    out = Harvest(feed, now, policy.max_bytes)
    try:
        out.result = fetch_feed(
            feed.url,
            etag=state.etag,
            last_modified=state.last_modified,
            policy=policy,
            client=client,
        )
        out.http_status = out.result.http_status
        if out.result.status == "ok":
            out.body_sha256 = hashlib.sha256(out.result.content).hexdigest()
            if out.body_sha256 == state.body_sha256:  # a server that ignores conditional GET
                out.same_body = True
                return out
            out.parsed = parse(
                out.result.content,
                feed_id=feed.id,
                now=now,
                language=feed.language,
                content_type=out.result.content_type,
                base_url=out.result.url,
                max_items=feed.max_items,
                limits=ParseLimits.from_policy(policy),
                budget=budget,
            )
    except HTTPStatusError as err:
        out.refused(err)
    except FeedError as err:
        out.failed(err)
    return out


def _store_harvest(rt: Runtime, item: Harvest, *, run_id: str, now: datetime) -> FeedOutcome:
    """Store one feed's harvest in one transaction (all of its entries or none); if the database
    refuses its rows, record the refusal in a new transaction instead."""
    feed = item.feed
    fetched: dict[str, Any] = {
        "run_id": run_id,
        "feed_id": feed.id,
        "started_at": now,
        "finished_at": now,
        "http_status": item.http_status,
    }
    try:
        with rt.sessions.begin() as session:
            if item.error is not None:
                retry = _retry_at(feed.id, now, item.retry_after)
                record_fetch(
                    session, outcome="error", error=item.error, next_fetch_after=retry, **fetched
                )
                return FeedOutcome(feed.id, "error", error=item.error)
            assert item.result is not None
            if item.parsed is None:  # 304, or the same body again: nothing parsed, only the log
                record_fetch(
                    session,
                    outcome="not_modified",
                    etag=item.result.etag,
                    last_modified=item.result.last_modified,
                    **fetched,
                )
                return FeedOutcome(feed.id, "not_modified", same_body=item.same_body)
            parsed = item.parsed
            stored = upsert_entries(session, parsed.entries, now=now)
            outcome = FeedOutcome(
                feed.id,
                "ok",
                entries_seen=parsed.entries_seen,
                articles_new=len(stored.new_ids),
                articles_updated=len(stored.updated_ids),
                duplicates=stored.duplicates + parsed.duplicates_in_feed,
                skipped=parsed.skipped,
            )
            record_fetch(
                session,
                outcome="ok",
                nbytes=len(item.result.content),
                entries_seen=outcome.entries_seen,
                articles_new=outcome.articles_new,
                articles_updated=outcome.articles_updated,
                duplicates=outcome.duplicates,
                skipped=outcome.skipped,
                error=item.problems(),
                etag=item.result.etag,
                last_modified=item.result.last_modified,
                body_sha256=item.body_sha256,
                **fetched,
            )
    except (DataError, IntegrityError) as err:
        reason = refusal_reason(err)
        with rt.sessions.begin() as session:
            record_fetch(session, outcome="error", error=reason, **fetched)
        return FeedOutcome(feed.id, "error", error=reason)
    return outcome


# Unchanged (304) feeds whose fetch log one transaction writes: one commit, not one a feed.
_UNCHANGED_BATCH = 500


def _store_unchanged(
    rt: Runtime, items: Sequence[Harvest], *, run_id: str, now: datetime
) -> list[FeedOutcome]:
    """Record many 304 Not Modified fetches in one transaction (they have no entries to keep
    apart); if the database refuses one, each is stored on its own as :func:`_store_harvest` does."""
    if not items:
        return []
    fetches = []
    for item in items:
        assert item.result is not None
        fetches.append(
            NotModified(item.feed.id, item.http_status, item.result.etag, item.result.last_modified)
        )
    try:
        with rt.sessions.begin() as session:
            record_not_modified(session, fetches, run_id=run_id, at=now)
    except (DataError, IntegrityError):
        return [_store_harvest(rt, item, run_id=run_id, now=now) for item in items]
    return [FeedOutcome(item.feed.id, "not_modified", same_body=item.same_body) for item in items]


def ingest(
    rt: Runtime,
    *,
    now: datetime,
    run_id: str,
    client: httpx.Client | None = None,
    feed_ids: Sequence[str] | None = None,
) -> IngestReport:
    """Fetch every due feed (concurrently), parse, store; one failing feed never stops the others.

    Each feed is stored in its own transaction (all of its entries or none). A feed whose server
    asked to wait (Retry-After on a 429/503) is skipped until then and counted as deferred. If the
    database refuses a feed's rows (a value it cannot hold), that feed is rolled back and recorded
    as failed, and the others go on.

    Streamed: feeds are fetched by ``fetch.workers`` threads and parsed in worker processes when
    the run has enough of them (``fetch.parse_processes``; :mod:`pipeline.ingest.parsepool`), at
    most twice as many feeds in flight as threads, each stored as soon as it is ready: memory does
    not grow with the number of feeds. The 304s' fetch logs are written many per transaction.
    """
    started, config = metrics.start(), rt.config
    feeds = [f for f in config.enabled_feeds if feed_ids is None or f.id in feed_ids]
    with rt.sessions.begin() as session:
        sync_feeds(session, config.feeds)
        states = fetch_states(session)
    due = [f for f in feeds if states[f.id].due(now)]
    deferred = [f.id for f in feeds if f not in due]
    for feed_id in deferred:
        log.info(
            "feed %s deferred until %s (its server asked to wait)",
            feed_id,
            states[feed_id].next_fetch_after,
        )
    policy = config.fetch
    budget = ParseBudget(policy.parse_budget_bytes)  # parse memory, shared by the workers
    threads = min(policy.workers, max(1, len(due)))
    # Streamed: at most 2 x threads feeds are fetched, parsed or waiting to be stored at once, and
    # each is stored (its own transaction) as soon as it is ready, so memory does not grow with the
    # number of feeds. Counted only once each feed's transaction committed.
    outcomes: list[FeedOutcome] = []
    parser = ParsePool(parse_processes(policy.parse_processes, len(due)), budget)
    with parser, ThreadPoolExecutor(max_workers=threads) as pool:

        def submit(f: FeedConfig) -> Future[Harvest]:
            return pool.submit(
                logs.call_bound,
                {"feed_id": f.id},
                _harvest,
                f,
                states[f.id],
                policy,
                now,
                client,
                budget,
                parser,
            )

        queue = iter(due)
        running = {submit(f) for f in islice(queue, 2 * threads)}
        unchanged: list[Harvest] = []  # 304s: only their fetch log to write, many per transaction
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                item = fut.result()
                if item.error is None and item.parsed is None:
                    unchanged.append(item)
                else:
                    outcomes.append(
                        logs.call_bound(
                            {"feed_id": item.feed.id},
                            _store_harvest,
                            rt,
                            item,
                            run_id=run_id,
                            now=now,
                        )
                    )
                del item
                if len(unchanged) >= _UNCHANGED_BATCH:
                    outcomes += _store_unchanged(rt, unchanged, run_id=run_id, now=now)
                    unchanged = []
                nxt = next(queue, None)
                if nxt is not None:
                    running.add(submit(nxt))
        outcomes += _store_unchanged(rt, unchanged, run_id=run_id, now=now)
    order = {f.id: i for i, f in enumerate(due)}
    outcomes.sort(key=lambda o: order[o.feed_id])  # the log reads in feed-file order
    min_items = {f.id: f.min_items for f in feeds}
    for outcome in outcomes:  # one line per feed, once: what it did, with counts, or why it failed
        failed = outcome.outcome == "error"
        line = feed_line(outcome, min_items=min_items[outcome.feed_id])
        with logs.bind(feed_id=outcome.feed_id):
            log.log(logging.WARNING if failed or "below min_items" in line else logging.INFO, line)
    report = IngestReport.of(run_id, outcomes, deferred=len(deferred))
    log.info(
        "ingest %s: %d ok, %d not modified, %d failed, %d deferred; %d new, %d duplicates",
        run_id,
        report.feeds_ok,
        report.feeds_not_modified,
        report.feeds_failed,
        report.feeds_deferred,
        report.articles_new,
        report.duplicates,
    )
    metrics.emit_report(config.metrics, report, started=started)
    return report


# -------------------------------------------------------------------------------------- classify


def _article_pages(rt: Runtime, model: TextModel, *, now: datetime) -> None:
    """Article pages for new summary-only items where the page can change the decision (the
    cascade of pipeline/ingest/article.py), stored before their first score. No transaction is
    open while pages are fetched."""
    modes = {f.id: f.full_text for f in rt.config.feeds}
    with rt.sessions.begin() as session:
        candidates = page_candidates(session, modes)
    if not candidates:
        return

    def triage(items: Sequence[PageCandidate]) -> list[tuple[float, Sequence[str]]]:
        limit = rt.config.classify.max_text_chars
        docs = [_doc(c.title, c.summary, c.body, limit) for c in items]
        scores = model.score_docs(docs, regimes=rt.regimes, explain=False)
        return [(s.score, s.evidence.regimes) for s in scores]

    outcomes = full_text_pass(
        candidates,
        triage=triage,
        threshold=model.threshold,
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
    model = rt.model
    logs.serve_model(model.version)
    settings = rt.config.classify
    size = batch or settings.batch_size
    _article_pages(rt, model, now=now)
    with rt.sessions() as session:
        backlog = count_to_classify(session, cap=MIN_ARTICLES_PER_PROCESS * 64)
    processes = score_processes(settings.processes, backlog)
    flagged = scored = watermark = 0
    pool = ScorePool(
        model,
        rt.regimes,
        model_dir=rt.config.model_dir,
        regimes_path=rt.config.config_dir / "regimes.yaml",
        processes=processes,
    )
    if pool.parallel:
        log.info("scoring a backlog of %s articles in %d worker processes", backlog, processes)
    # Pages read, scored (in the workers) and written in order; at most one page per process is in
    # flight beyond the one being read, so memory stays bounded whatever the backlog.
    in_flight: deque[tuple[list[ArticleRevision], list[Doc], Future[list[Score]]]] = deque()

    def store(refs: list[ArticleRevision], docs: list[Doc], future: Future[list[Score]]) -> int:
        scores = pool.result(future, docs)
        with rt.sessions.begin() as session:
            for ref, s in zip(refs, scores, strict=True):
                add_classification(
                    session,
                    ref,
                    model_version=model.version,
                    score=s.score,
                    threshold=model.threshold,
                    flagged=s.flagged,
                    regimes=s.evidence.regimes,
                    evidence={**s.evidence.as_dict(), "confidence": s.confidence},
                    now=now,
                )
        return sum(s.flagged for s in scores)

    with pool:
        while True:
            with rt.sessions() as session:
                articles = articles_to_classify(
                    session, model.version, after_id=watermark, limit=size
                )
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
    log.info("classified %d articles with model %s: %d flagged", scored, model.version, flagged)
    report = ClassifyReport(model.version, scored, flagged)
    metrics.emit_report(rt.config.metrics, report, started=started)
    return report


# ------------------------------------------------------------------------------- alerts & delivery


def _lazy_designations(rt: Runtime) -> Callable[[str], list[str]] | None:
    """``rt.designations``, loaded when first called (None when no list is configured)."""
    if rt.config.designations_path is None:
        return None

    def match(text: str) -> list[str]:
        matcher = rt.designations
        return matcher(text) if matcher is not None else []

    return match


def record_alerts(rt: Runtime, *, now: datetime) -> AlertsReport:
    """Group flagged articles into stories, record new/update alerts and outbox rows, and queue
    digest subscribers' items (all in one transaction). Digests are composed by
    :func:`compose_digests` (the ``digest`` DAG), not here."""
    started = metrics.start()
    with rt.sessions.begin() as session:
        rep = record_story_alerts(
            session,
            rt.config,
            now=now,
            # Loaded on first use: a cycle with nothing new loads neither the UN list nor the
            # breach-kind tagger and gazetteers (about 1.5 s).
            designations=_lazy_designations(rt),
            regimes=rt.regimes,
            describe=lambda facts: rt.describer.describe(facts),
            prepare=lambda stories: rt.describer.prime(stories),
        )
        pending = count_pending(session)
    report = AlertsReport(
        alerts_new=len(rep.alert_ids),
        alert_ids=tuple(rep.alert_ids),
        deliveries_pending=pending,
        stories_new=rep.stories_new,
        stories_joined=rep.stories_joined,
        updates_new=rep.updates,
        digest_items_queued=rep.queued,
    )
    log.info(
        "recorded %d alerts (%d updates) for %d new and %d joined articles; %d digest items "
        "queued; %d deliveries pending",
        report.alerts_new,
        report.updates_new,
        report.stories_new,
        report.stories_joined,
        report.digest_items_queued,
        report.deliveries_pending,
    )
    metrics.emit_report(rt.config.metrics, report, started=started)
    return report


def compose_digests(rt: Runtime, *, now: datetime) -> DigestReport:
    """Compose the daily digests due at ``now`` with their outbox rows, in one transaction (see
    :mod:`pipeline.alerts.digest`): each recipient's at or after its ``digest_hour_utc``, once per
    UTC day; a failed or missed run loses nothing (the next one gathers every queued item), and a
    re-run composes nothing twice. ``deliver`` sends them."""
    started = metrics.start()
    with rt.sessions.begin() as session:
        composed = compose_due_digests(session, rt.config, now=now)
        pending = count_pending(session)
    report = DigestReport(
        digests_new=len(composed),
        digest_ids=tuple(d.digest_id for d in composed),
        items=sum(d.items for d in composed),
        deliveries_pending=pending,
    )
    log.info(
        "composed %d digests with %d items; %d deliveries pending",
        report.digests_new,
        report.items,
        report.deliveries_pending,
    )
    metrics.emit_report(rt.config.metrics, report, stage="digest", started=started)
    return report


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def webhook_sender(config: Config) -> WebhookSender:
    """The production webhook sender: the fetcher's allow-list and user agent, bounded attempts."""
    return WebhookSender(
        WebhookPolicy(
            timeout=config.alerts.webhook_timeout,
            allow_hosts=config.fetch.allow_hosts,
            user_agent=config.fetch.user_agent,
        )
    )


def deliver(
    rt: Runtime,
    *,
    now: datetime,
    sender: MailSender | None = None,
    webhook: WebhookSender | None = None,
) -> DeliveryReport:
    started = metrics.start()
    report = deliver_pending(
        rt.sessions,
        rt.config,
        sender or SmtpSender(rt.config.smtp),
        now=now,
        owner=_owner(),
        regimes=rt.regimes,
        designations=rt.designations,
        webhook=webhook or webhook_sender(rt.config),
    )
    log.info("delivery: %s", report.as_dict())
    metrics.emit_report(rt.config.metrics, report, started=started, sessions=rt.sessions, now=now)
    return report


def plan_batches(config: Config) -> list[list[str]]:
    """The enabled feeds' ids in batches of ``health.feed_batch_size``: one ingest task each."""
    return feed_batches(config.enabled_feeds, config.health.feed_batch_size)


def check_health(rt: Runtime, *, now: datetime, sender: MailSender | None = None) -> HealthReport:
    """Record operator notices for feeds in trouble (once per problem, again on recovery or after
    the reminder interval: :mod:`pipeline.health.feeds`) and stuck deliveries, then email every
    unsent notice (these and the delivery failures ``deliver`` recorded) to the operators, once
    each."""
    started = metrics.start()
    with rt.sessions.begin() as session:
        notices = check_feeds(session, rt.config, now=now)
        notices += record_health_notices(session, rt.config, now=now)
    for message in notices:
        log.error("operator notice: %s", message)
    emailed = send_notices(rt.sessions, rt.config, sender or SmtpSender(rt.config.smtp), now=now)
    report = HealthReport(len(notices), tuple(notices), emailed)
    metrics.emit_report(rt.config.metrics, report, started=started)
    return report


def run_once(
    rt: Runtime,
    *,
    now: datetime,
    run_id: str,
    sender: MailSender | None = None,
    client: httpx.Client | None = None,
) -> RunSummary:
    """One full cycle without the scheduler: the same functions the DAG calls, in the same order
    (the schema was brought up to date when ``rt`` was opened)."""
    ing = ingest(rt, now=now, run_id=run_id, client=client)
    cls = classify(rt, now=now)
    rec = record_alerts(rt, now=now)
    dig = compose_digests(rt, now=now)
    dlv = deliver(rt, now=now, sender=sender)
    health = check_health(rt, now=now, sender=sender)
    return RunSummary.of(ing, cls, rec, dlv, health, digests=dig)


def housekeeping(rt: Runtime, *, now: datetime) -> dict[str, Any]:
    """Purge rows past their retention (``retention:``; one transaction), then VACUUM/ANALYZE."""
    started, keep = metrics.start(), rt.config.retention
    with rt.sessions.begin() as session:
        purged = purge_old_rows(
            session,
            now=now,
            fetch_log_days=keep.fetch_log_days,
            sent_deliveries_days=keep.sent_deliveries_days,
            articles_days=keep.articles_days,
        )
    ran = maintain(rt.engine)
    log.info(
        "housekeeping: purged %d fetch-log rows, %d sent deliveries, %d articles; ran %s",
        purged.fetch_log,
        purged.deliveries,
        purged.articles,
        ran,
    )
    out = {
        "fetch_log": purged.fetch_log,
        "deliveries": purged.deliveries,
        "articles": purged.articles,
        "maintenance": ran,
    }
    metrics.emit_report(rt.config.metrics, out, stage="housekeeping", started=started)
    return out


def database_summary(rt: Runtime) -> dict[str, Any]:
    """Counts that tell an operator what the pipeline holds, and the newest flagged titles."""
    with rt.sessions() as session:
        summary = _database_summary(session)
    return {**summary, "outbox_dir": str(rt.config.outbox_dir)}
