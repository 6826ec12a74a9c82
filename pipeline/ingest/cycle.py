"""The ingest stage: fetch every due feed, parse it and store its entries (:func:`ingest`).

Called through :mod:`pipeline.jobs` (the Airflow tasks and the CLI) with a
:class:`~pipeline.runtime.Runtime`; like every stage it opens its own database sessions, is
idempotent, takes ``now`` from the caller, and returns a frozen report of ids and counts
(:class:`~pipeline.reports.IngestReport`), never article bodies. It orchestrates only: the SQL lives
in :mod:`pipeline.store`, fetching and parsing in the rest of :mod:`pipeline.ingest`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import httpx
from sqlalchemy.exc import DataError, IntegrityError

from pipeline import logs, metrics
from pipeline.config import FeedConfig, FetchPolicy
from pipeline.errors import FeedError
from pipeline.health import feed_line
from pipeline.ingest.fetch import HTTPStatusError, fetch_feed
from pipeline.ingest.harvest import Harvest
from pipeline.ingest.parse import ParseBudget, ParsedFeed, format_prints, parse_feed
from pipeline.ingest.parsepool import ParsePool, parse_processes
from pipeline.ingest.prescan import ParseLimits
from pipeline.reports import FeedOutcome, IngestReport
from pipeline.runtime import Runtime
from pipeline.store.articles import (
    NotModified,
    record_fetch,
    record_not_modified,
    sync_feeds,
    upsert_entries,
)
from pipeline.store.feeds import FetchState, fetch_states, refusal_reason

__all__ = ["MAX_RETRY_AFTER", "ingest"]

# Records keep the logger name they had before this stage moved out of pipeline.jobs (tests read it).
log = logging.getLogger("pipeline.jobs")


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
                known=state.entry_prints,
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
                # Entries unchanged since the last stored document are known articles: duplicates.
                duplicates=stored.duplicates + parsed.duplicates_in_feed + parsed.unchanged,
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
                entry_prints=format_prints(parsed.prints),
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
