"""Airflow wiring for sanctions-watch: scheduling, retries and one call into ``pipeline`` per task.

Nothing heavy happens at import: Airflow re-parses this file every ~30 s, so ``pipeline`` (and with it
scikit-learn, feedparser, SQLAlchemy) is imported inside the task functions only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

DOC = """
### sanctions-watch: feeds → classifier → alerts

Every 15 minutes:

1. **ingest_feeds** fetches every configured feed (conditional GET, byte cap, deadline), parses and
   stores new articles. One failing feed never fails the task; its error is in the task log and in the
   `fetch_log` table. Returns ids and counts.
2. **classify_articles** scores new and backlog articles with the active model (`models/registry.json`).
3. **record_alerts** groups flagged articles into stories (syndicated, edited and translated copies
   of one story), gives each story a severity, and records one alert per story (and an update alert
   only when its severity rises) with one outbox row per recipient; digest subscribers get the day's
   alerts in one message.
4. **deliver_alerts** sends due outbox rows by email (SMTP) and webhook (Slack/Teams): lease, retries
   with back-off; permanent failures are reported. A retry or re-run never sends an alert twice.
5. **check_health** records operator notices for silent feeds and stuck deliveries, emails them to the
   operators, and fails (so the run shows red) when there are new ones.

A task that fails after its retries is reported to the operators too (a notice and an email).

Config: `$SANCTIONS_WATCH_CONFIG` (default: the repo's `config/`). SMTP credentials: the
`smtp_default` connection when it exists. Runbook: `docs/operations.md`.
"""


def _tell_operators(context: Any) -> None:
    """on_failure_callback: record a notice and email the operators (never raises)."""
    try:
        from pipeline.config import load_config
        from pipeline.deliver.notices import report_task_failure

        ti = context.get("ti") or context.get("task_instance")
        report_task_failure(
            load_config(),
            dag_id=getattr(ti, "dag_id", "sanctions_watch"),
            task_id=getattr(ti, "task_id", "?"),
            run_id=str(context.get("run_id", "?")),
            try_number=getattr(ti, "try_number", None),
            error=context.get("exception"),
            now=_now(),
        )
    except Exception as err:  # noqa: BLE001 - a failure callback must never raise
        print(f"could not notify operators: {err}")  # noqa: T201 - shown in the task log


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "sanctions-watch",
    "on_failure_callback": _tell_operators,
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=10),
}


def _runtime() -> Any:
    """Open the pipeline runtime, taking SMTP settings from the ``smtp_default`` connection if set."""
    import dataclasses

    from pipeline.config import load_config
    from pipeline.jobs import Runtime

    config = load_config()
    try:
        from airflow.sdk import Connection

        conn = Connection.get("smtp_default")
    except Exception:  # noqa: BLE001 - no such connection: settings/env are the source
        conn = None
    if conn is not None and conn.host:
        extra = conn.extra_dejson or {}
        security = (
            "ssl" if extra.get("ssl") else "starttls" if extra.get("starttls", False) else "none"
        )
        smtp = dataclasses.replace(
            config.smtp,
            host=conn.host,
            port=conn.port or config.smtp.port,
            username=conn.login or None,
            password=conn.password or None,
            security=security,
            sender=extra.get("from_email", config.smtp.sender),
        )
        config = dataclasses.replace(config, smtp=smtp)
    return Runtime.open(config)


def _now() -> datetime:
    # The edge reads the clock; pipeline functions take `now` as an argument.
    return datetime.now(UTC)


@dag(
    dag_id="sanctions_watch",
    schedule="*/15 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(minutes=14),
    doc_md=DOC,
    tags=["sanctions-watch", "ingest", "alerts"],
)
def sanctions_watch() -> None:
    @task
    def ingest_feeds() -> dict[str, Any]:
        from pipeline.jobs import ingest

        rt = _runtime()
        try:
            report = ingest(rt, now=_now(), run_id=get_current_context()["run_id"])
        finally:
            rt.close()
        for feed_id, error in report["errors"].items():
            print(f"feed {feed_id} failed: {error}")  # noqa: T201 - shown in the task log
        return {k: v for k, v in report.items() if k != "errors"} | {
            "failed_feeds": sorted(report["errors"])
        }

    @task
    def classify_articles(ingested: dict[str, Any]) -> dict[str, Any]:
        from pipeline.jobs import classify

        rt = _runtime()
        try:
            return classify(rt, now=_now(), ids=ingested["new_ids"] + ingested["updated_ids"])
        finally:
            rt.close()

    @task
    def record_alerts(classified: dict[str, Any]) -> dict[str, Any]:
        from pipeline.jobs import record_alerts as record

        rt = _runtime()
        try:
            return record(rt, now=_now())
        finally:
            rt.close()

    @task
    def deliver_alerts(recorded: dict[str, Any]) -> dict[str, Any]:
        from pipeline.jobs import deliver

        rt = _runtime()
        try:
            return deliver(rt, now=_now())
        finally:
            rt.close()

    @task(retries=0)
    def check_health(delivered: dict[str, Any]) -> dict[str, Any]:
        from pipeline.jobs import check_health as check

        rt = _runtime()
        try:
            report = check(rt, now=_now())
        finally:
            rt.close()
        if report["notices_new"]:
            raise RuntimeError("operator attention needed: " + " | ".join(report["notices"]))
        return report

    check_health(deliver_alerts(record_alerts(classify_articles(ingest_feeds()))))


sanctions_watch()
