"""Run the sanctions_watch DAG once in-process (Airflow's dag.test()) and print what it did."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_dag():
    spec = importlib.util.spec_from_file_location(
        "sanctions_watch_dag", ROOT / "dags" / "sanctions_watch.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.sanctions_watch()


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(ROOT))
    dag = load_dag()
    dag_run = dag.test()
    from pipeline.config import load_config
    from pipeline.jobs import Runtime, database_summary

    rt = Runtime.open(load_config())
    try:
        summary = database_summary(rt)
    finally:
        rt.close()
    summary["dag_run_state"] = str(getattr(dag_run, "state", "unknown"))
    print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return 0 if summary["dag_run_state"].endswith("success") else 1


if __name__ == "__main__":
    raise SystemExit(main())
