"""Telling operators about failed pipeline tasks (Airflow's on-failure hook calls this).

A failed task is recorded as an operator notice (once per DAG run and task) and the unsent notices are
emailed to ``config.operators`` right away, through the same path ``check_health`` uses. It must never
raise: it runs when something has already gone wrong (the database or SMTP may be the cause), so every
failure here is logged and swallowed.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pipeline.config import Config
from pipeline.deliver.mail import MailSender, SmtpSender
from pipeline.deliver.outbox import record_notice, send_notices
from pipeline.ingest.normalise import clean_text
from pipeline.store.db import make_engine, make_sessionmaker

__all__ = ["report_task_failure"]

log = logging.getLogger(__name__)


def report_task_failure(
    config: Config,
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    try_number: int | None,
    error: object,
    now: datetime,
    sender: MailSender | None = None,
) -> bool:
    """Record and email a notice about a failed task; True when the notice was recorded."""
    reason = clean_text(f"{type(error).__name__}: {error}", max_chars=1500) if error else "unknown"
    message = (
        f"Task {task_id} of DAG {dag_id} failed (run {run_id}, try {try_number or '?'}): {reason}. "
        "See the task log in the Airflow UI and docs/operations.md."
    )
    engine = None
    try:
        engine = make_engine(config.database_url)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            recorded = record_notice(
                session, f"task-failed:{dag_id}:{run_id}:{task_id}", "task_failed", message, now
            )
        send_notices(sessions, config, sender or SmtpSender(config.smtp), now=now)
        return recorded
    except Exception as err:  # noqa: BLE001 - a failure hook must not fail; the error is logged
        log.error("could not report the failure of %s.%s to operators: %s", dag_id, task_id, err)
        return False
    finally:
        if engine is not None:
            engine.dispose()
