"""What every sanctions-watch DAG file shares at the Airflow edge: the clock, the pipeline's config as
a task sees it, and the failure callback that tells the operators.

Not a DAG file: ``dags/.airflowignore`` keeps the DAG processor out of this package; the DAG files
import it (Airflow puts the DAGs folder on ``sys.path``). Nothing heavy at import: ``pipeline`` is
imported inside the functions, which run in tasks only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

__all__ = ["now", "task_config", "tell_operators"]


def now() -> datetime:
    """The edge reads the clock; pipeline functions take ``now`` as an argument."""
    return datetime.now(UTC)


def tell_operators(context: Any) -> None:
    """on_failure_callback: record a notice and email the operators (never raises). An
    AirflowFailException is a failure a DAG raised on purpose after reporting it through the
    pipeline (a failed feed, through feed health; new operator notices): not told twice."""
    if isinstance(context.get("exception"), AirflowFailException):
        return
    try:
        from pipeline.deliver.notices import report_task_failure

        ti = context.get("ti") or context.get("task_instance")
        report_task_failure(
            task_config(),
            dag_id=getattr(ti, "dag_id", "?"),
            task_id=getattr(ti, "task_id", "?"),
            run_id=str(context.get("run_id", "?")),
            try_number=getattr(ti, "try_number", None),
            error=context.get("exception"),
            now=now(),
        )
    except Exception as err:  # noqa: BLE001 - a failure callback must never raise
        print(f"could not notify operators: {err}")  # noqa: T201 - shown in the task log


def task_config() -> Any:
    """The pipeline's config as a task sees it: refused under a distributed executor with SQLite
    (saying why), SMTP settings from the ``smtp_default`` connection when it is set, and every secret
    handed to Airflow's masker."""
    import dataclasses
    import os

    from pipeline.config import check_executor, load_config

    config = load_config()
    # Read at the edge: a SQLite database under a distributed executor fails every task, saying why.
    # Airflow's own config (airflow.cfg, env or a chart's values), not only the environment.
    try:
        from airflow.sdk.configuration import conf as airflow_conf

        executor = airflow_conf.get("core", "executor", fallback=None)
    except Exception:  # noqa: BLE001 - no readable Airflow config: the environment is the source
        executor = None
    check_executor(config, executor or os.environ.get("AIRFLOW__CORE__EXECUTOR"))
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
    from airflow.sdk.log import mask_secret

    from pipeline.logs import secrets_of

    for secret in secrets_of(config):  # Airflow's masker hides them in its own lines too
        mask_secret(secret)
    return config
