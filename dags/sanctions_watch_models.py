"""Airflow wiring for the model loop: the DAGs `retrain` (weekly and on demand) and `rescore` (after
every promotion, through the asset `sanctions_watch_model_promoted`, and on demand).

Thin: each task calls one function of :mod:`pipeline.modeljobs`. Nothing heavy happens at import
(``pipeline``, scikit-learn and skops are imported inside the tasks).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from sanctions_watch_edge import now, task_config, tell_operators

# Updated only when a retraining run promotes its challenger; `rescore` is scheduled on it.
MODEL_PROMOTED = Asset("sanctions_watch_model_promoted")

RETRAIN_DOC = """
### sanctions-watch · retrain (Mondays 04:00 UTC, and on demand)

1. **train_challenger** builds the training set (the corpus + the analysts' labels, deduplicated; an
   article the analysts disagree on takes its latest label, and the conflict is listed in the
   report), checks the label batch against the champion (a batch it strongly contradicts is
   flagged, and the flag is a gate failure), trains a challenger into the model store, measures
   champion and challenger on the frozen split and on the recently labelled items, and promotes the
   challenger **only if the quality gate passes**. The model card beside the version gets the
   comparison; the analysts get it by email. A refusal is a normal outcome (the task succeeds and
   its XCom lists the reasons).
2. **announce_promotion** updates the asset `sanctions_watch_model_promoted` (which starts
   `rescore`) when the challenger was promoted, and is skipped otherwise.

Params: `candidates` (train.py's names, e.g. `tfidf-word-lr`; empty: the defaults), `folds`,
`dry_run` (train, measure and judge; promote and mail nothing), `max_label_disagreement` (the share
of labels the champion may strongly contradict before the batch is flagged; 0.25), and `corpus` /
`test_split` / `baseline` to train on other files. Runbook: `docs/operations.md`.
"""

RESCORE_DOC = """
### sanctions-watch · rescore (after every promotion, and on demand)

**rescore_history** re-scores the stored articles first seen in the window (the last `days`, or
`since`..`until`, ISO dates) with the active model, then runs the normal alert path: only stories
that became flagged are alerted (once); stories that dropped out are recorded (each re-scored
classification keeps the previous verdict) and not alerted. Runbook: `docs/operations.md`.
"""


def _date(raw: Any, name: str) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError as err:
        raise AirflowFailException(f"param {name}: {raw!r} is not an ISO date") from err
    return value if value.tzinfo else value.replace(tzinfo=UTC)


COMMON: dict[str, Any] = {
    "start_date": datetime(2026, 1, 1, tzinfo=UTC),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": {
        "owner": "sanctions-watch",
        "on_failure_callback": tell_operators,
        "retries": 1,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=20),
        "execution_timeout": timedelta(hours=2),
    },
}


@dag(
    dag_id="retrain",
    schedule="0 4 * * 1",
    dagrun_timeout=timedelta(hours=3),
    doc_md=RETRAIN_DOC,
    tags=["sanctions-watch", "models"],
    params={
        "candidates": Param(
            [], type="array", items={"type": "string"}, description="Candidates (empty: defaults)"
        ),
        "folds": Param(5, type="integer", minimum=2, maximum=10, description="CV folds"),
        "dry_run": Param(False, type="boolean", description="Measure and judge; promote nothing"),
        "max_label_disagreement": Param(
            0.25,
            type="number",
            minimum=0,
            maximum=1,
            description="Share of analyst labels the champion may strongly contradict",
        ),
        "corpus": Param([], type="array", items={"type": "string"}, description="Corpus paths"),
        "test_split": Param(None, type=["null", "string"], description="Frozen split path"),
        "baseline": Param(None, type=["null", "string"], description="Gate baseline path"),
    },
    **COMMON,
)
def retrain_dag() -> None:
    @task
    def train_challenger() -> dict[str, Any]:
        from pipeline.modeljobs import retrain_job
        from pipeline.training.retrain import RetrainSettings

        p = get_current_context()["params"]
        settings = RetrainSettings(
            candidates=tuple(p.get("candidates") or ()),
            folds=int(p.get("folds") or 5),
            dry_run=bool(p.get("dry_run")),
            max_disagreement=float(p.get("max_label_disagreement", 0.25)),
            actor="retrain-dag",
        )
        return retrain_job(
            task_config(),
            now=now(),
            settings=settings,
            corpus=p.get("corpus") or None,
            test=p.get("test_split"),
            baseline=p.get("baseline"),
        )

    @task(outlets=[MODEL_PROMOTED], retries=0)
    def announce_promotion(report: dict[str, Any]) -> dict[str, Any]:
        if not report.get("promoted"):
            raise AirflowSkipException(
                "nothing promoted: " + ("; ".join(report.get("refused") or []) or "dry run")
            )
        return {"version": report["challenger"]}

    announce_promotion(train_challenger())


@dag(
    dag_id="rescore",
    schedule=[MODEL_PROMOTED],
    dagrun_timeout=timedelta(hours=3),
    doc_md=RESCORE_DOC,
    tags=["sanctions-watch", "models"],
    params={
        "days": Param(7, type="number", minimum=0.01, maximum=3650, description="Last N days"),
        "since": Param(None, type=["null", "string"], description="ISO date (with until)"),
        "until": Param(None, type=["null", "string"], description="ISO date (default: now)"),
    },
    **COMMON,
)
def rescore_dag() -> None:
    @task
    def rescore_history() -> dict[str, Any]:
        from pipeline.modeljobs import rescore_job

        p = get_current_context()["params"]
        return rescore_job(
            task_config(),
            now=now(),
            days=float(p["days"]) if p.get("days") is not None else None,
            since=_date(p.get("since"), "since"),
            until=_date(p.get("until"), "until"),
        )

    rescore_history()


retrain_dag()
rescore_dag()
