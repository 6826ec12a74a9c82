"""Airflow wiring for sanctions-watch: the DAGs `ingest`, `alert`, `digest` and `housekeeping`;
scheduling, retries, the asset between ingest and alert, and one call into ``pipeline`` per task.

Nothing heavy happens at import: Airflow re-parses this file every ~30 s, so ``pipeline`` (and with it
scikit-learn, feedparser, SQLAlchemy) is imported inside the task functions only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from sanctions_watch_edge import now, task_config, tell_operators

# Updated by every ingest run; the alert DAG is scheduled on it, so alerts follow new articles
# without waiting for the clock.
ARTICLES = Asset("sanctions_watch_articles")

INGEST_DOC = """
### sanctions-watch · ingest (every 15 minutes)

1. **migrate_database** brings the database schema up to date (Alembic; nothing to do on most runs).
   The tasks after it, here and in the other DAGs, only check that the schema is current.
2. **plan_feed_batches** cuts the enabled feeds into batches of `health.feed_batch_size` (25);
   **ingest_feeds** is mapped over them: one instance per batch (named by its feeds in the grid)
   fetches its feeds (conditional GET, byte cap, deadline), parses and stores new articles, and logs
   one line per feed with counts. A batch in which a feed failed is **red** (the others' articles are
   stored; the failure is in `fetch_log`, and feed health tells the operators once, from the alert
   DAG's `check_health`); the run goes on.
3. **announce_articles** runs whatever the batches did and updates the asset
   `sanctions_watch_articles`, which starts the `alert` DAG.

Trigger with `feed_id` to re-fetch one feed. Runbook: `docs/operations.md`.
"""

ALERT_DOC = """
### sanctions-watch · alert (on every update of `sanctions_watch_articles`)

1. **classify_articles** scores new and backlog articles with the active model, after fetching the
   article pages of summary-only items where the page can change the decision (docs/fulltext.md).
2. **record_alerts** groups flagged articles into stories, gives each a severity, and records one
   alert per story (an update alert only when its severity rises) with one outbox row per recipient;
   digest subscribers' alerts are queued for their daily digest (the `digest` DAG composes it).
3. **deliver_alerts** sends due outbox rows by email and webhook (lease, retries with back-off).
   A retry or re-run never sends an alert twice.
4. **check_health** (runs whatever happened before it) records operator notices for feeds in trouble
   (once per problem, again on recovery or after `health.reminder_hours`) and stuck deliveries,
   emails them, and fails (the run shows red once) when there are new ones.

A task that fails after its retries is reported to the operators (a notice and an email), except the
failures already reported otherwise. Runbook: `docs/operations.md`.
"""

DIGEST_DOC = """
### sanctions-watch · digest (hourly, at minute 0)

1. **compose_digests** composes the daily digests that are due: for each digest recipient (and
   channel), once per UTC day, at or after the earliest `digest_hour_utc` of its subscriptions, one
   message with the alerts queued before that hour, recorded with its outbox row in one transaction.
   Nothing queued: no digest.
2. **deliver_digests** sends due outbox rows by email and webhook, as `deliver_alerts` does (the
   same lease and retries: the two never send one row twice).

**Why hourly, not daily:** each subscription chooses its hour (`digest_hour_utc`, 0–23); a daily
schedule would honour one hour only. A run with nothing due reads one small query per recipient
and sends nothing. **Nothing lost, nothing twice:** a failed or missed run leaves the queued items
unassigned, so the next run (the next hour, or a later day) composes them; a re-run finds the day's
digest already composed (one per recipient and UTC day, unique Message-ID). Runbook:
`docs/operations.md`.
"""

HOUSEKEEPING_DOC = """
### sanctions-watch · housekeeping (daily, 03:30 UTC)

**purge_and_maintain** deletes rows past their retention (`retention:` in settings.yaml: fetch-log
rows, sent deliveries, articles nothing durable points at), then runs `VACUUM` + `ANALYZE` (SQLite) or
`ANALYZE` (PostgreSQL). Runbook: `docs/operations.md`.
"""


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "sanctions-watch",
    "on_failure_callback": tell_operators,
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=10),
}


def _runtime() -> Any:
    """The pipeline runtime of one task, as a context manager (``with _runtime() as rt:``). The
    schema was migrated by ``migrate_database``; opening only checks it (no Alembic run per task)."""
    from pipeline.jobs import Runtime

    return Runtime.open(task_config(), migrate=False)


COMMON: dict[str, Any] = {
    "start_date": datetime(2026, 1, 1, tzinfo=UTC),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": DEFAULT_ARGS,
}


@dag(
    dag_id="ingest",
    schedule="*/15 * * * *",
    dagrun_timeout=timedelta(minutes=14),
    doc_md=INGEST_DOC,
    tags=["sanctions-watch", "ingest"],
    params={
        "feed_id": Param(
            None,
            type=["null", "string"],
            description="Re-fetch only this feed (its id in the feeds file); empty: every feed.",
        )
    },
    **COMMON,
)
def ingest_dag() -> None:
    @task
    def migrate_database() -> dict[str, Any]:
        from pipeline.config import load_config
        from pipeline.jobs import migrate

        return migrate(load_config()).as_dict()

    @task
    def plan_feed_batches() -> list[list[str]]:
        from pipeline.jobs import plan_batches

        config = task_config()
        feed_id = get_current_context()["params"].get("feed_id")
        if feed_id:
            return [[config.feed(feed_id).id]]  # a typo fails here, naming the feeds file
        return plan_batches(config)

    @task(map_index_template="{{ feed_batch }}")
    def ingest_feeds(feed_ids: list[str]) -> dict[str, Any]:
        from pipeline.jobs import ingest

        context = get_current_context()
        label = ", ".join(feed_ids)
        label = label if len(label) <= 60 else f"{label[:57]}..."
        context["feed_batch"] = label  # type: ignore[typeddict-unknown-key]
        with _runtime() as rt:
            report = ingest(rt, now=now(), run_id=context["run_id"], feed_ids=feed_ids)
        if report.errors:  # each feed's line is in the log above; the others were stored
            raise AirflowFailException(
                f"{len(report.errors)} of {len(feed_ids)} feeds failed: "
                + ", ".join(sorted(report.errors))
            )
        return report.as_xcom()

    @task(trigger_rule="all_done", outlets=[ARTICLES], retries=0)
    def announce_articles() -> dict[str, Any]:
        # Whatever the batches did: a failed feed must not hold back the others' alerts.
        return {"run_id": get_current_context()["run_id"]}

    plan = plan_feed_batches()
    migrate_database() >> plan
    ingest_feeds.expand(feed_ids=plan) >> announce_articles()


@dag(
    dag_id="alert",
    schedule=[ARTICLES],
    dagrun_timeout=timedelta(minutes=30),
    doc_md=ALERT_DOC,
    tags=["sanctions-watch", "alerts"],
    **COMMON,
)
def alert_dag() -> None:
    @task
    def classify_articles() -> dict[str, Any]:
        # Classify reads its work from the database in keyset batches (every revision the active
        # model has not scored), whatever the backlog. skops scans the loaded modules on import,
        # which trips Airflow's deprecation shims once per shim: silenced here, at the one place
        # skops is loaded inside Airflow.
        import warnings

        from airflow.utils.deprecation_tools import DeprecatedImportWarning

        from pipeline.jobs import classify

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecatedImportWarning)
            with _runtime() as rt:
                return classify(rt, now=now()).as_dict()

    @task
    def record_alerts() -> dict[str, Any]:
        from pipeline.jobs import record_alerts as record

        with _runtime() as rt:
            return record(rt, now=now()).as_xcom()

    @task
    def deliver_alerts() -> dict[str, Any]:
        from pipeline.jobs import deliver

        with _runtime() as rt:
            return deliver(rt, now=now()).as_dict()

    @task(retries=0, trigger_rule="all_done")
    def check_health() -> dict[str, Any]:
        # Runs whatever happened before it: a failed delivery run is a reason to look, not to skip.
        from pipeline.jobs import check_health as check

        with _runtime() as rt:
            report = check(rt, now=now())
        if report.notices_new:  # already emailed to the operators: the run shows red, once
            raise AirflowFailException("operator attention needed: " + " | ".join(report.notices))
        return report.as_dict()

    classify_articles() >> record_alerts() >> deliver_alerts() >> check_health()


@dag(
    dag_id="digest",
    schedule="0 * * * *",
    dagrun_timeout=timedelta(minutes=50),
    doc_md=DIGEST_DOC,
    tags=["sanctions-watch", "digests"],
    **COMMON,
)
def digest_dag() -> None:
    @task
    def compose_digests() -> dict[str, Any]:
        from pipeline.jobs import compose_digests as compose

        with _runtime() as rt:
            return compose(rt, now=now()).as_dict()

    @task
    def deliver_digests() -> dict[str, Any]:
        from pipeline.jobs import deliver

        with _runtime() as rt:
            return deliver(rt, now=now()).as_dict()

    compose_digests() >> deliver_digests()


@dag(
    dag_id="housekeeping",
    schedule="30 3 * * *",
    dagrun_timeout=timedelta(hours=2),
    doc_md=HOUSEKEEPING_DOC,
    tags=["sanctions-watch", "housekeeping"],
    **COMMON,
)
def housekeeping_dag() -> None:
    @task(execution_timeout=timedelta(hours=1))
    def purge_and_maintain() -> dict[str, Any]:
        from pipeline.jobs import housekeeping

        with _runtime() as rt:
            return housekeeping(rt, now=now())

    purge_and_maintain()


ingest_dag()
alert_dag()
digest_dag()
housekeeping_dag()
