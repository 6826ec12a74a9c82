"""Small model-loop fixtures shared by the retrain/rescore DAG tests and the analysts' end-to-end test
(import as ``from modelkit import ...``): a small corpus and frozen split cut from
``data/corpus/dprk.jsonl`` and ``round6_kinds.jsonl``, a small champion made active in a temp "shipped" folder, gate baselines
it passes and fails, and an Airflow environment for ``dag.test()`` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import NOW, ROOT, airflow_env  # noqa: F401 - re-exported for the model tests

MODELS_DAG_FILE = ROOT / "dags" / "sanctions_watch_models.py"


def _write(path: Path, items: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps({k: v for k, v in item.items() if k != "_source"}) + "\n")
    return path


def small_model_loop(base: Path) -> dict[str, Any]:
    """Corpus, frozen split, baselines (``strict``: nothing small passes it; ``lenient``) and a
    champion active in ``base/models`` (the "shipped" folder of the config)."""
    from pipeline.classify.registry import GateVerdict, promote
    from pipeline.training.corpus import load_items
    from pipeline.training.gate import split_sha256
    from pipeline.training.train import train_model

    corpus_dir = ROOT / "data" / "corpus"
    items = load_items([corpus_dir / "dprk.jsonl", corpus_dir / "round6_kinds.jsonl"])
    frozen = items[1::6]
    events = {i["event_id"] for i in frozen}
    rest = [i for i in items if i["event_id"] not in events]
    corpus = _write(base / "data" / "corpus" / "small.jsonl", rest[::2])
    test_dir = base / "data" / "test"
    _write(test_dir / "frozen.jsonl", frozen)
    shipped = base / "models"
    version = train_model(
        rest[::2], model_dir=shipped, now=NOW, candidates=["tfidf-word-lr"], folds=3
    ).version
    promote(shipped, version, now=NOW, verdict=GateVerdict(version, ()))
    baselines = {}
    for name, minimum in (("strict", 0.999), ("lenient", 0.0)):
        path = base / f"baseline-{name}.json"
        body = {"test_sha256": split_sha256(test_dir), "minimums": {"overall": {"f1": minimum}}}
        path.write_text(json.dumps(body), encoding="utf-8")
        baselines[name] = path
    return {
        "corpus": corpus,
        "test": test_dir,
        "shipped": shipped,
        "champion": version,
        "baselines": baselines,
    }


def airflow_db_migrate(env: dict[str, str]) -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]


def retrain_conf(loop: dict[str, Any], baseline: str, **extra: Any) -> dict[str, Any]:
    return {
        "candidates": ["tfidf-word-lr"],
        "folds": 3,
        "corpus": [str(loop["corpus"])],
        "test_split": str(loop["test"]),
        "baseline": str(loop["baselines"][baseline]),
        **extra,
    }


def run_model_dags(env: dict[str, str], runs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """``dag.test(run_conf=...)`` for each (dag, conf) in one subprocess; each run's state, its task
    instances' states, and the output (task logs)."""
    script = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("modeldags", {str(MODELS_DAG_FILE)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
makers = {{"retrain": module.retrain_dag, "rescore": module.rescore_dag}}
out = []
for name, conf in json.loads(sys.argv[1]):
    run = makers[name]().test(run_conf=conf)
    out.append({{"dag": name, "state": str(run.state),
                "tis": {{ti.task_id: str(ti.state) for ti in run.get_task_instances()}}}})
print("RESULT=" + json.dumps(out))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(runs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.split("RESULT=")[1].splitlines()[0])
    return {"runs": result, "log": proc.stdout + proc.stderr}
