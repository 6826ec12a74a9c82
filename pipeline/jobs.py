"""The pipeline's stages as plain functions: what the Airflow tasks and the CLI both call.

``migrate`` (once, before a run) → ``ingest`` → ``classify`` → ``record_alerts`` → ``deliver`` →
``check_health``; ``compose_digests`` (hourly, the ``digest`` DAG) → ``deliver``. Each stage takes
a :class:`Runtime` (``with Runtime.open(config) as rt:``), opens its own database sessions, is
idempotent, takes ``now`` from the caller, and returns a frozen report of ids and counts
(:mod:`pipeline.reports`; ``as_dict()`` is what goes into XCom), never article bodies.

The runtime lives in :mod:`pipeline.runtime`, the ingest stage in :mod:`pipeline.ingest.cycle` and
the classify stage in :mod:`pipeline.classify.cycle`; they are re-exported here, so the DAGs, the CLI
and ``run_once`` call every stage through this module.

This module orchestrates only: the SQL lives in :mod:`pipeline.store` (and the outbox), the wording of
every message in :mod:`pipeline.deliver` and its templates.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from pipeline import metrics
from pipeline.alerts.digest import compose_digests as compose_due_digests
from pipeline.alerts.record import record_story_alerts
from pipeline.classify.cycle import classify
from pipeline.config import Config
from pipeline.deliver.mail import MailSender, SmtpSender
from pipeline.deliver.notices import record_health_notices, send_notices
from pipeline.deliver.outbox import deliver_pending
from pipeline.deliver.webhook import WebhookPolicy, WebhookSender
from pipeline.health import check_feeds, feed_batches
from pipeline.ingest.cycle import MAX_RETRY_AFTER, ingest
from pipeline.reports import (
    AlertsReport,
    DeliveryReport,
    DigestReport,
    HealthReport,
    MigrateReport,
    RunSummary,
)
from pipeline.runtime import Runtime
from pipeline.store.db import make_engine, require_current_schema, upgrade_database
from pipeline.store.deliveries import count_pending
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


def migrate(config: Config) -> MigrateReport:
    """Bring the database schema to this code's head revision (idempotent): once per run, before
    the stages (the DAG's first task; ``run-once`` does it by opening its runtime)."""
    engine = make_engine(config.database_url)
    try:
        upgrade_database(engine)
        return MigrateReport(require_current_schema(engine))
    finally:
        engine.dispose()


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
