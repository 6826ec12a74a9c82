"""The DAG file: parses cleanly and cheaply, is wired as documented, and really runs (dag.test())."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import ROOT, sample_feeds, write_config

DAG_FILE = ROOT / "dags" / "sanctions_watch.py"


def _airflow_env(tmp_path: Path, config_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        PYTHONPATH=str(ROOT),
    )
    if config_dir is not None:
        env["SANCTIONS_WATCH_CONFIG"] = str(config_dir)
    return env


def test_dag_file_imports_without_heavy_modules(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import json, sys, importlib.util
        spec = importlib.util.spec_from_file_location("dagmod", {str(DAG_FILE)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        heavy = [m for m in ("sklearn", "feedparser", "pipeline", "skops") if m in sys.modules]
        dag = module.sanctions_watch()
        print(json.dumps({{
            "heavy": heavy,
            "dag_id": dag.dag_id,
            "tasks": [t.task_id for t in dag.topological_sort()] if hasattr(dag, "topological_sort") else sorted(dag.task_ids),
            "catchup": dag.catchup,
            "tags": sorted(dag.tags),
            "doc": bool(dag.doc_md),
            "retries": [dag.get_task(t).retries for t in dag.task_ids],
            "timeouts": [dag.get_task(t).execution_timeout is not None for t in dag.task_ids],
            "on_failure": [bool(dag.get_task(t).on_failure_callback) for t in dag.task_ids],
        }}))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_airflow_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["heavy"] == []
    assert info["dag_id"] == "sanctions_watch" and info["catchup"] is False and info["doc"]
    assert set(info["tasks"]) == {
        "ingest_feeds",
        "classify_articles",
        "record_alerts",
        "deliver_alerts",
        "check_health",
    }
    assert "sanctions-watch" in info["tags"]
    assert max(info["retries"]) >= 3 and all(info["timeouts"])
    assert all(info["on_failure"])  # operators are told about a task that fails


def test_dagbag_has_no_import_errors(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(ROOT / "dags")!r})
        print(json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "dags": sorted(bag.dag_ids)}}))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_airflow_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info == {"errors": {}, "dags": ["sanctions_watch"]}


@pytest.mark.airflow
@pytest.mark.slow
def test_dag_test_run_stores_articles_and_delivers_mail(
    tmp_path: Path, feed_server, mail_sink
) -> None:
    config_dir = write_config(
        tmp_path / "config",
        database_url=f"sqlite:///{tmp_path / 'sw.db'}",
        feeds=sample_feeds(feed_server.url),
        smtp_port=mail_sink.port,
    )
    env = _airflow_env(tmp_path, config_dir)
    migrate = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    code = textwrap.dedent(f"""
        import importlib.util, json
        spec = importlib.util.spec_from_file_location("dagmod", {str(DAG_FILE)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        run = module.sanctions_watch().test()
        print("STATE=" + str(run.state))
    """)
    for attempt in (1, 2):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert out.returncode == 0, out.stderr[-4000:]
        assert "STATE=success" in out.stdout, (out.stdout + out.stderr)[-4000:]
        if attempt == 1:
            first = len(mail_sink.messages)
    import sqlite3

    db = sqlite3.connect(tmp_path / "sw.db")
    articles = db.execute("select count(*) from articles").fetchone()[0]
    sent = db.execute("select count(*) from deliveries where status='sent'").fetchone()[0]
    origin = db.execute(
        "select count(*) from alerts a join articles r on r.id=a.article_id where r.title like 'North Korea suspected%'"
    ).fetchone()[0]
    db.close()
    assert articles == 13 and origin == 1
    assert first == sent >= 2
    assert len(mail_sink.messages) == first  # the second run sends nothing new
