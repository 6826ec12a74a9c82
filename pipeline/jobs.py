"""The pipeline's stages as plain functions: what the Airflow tasks and the CLI both call.

``ingest`` → ``classify`` → ``record_alerts`` → ``deliver`` (plus ``check_health``). Each stage opens
its own database session, is idempotent, takes ``now`` from the caller, and returns a small
JSON-serialisable report of ids and counts (what goes into XCom), never article bodies.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.alerts.digest import compose_digests
from pipeline.alerts.record import record as _record_alerts
from pipeline.classify.model import TextModel, article_text
from pipeline.classify.registry import load_active
from pipeline.config import Config, FeedConfig
from pipeline.deliver.mail import MailSender, SmtpSender
from pipeline.deliver.outbox import (
    DeliveryReport,
    deliver_pending,
    display_recipient,
    record_notice,
    send_notices,
)
from pipeline.deliver.webhook import WebhookPolicy, WebhookSender
from pipeline.errors import FeedError
from pipeline.ingest.fetch import FetchPolicy, FetchResult, HTTPStatusError, fetch_feed
from pipeline.ingest.parse import ParsedFeed, parse_feed
from pipeline.knowledge.regimes import RegimeBook, load_regimes
from pipeline.net.policy import redact_url
from pipeline.store.articles import articles_to_classify, record_fetch, sync_feeds, upsert_entries
from pipeline.store.db import make_engine, make_sessionmaker, upgrade_database
from pipeline.store.schema import Article, Classification, Delivery, Digest, Feed, FetchLog, Story

__all__ = ["Runtime", "check_health", "classify", "deliver", "ingest", "record_alerts", "run_once"]

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What the stages share in one process: config, database, and lazily loaded model/knowledge."""

    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    _model: TextModel | None = field(default=None, repr=False)

    @classmethod
    def open(cls, config: Config, *, migrate: bool = True) -> Runtime:
        engine = make_engine(config.database_url)
        if migrate:
            upgrade_database(engine)
        return cls(config, engine, make_sessionmaker(engine))

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
    def designations(self) -> Any:
        """A callable text -> matched designated names, or None when no list is configured."""
        path = self.config.designations_path
        if path is None:
            return None
        from pipeline.knowledge.designations import load_consolidated_list

        index = load_consolidated_list(path)

        def match(text: str) -> list[str]:
            seen: dict[str, str] = {}
            for m in index.match(text):
                seen.setdefault(m.ref, f"{m.name} ({m.ref}, {m.kind})")
            return list(seen.values())

        return match

    def close(self) -> None:
        if self._model is not None and hasattr(self._model.embedder, "close"):
            self._model.embedder.close()  # type: ignore[union-attr]
        self.engine.dispose()


# ----------------------------------------------------------------------------------------- ingest


def _policy(config: Config) -> FetchPolicy:
    f = config.fetch
    return FetchPolicy(
        connect_timeout=f.connect_timeout,
        read_timeout=f.read_timeout,
        total_deadline=f.total_deadline,
        max_bytes=f.max_bytes,
        max_redirects=f.max_redirects,
        user_agent=f.user_agent,
        allow_hosts=frozenset(f.allow_hosts),
    )


@dataclass(slots=True)
class _Fetched:
    feed: FeedConfig
    started: datetime
    result: FetchResult | None = None
    parsed: ParsedFeed | None = None
    error: str | None = None
    http_status: int | None = None
    retry_after: float | None = None


def _fetch_and_parse(
    feed: FeedConfig,
    etag: str | None,
    modified: str | None,
    policy: FetchPolicy,
    now: datetime,
    client: httpx.Client | None,
) -> _Fetched:
    out = _Fetched(feed, now)
    try:
        out.result = fetch_feed(
            feed.url, etag=etag, last_modified=modified, policy=policy, client=client
        )
        out.http_status = out.result.http_status
        if out.result.status == "ok":
            out.parsed = parse_feed(
                out.result.content,
                feed_id=feed.id,
                now=now,
                language=feed.language,
                content_type=out.result.content_type,
                base_url=out.result.url,
                max_items=feed.max_items,
            )
    except HTTPStatusError as err:
        out.error, out.http_status, out.retry_after = str(err), err.http_status, err.retry_after
    except FeedError as err:
        out.error = str(err)
        if out.result is not None and out.result.truncated:
            out.error = f"body cut at {policy.max_bytes} bytes; {out.error}"
    return out


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


def _store_failure(err: DataError | IntegrityError) -> str:
    """A short reason for a write the database refused (never the statement or its parameters)."""
    orig = getattr(err, "orig", None) or err
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"the database refused this feed's entries: {type(orig).__name__}: {first[:200]}"


def ingest(
    rt: Runtime,
    *,
    now: datetime,
    run_id: str,
    client: httpx.Client | None = None,
    feed_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Fetch every due feed (concurrently), parse, store; one failing feed never stops the others.

    Each feed is stored in its own transaction (all of its entries or none). A feed whose server
    asked to wait (Retry-After on a 429/503) is skipped until then and counted as deferred. If the
    database refuses a feed's rows (a value it cannot hold), that feed is rolled back and recorded
    as failed, and the others go on.
    """
    config = rt.config
    feeds = [f for f in config.enabled_feeds if feed_ids is None or f.id in feed_ids]
    with rt.sessions.begin() as session:
        sync_feeds(session, config.feeds)
        state = {
            f.id: (f.etag, f.last_modified, f.next_fetch_after)
            for f in session.scalars(select(Feed))
        }
    due = [f for f in feeds if (until := state[f.id][2]) is None or until <= now]
    deferred = [f.id for f in feeds if f not in due]
    for feed_id in deferred:
        log.info("feed %s deferred until %s (its server asked to wait)", feed_id, state[feed_id][2])
    policy = _policy(config)
    with ThreadPoolExecutor(max_workers=min(config.fetch.workers, max(1, len(due)))) as pool:
        futures = [
            pool.submit(_fetch_and_parse, f, state[f.id][0], state[f.id][1], policy, now, client)
            for f in due
        ]
        fetched = [fut.result() for fut in futures]
    report: dict[str, Any] = {
        "run_id": run_id,
        "feeds_ok": 0,
        "feeds_not_modified": 0,
        "feeds_failed": 0,
        "feeds_deferred": len(deferred),
        "entries_seen": 0,
        "articles_new": 0,
        "articles_updated": 0,
        "duplicates": 0,
        "skipped": 0,
        "new_ids": [],
        "updated_ids": [],
        "errors": {},
    }
    for item in fetched:
        try:
            outcome = _store_fetched(rt, item, run_id=run_id, now=now)
        except (DataError, IntegrityError) as err:
            reason = _store_failure(err)
            with rt.sessions.begin() as session:
                record_fetch(
                    session,
                    run_id=run_id,
                    feed_id=item.feed.id,
                    started_at=now,
                    finished_at=now,
                    http_status=item.http_status,
                    outcome="error",
                    error=reason,
                )
            report["feeds_failed"] += 1
            report["errors"][item.feed.id] = reason
            log.error("feed %s failed: %s", item.feed.id, reason)
            continue
        for key, value in outcome.items():  # counted only once the feed's transaction committed
            if key == "errors":
                report["errors"].update(value)
            else:
                report[key] += value
    log.info(
        "ingest %s: %d ok, %d not modified, %d failed, %d deferred; %d new, %d duplicates",
        run_id,
        report["feeds_ok"],
        report["feeds_not_modified"],
        report["feeds_failed"],
        report["feeds_deferred"],
        report["articles_new"],
        report["duplicates"],
    )
    return report


def _store_fetched(rt: Runtime, item: _Fetched, *, run_id: str, now: datetime) -> dict[str, Any]:
    """Store one feed's outcome in one transaction (all of its entries or none); returns the
    counts to add to the ingest report."""
    config = rt.config
    feed = item.feed
    report: dict[str, Any] = {}
    with rt.sessions.begin() as session:
        common: dict[str, Any] = {
            "run_id": run_id,
            "feed_id": feed.id,
            "started_at": now,
            "finished_at": now,
            "http_status": item.http_status,
        }
        if item.error is not None:
            retry = _retry_at(feed.id, now, item.retry_after)
            record_fetch(
                session, outcome="error", error=item.error, next_fetch_after=retry, **common
            )
            log.warning("feed %s failed: %s", feed.id, item.error)
            return {"feeds_failed": 1, "errors": {feed.id: item.error}}
        assert item.result is not None
        if item.parsed is None:  # 304 Not Modified: nothing parsed, nothing written but the log
            record_fetch(
                session,
                outcome="not_modified",
                etag=item.result.etag,
                last_modified=item.result.last_modified,
                **common,
            )
            return {"feeds_not_modified": 1}
        parsed = item.parsed
        stored = upsert_entries(session, parsed.entries, now=now)
        problems = "; ".join(parsed.problems)[:2000] or None
        if item.result.truncated:
            problems = f"body cut at {config.fetch.max_bytes} bytes; " + (problems or "")
        record_fetch(
            session,
            outcome="ok",
            nbytes=len(item.result.content),
            entries_seen=parsed.entries_seen,
            articles_new=len(stored.new_ids),
            articles_updated=len(stored.updated_ids),
            duplicates=stored.duplicates + parsed.duplicates_in_feed,
            skipped=parsed.skipped,
            error=problems,
            etag=item.result.etag,
            last_modified=item.result.last_modified,
            **common,
        )
        if parsed.entries_seen < feed.min_items:
            log.warning(
                "feed %s: %d entries, fewer than min_items=%d",
                feed.id,
                parsed.entries_seen,
                feed.min_items,
            )
        report = {
            "feeds_ok": 1,
            "entries_seen": parsed.entries_seen,
            "articles_new": len(stored.new_ids),
            "articles_updated": len(stored.updated_ids),
            "duplicates": stored.duplicates + parsed.duplicates_in_feed,
            "skipped": parsed.skipped,
            "new_ids": list(stored.new_ids),
            "updated_ids": list(stored.updated_ids),
        }
    return report


# -------------------------------------------------------------------------------------- classify


def classify(
    rt: Runtime, *, now: datetime, ids: Sequence[int] | None = None, batch: int = 500
) -> dict[str, Any]:
    """Score the given articles, and any backlog of unclassified ones, with the active model."""
    model = rt.model
    flagged: list[int] = []
    scored = 0
    targets = None if ids is None else list(ids)
    while True:
        with rt.sessions.begin() as session:
            articles = articles_to_classify(session, model.version, limit=batch)
            if targets is not None:
                wanted = set(targets)
                extra = articles_to_classify(session, model.version, ids=targets, limit=batch)
                articles = extra + [a for a in articles if a.id not in wanted]
                articles = articles[:batch]
            if not articles:
                break
            texts = [article_text(a.title, a.summary, a.body) for a in articles]
            scores = model.score(texts, regimes=rt.regimes)
            for article, s in zip(articles, scores, strict=True):
                session.add(
                    Classification(
                        article_id=article.id,
                        revision=article.revision,
                        model_version=model.version,
                        score=s.score,
                        threshold=model.threshold,
                        flagged=s.flagged,
                        regimes=list(s.evidence.regimes),
                        evidence=s.evidence.as_dict(),
                        classified_at=now,
                    )
                )
                if s.flagged:
                    flagged.append(article.id)
            scored += len(articles)
            targets = None
        if len(articles) < batch:
            break
    log.info(
        "classified %d articles with model %s: %d flagged", scored, model.version, len(flagged)
    )
    return {
        "model_version": model.version,
        "classified": scored,
        "flagged": len(flagged),
        "flagged_ids": flagged,
    }


# ------------------------------------------------------------------------------- alerts & delivery


def record_alerts(rt: Runtime, *, now: datetime) -> dict[str, Any]:
    """Group flagged articles into stories, record new/update alerts and outbox rows, compose the
    daily digests that are due (all in one transaction)."""
    with rt.sessions.begin() as session:
        rep = _record_alerts(
            session, rt.config, now=now, designations=rt.designations, regimes=rt.regimes
        )
        digests = compose_digests(session, rt.config, now=now)
        queued = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status == "pending")
        )
    log.info(
        "recorded %d alerts (%d updates) for %d new and %d joined articles; %d digests; "
        "%d deliveries pending",
        len(rep.alert_ids),
        rep.updates,
        rep.stories_new,
        rep.stories_joined,
        len(digests),
        queued or 0,
    )
    return {
        "alerts_new": len(rep.alert_ids),
        "alert_ids": rep.alert_ids,
        "deliveries_pending": queued or 0,
        "stories_new": rep.stories_new,
        "stories_joined": rep.stories_joined,
        "updates_new": rep.updates,
        "digest_items_queued": rep.queued,
        "digests_new": len(digests),
        "digest_ids": digests,
    }


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def webhook_sender(config: Config) -> WebhookSender:
    """The production webhook sender: the fetcher's allow-list and user agent, bounded attempts."""
    return WebhookSender(
        WebhookPolicy(
            timeout=config.alerts.webhook_timeout,
            allow_hosts=frozenset(config.fetch.allow_hosts),
            user_agent=config.fetch.user_agent,
        )
    )


def deliver(
    rt: Runtime,
    *,
    now: datetime,
    sender: MailSender | None = None,
    webhook: WebhookSender | None = None,
) -> dict[str, Any]:
    report: DeliveryReport = deliver_pending(
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
    return report.as_dict()


def check_health(rt: Runtime, *, now: datetime, sender: MailSender | None = None) -> dict[str, Any]:
    """Record operator notices for silent feeds and stuck deliveries, then email every unsent notice
    (these and the delivery failures ``deliver`` recorded) to the operators, once each."""
    notices: list[str] = []
    with rt.sessions.begin() as session:
        for feed_cfg in rt.config.enabled_feeds:
            feed = session.get(Feed, feed_cfg.id)
            if feed is None or feed_cfg.max_silence_hours <= 0:
                continue
            if feed.last_fetch_at is None:
                continue  # never tried yet: nothing to say
            last = feed.last_ok_at
            # Silent since the last success, or since the first attempt when it never succeeded.
            since = last or session.scalar(
                select(func.min(FetchLog.started_at)).where(FetchLog.feed_id == feed.id)
            )
            if since is None or now - since > timedelta(hours=feed_cfg.max_silence_hours):
                day = now.strftime("%Y-%m-%d")
                msg = (
                    f"Feed {feed.id} ({redact_url(feed.url)}) has not been fetched successfully for more than "
                    f"{feed_cfg.max_silence_hours:g} h (last success: {last or 'never'}; last error: "
                    f"{feed.last_error or 'none'})."
                )
                if record_notice(session, f"feed-silent:{feed.id}:{day}", "feed_silent", msg, now):
                    notices.append(msg)
        limit = now - timedelta(hours=rt.config.alerts.pending_alarm_hours)
        stuck = session.scalars(
            select(Delivery).where(
                Delivery.status.in_(("pending", "sending")), Delivery.created_at < limit
            )
        ).all()
        for d in stuck:
            what = f"alert {d.alert_id}" if d.alert_id is not None else f"digest {d.digest_id}"
            msg = (
                f"Delivery {d.id} ({what} to {display_recipient(d.channel, d.recipient)}) is still "
                f"{d.status} after {d.attempts} attempt(s) since {d.created_at:%Y-%m-%d %H:%M} UTC; "
                f"last error: {d.last_error}"
            )
            if record_notice(session, f"delivery-stuck:{d.id}", "delivery_stuck", msg, now):
                notices.append(msg)
    for msg in notices:
        log.error("operator notice: %s", msg)
    emailed = send_notices(rt.sessions, rt.config, sender or SmtpSender(rt.config.smtp), now=now)
    return {"notices_new": len(notices), "notices": notices, "notices_emailed": emailed}


def run_once(
    rt: Runtime,
    *,
    now: datetime,
    run_id: str,
    sender: MailSender | None = None,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """One full cycle without the scheduler: the same functions the DAG calls, in the same order."""
    ing = ingest(rt, now=now, run_id=run_id, client=client)
    cls = classify(rt, now=now, ids=ing["new_ids"] + ing["updated_ids"])
    rec = record_alerts(rt, now=now)
    dlv = deliver(rt, now=now, sender=sender)
    health = check_health(rt, now=now, sender=sender)
    return {
        "run_id": run_id,
        "feeds_ok": ing["feeds_ok"] + ing["feeds_not_modified"],
        "feeds_failed": ing["feeds_failed"],
        "feeds_deferred": ing["feeds_deferred"],
        "entries_seen": ing["entries_seen"],
        "articles_new": ing["articles_new"],
        "articles_updated": ing["articles_updated"],
        "duplicates": ing["duplicates"],
        "classified": cls["classified"],
        "flagged": cls["flagged"],
        "model_version": cls["model_version"],
        "alerts_new": rec["alerts_new"],
        "alerts_sent": dlv["sent"],
        "alerts_retried": dlv["retried"],
        "alerts_failed": dlv["failed"],
        "alerts_pending": dlv["pending"],
        "notices_new": health["notices_new"],
        "errors": ing["errors"],
        "stories_new": rec["stories_new"],
        "alerts_updates": rec["updates_new"],
        "digests_new": rec["digests_new"],
        "webhooks_sent": dlv["webhook_sent"],
        "notices_emailed": health["notices_emailed"],
    }


def database_summary(rt: Runtime) -> dict[str, Any]:
    """Counts that tell an operator what the pipeline holds, and the newest flagged titles."""
    from pipeline.store.schema import Alert

    with rt.sessions() as session:

        def count(stmt: Any) -> int:
            return int(session.scalar(stmt) or 0)

        by_status = dict(
            session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        )
        flagged_titles = session.scalars(
            select(Article.title)
            .join(Alert, Alert.article_id == Article.id)
            .order_by(Alert.id.desc())
            .limit(10)
        ).all()
        return {
            "feeds": count(select(func.count()).select_from(Feed)),
            "articles": count(select(func.count()).select_from(Article)),
            "classified": count(select(func.count()).select_from(Classification)),
            "flagged": count(
                select(func.count())
                .select_from(Classification)
                .where(Classification.flagged.is_(True))
            ),
            "alerts": count(select(func.count()).select_from(Alert)),
            "stories": count(select(func.count()).select_from(Story)),
            "digests": count(select(func.count()).select_from(Digest)),
            "deliveries": by_status,
            "outbox_dir": str(rt.config.outbox_dir),
            "flagged_titles": list(flagged_titles),
        }
