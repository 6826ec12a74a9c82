"""The model DAG file (retrain, rescore): parses cheaply, is wired as documented, and really runs
(dag.test()) with a small candidate config: the gate refuses with reasons, then passes and promotes,
the analysts are mailed, and rescore re-scores with the promoted model."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from helpers import NOW, ROOT, write_config
from modelkit import (
    MODELS_DAG_FILE,
    airflow_db_migrate,
    airflow_env,
    retrain_conf,
    run_model_dags,
    small_model_loop,
)


def test_models_dag_file_imports_cheaply_and_is_wired(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import json, sys, importlib.util
        spec = importlib.util.spec_from_file_location("modeldags", {str(MODELS_DAG_FILE)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        heavy = [m for m in ("sklearn", "pipeline", "skops", "feedparser") if m in sys.modules]
        out = {{"heavy": heavy}}
        for make in (module.retrain_dag, module.rescore_dag):
            dag = make()
            out[dag.dag_id] = {{
                "tasks": [t.task_id for t in dag.topological_sort()],
                "catchup": dag.catchup,
                "owner": sorted({{dag.get_task(t).owner for t in dag.task_ids}}),
                "doc": bool(dag.doc_md),
                "cron": dag.schedule if isinstance(dag.schedule, str) else None,
                "assets": repr(getattr(dag.timetable, "asset_condition", None)),
                "outlets": {{t: [a.name for a in dag.get_task(t).outlets] for t in dag.task_ids}},
                "on_failure": [bool(dag.get_task(t).on_failure_callback) for t in dag.task_ids],
                "params": sorted(dag.params),
            }}
        print(json.dumps(out))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=airflow_env(tmp_path, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info.pop("heavy") == []
    retrain, rescore = info["retrain"], info["rescore"]
    assert retrain["tasks"] == ["train_challenger", "announce_promotion"]
    assert retrain["cron"] == "0 4 * * 1"
    assert retrain["outlets"]["announce_promotion"] == ["sanctions_watch_model_promoted"]
    assert retrain["outlets"]["train_challenger"] == []  # only a promotion updates the asset
    assert set(retrain["params"]) >= {"candidates", "folds", "dry_run"}
    assert rescore["tasks"] == ["rescore_history"]
    assert "sanctions_watch_model_promoted" in rescore["assets"]
    assert rescore["params"] == ["days", "since", "until"]
    for dag in (retrain, rescore):
        assert dag["catchup"] is False and dag["doc"] and dag["owner"] == ["sanctions-watch"]
        assert all(dag["on_failure"])


def _mails(sink, to: str) -> list:
    found = [message_from_bytes(m, policy=policy.default) for m in sink.messages]
    return [m for m in found if to in str(m["To"])]


@pytest.mark.airflow
@pytest.mark.slow
def test_retrain_refuses_then_promotes_and_rescore_uses_the_new_model(
    tmp_path: Path, mail_sink
) -> None:
    from builders import FEEDS, add_article
    from sqlalchemy import select

    from pipeline.config import load_config
    from pipeline.jobs import Runtime
    from pipeline.store.schema import Classification
    from pipeline.training.corpus import load_items

    loop = small_model_loop(tmp_path)
    store = tmp_path / "store"
    config_dir = write_config(
        tmp_path / "config",
        database_url=f"sqlite:///{tmp_path / 'sw.db'}",
        feeds=FEEDS,
        smtp_port=mail_sink.port,
        model_dir=loop["shipped"],
        settings={
            "model_store": str(store),
            "alerts": {"feedback_address": "analysts@example.org"},
        },
    )
    config = load_config(config_dir, environ={})
    item = load_items([loop["corpus"]])[0]
    with Runtime.open(config) as rt:  # migrates the pipeline's database
        article = add_article(
            rt, feed="wire", title=item["title"], summary=item["summary"],
            url="https://wire.example/1", now=NOW, score=0.1,
        )  # fmt: skip
    env = airflow_env(tmp_path, config_dir)
    airflow_db_migrate(env)
    result = run_model_dags(
        env,
        [
            ("retrain", retrain_conf(loop, "strict")),
            ("retrain", retrain_conf(loop, "lenient")),
            ("rescore", {"since": (NOW - timedelta(days=1)).isoformat()}),  # until: now
        ],
    )
    refused, promoted, rescored = result["runs"]
    assert refused["tis"] == {"train_challenger": "success", "announce_promotion": "skipped"}
    assert "nothing promoted: overall f1" in result["log"]  # the reasons, in the task log
    assert promoted["tis"] == {"train_challenger": "success", "announce_promotion": "success"}
    assert rescored["tis"] == {"rescore_history": "success"}
    registry = json.loads((store / "registry.json").read_text())
    active = registry["active"]
    assert active != loop["champion"] and registry["promotions"] == [loop["champion"], active]
    assert registry["history"][-1]["by"] == "retrain-dag"
    versions = sorted(p.name for p in store.iterdir() if p.is_dir())
    assert len(versions) == 2 and active in versions  # both challengers kept
    (refused_version,) = [v for v in versions if v != active]
    card = (store / refused_version / "MODEL_CARD.md").read_text()
    assert "Gate refused it" in card and "overall f1" in card
    assert "## Retraining" in (store / active / "MODEL_CARD.md").read_text()
    assert not (loop["shipped"] / active).exists()  # the shipped folder is never written
    mails = _mails(mail_sink, "analysts@example.org")
    subjects = sorted(str(m["Subject"]) for m in mails)
    assert len(mails) == 2 and any("refused" in s for s in subjects)
    assert any("promoted" in s for s in subjects)
    with Runtime.open(config, migrate=False) as rt, rt.sessions() as s:
        by_new = s.scalars(
            select(Classification).where(
                Classification.article_id == article, Classification.model_version == active
            )
        ).all()
    assert len(by_new) == 1 and "rescore" in by_new[0].evidence
    assert ROOT  # the repo's own models/ and var/ were not used: everything lives in tmp_path
