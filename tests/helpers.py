"""Plain helpers shared by tests (import as ``from helpers import ...``)."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_FEEDS = ROOT / "data" / "sample_feeds"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def write_config(
    directory: Path,
    *,
    database_url: str,
    feeds: list[dict[str, Any]],
    smtp_port: int = 8025,
    subscriptions: list[dict[str, Any]] | None = None,
    model_dir: Path | None = None,
    settings: dict[str, Any] | None = None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("regimes.yaml", "places.yaml", "actors.yaml"):  # the knowledge base, as shipped
        shutil.copy(ROOT / "config" / name, directory / name)
    base: dict[str, Any] = {
        "database_url": database_url,
        "base_dir": str(directory.parent),
        "feeds_file": "feeds.yaml",
        "model_dir": str(model_dir or ROOT / "models"),
        "outbox_dir": str(directory.parent / "outbox"),
        "designations_path": None,
        "fetch": {"allow_hosts": ["127.0.0.1"], "total_deadline": 10, "read_timeout": 5},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "timeout": 5},
        "alerts": {"backoff_base_seconds": 60, "lease_seconds": 60},
        "operators": ["ops@example.org"],
    }
    for key, value in (settings or {}).items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    (directory / "settings.yaml").write_text(yaml.safe_dump(base), encoding="utf-8")
    (directory / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}), encoding="utf-8")
    subs = (
        subscriptions
        if subscriptions is not None
        else [{"id": "compliance", "recipients": ["compliance@example.org", "analyst@example.org"]}]
    )
    (directory / "subscriptions.yaml").write_text(
        yaml.safe_dump({"subscriptions": subs}), encoding="utf-8"
    )
    return directory


def sample_feeds(server_url: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "sample-world-wire",
            "name": "Sample World Wire",
            "url": f"{server_url}/world-wire.xml",
            "language": "en",
        },
        {
            "id": "sample-asia-desk",
            "name": "Sample Asia Desk",
            "url": f"{server_url}/asia-desk.atom",
        },
        {
            "id": "sample-africa-desk",
            "name": "Sample Africa Desk",
            "url": f"{server_url}/africa-desk.xml",
        },
    ]


def airflow_env(tmp_path: Path, config_dir: Path | None = None) -> dict[str, str]:
    """The environment of an Airflow subprocess in a test: its own AIRFLOW_HOME under ``tmp_path``,
    the repo's DAGs, no examples, and (when given) the pipeline config folder. Airflow puts the DAGs
    folder on sys.path (the DAG files import ``dags/sanctions_watch_edge/``); scripts that load a DAG
    file by path get it through PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "dags")]),
    )
    if config_dir is not None:
        env["SANCTIONS_WATCH_CONFIG"] = str(config_dir)
    return env
