"""The deployment files (deploy/): the compose file and the Helm values parse, hold the services and
settings a production run needs, name only Airflow settings that exist in the installed Airflow and
Celery provider, point Airflow at the DAG folder the image bakes in, switch StatsD metrics on, and
keep every secret out of the committed files (env files and Kubernetes Secrets only). Fast: no
Docker, no Kubernetes, no Airflow import."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ROOT

from pipeline.config import check_executor, load_config

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yaml"
DOCKERFILE = DEPLOY / "compose" / "Dockerfile"
HELM = DEPLOY / "helm" / "values.yaml"
DAGS_IN_IMAGE = "/opt/sanctions-watch/dags"
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
# Names whose value is a secret, wherever they appear (environment, env files, Helm values).
SECRET_NAME = re.compile(
    r"(PASSWORD|SECRET|FERNET|TOKEN|SQL_ALCHEMY_CONN|RESULT_BACKEND|DATABASE_URL|AIRFLOW_CONN_)",
    re.IGNORECASE,
)
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text("utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text("utf-8"))  # anchors and << merges resolved


@pytest.fixture(scope="module")
def helm() -> dict[str, Any]:
    return yaml.safe_load(HELM.read_text("utf-8"))


@pytest.fixture(scope="module")
def airflow_options() -> set[tuple[str, str]]:
    """Every (section, option) the installed Airflow core and Celery provider define, read from their
    files (importing Airflow takes seconds)."""
    spec = importlib.util.find_spec("airflow")
    assert spec is not None and spec.submodule_search_locations
    package = Path(next(iter(spec.submodule_search_locations)))
    sections = dict(yaml.safe_load((package / "config_templates" / "config.yml").read_text()))
    info_file = package / "providers" / "celery" / "get_provider_info.py"
    info_spec = importlib.util.spec_from_file_location("_celery_provider_info", info_file)
    assert info_spec is not None and info_spec.loader is not None
    module = importlib.util.module_from_spec(info_spec)
    info_spec.loader.exec_module(module)
    sections.update(module.get_provider_info()["config"])
    return {(s, o) for s, body in sections.items() for o in (body.get("options") or {})}


def _airflow_env(compose: dict[str, Any], service: str) -> dict[str, str]:
    env = {}
    for name in compose["services"][service].get("env_file", []):
        committed = COMPOSE.parent / name
        example = committed.with_name(committed.name + ".example")
        env.update(_env_file(committed if committed.exists() else example))
    env.update({k: str(v) for k, v in compose["services"][service].get("environment", {}).items()})
    return env


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value


def test_compose_has_every_service_on_the_celery_executor(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "statsd-exporter", *AIRFLOW_SERVICES} <= set(services)
    commands = {name: services[name]["command"] for name in AIRFLOW_SERVICES}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert commands["airflow-worker"] == "celery worker"
    for name in AIRFLOW_SERVICES:
        env = _airflow_env(compose, name)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == DAGS_IN_IMAGE, name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", name
        # Workers reach the API server's execution API by its service name.
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
            "http://airflow-apiserver:8080/"
        ), name
        assert services[name]["build"]["dockerfile"] == "deploy/compose/Dockerfile", name
    # Workers scale with --scale: nothing that would clash between two copies.
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker
    # The two databases are created by the init script mounted into the postgres image.
    init = (COMPOSE.parent / "postgres-init" / "10-databases.sh").read_text("utf-8")
    assert "CREATE DATABASE airflow" in init and "CREATE DATABASE sanctions_watch" in init
    assert "./postgres-init:/docker-entrypoint-initdb.d:ro" in services["postgres"]["volumes"]


def test_statsd_metrics_are_on_and_go_to_the_exporter(
    compose: dict[str, Any], helm: dict[str, Any]
) -> None:
    for name in AIRFLOW_SERVICES:
        env = _airflow_env(compose, name)
        assert env["AIRFLOW__METRICS__STATSD_ON"] == "True", name
        assert env["AIRFLOW__METRICS__STATSD_HOST"] in compose["services"], name
        assert env["AIRFLOW__METRICS__STATSD_PORT"] == "9125", name
    exporter = " ".join(compose["services"]["statsd-exporter"]["command"])
    assert "--statsd.listen-udp=:9125" in exporter
    assert helm["statsd"]["enabled"] is True
    assert helm["config"]["metrics"]["statsd_on"] == "True"


def test_the_dag_folder_is_the_one_the_image_bakes_in(helm: dict[str, Any]) -> None:
    dockerfile = DOCKERFILE.read_text("utf-8")
    assert "ENV SANCTIONS_WATCH_HOME=/opt/sanctions-watch" in dockerfile
    assert "WORKDIR ${SANCTIONS_WATCH_HOME}" in dockerfile
    assert re.search(r"^COPY --chown=airflow:0 dags \./dags$", dockerfile, re.MULTILINE)
    assert f"AIRFLOW__CORE__DAGS_FOLDER={DAGS_IN_IMAGE}" in dockerfile
    assert '".[production]"' in dockerfile  # the Celery provider comes with the project
    assert (ROOT / "dags" / "sanctions_watch.py").is_file()
    assert helm["config"]["core"]["dags_folder"] == DAGS_IN_IMAGE
    assert helm["dags"]["gitSync"]["enabled"] is False  # baked in, not synced
    # The build context is the repository: the dockerignore beside the Dockerfile keeps the
    # virtualenv, var/ and the filled-in env files out of the image.
    ignored = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text("utf-8").splitlines()
    assert {".venv", "var", ".git", "deploy/compose/*.env"} <= set(ignored)


def test_helm_values_use_the_kubernetes_executor_and_external_postgres(
    helm: dict[str, Any],
) -> None:
    assert helm["executor"] == "KubernetesExecutor"
    assert helm["postgresql"]["enabled"] is False and helm["redis"]["enabled"] is False
    assert helm["data"]["metadataSecretName"]
    for key in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert helm[key], key
    env = {e["name"]: e["value"] for e in helm["env"]}
    assert env["AIRFLOW__CORE__EXECUTOR"] == "KubernetesExecutor"  # what the DAGs' check reads
    secrets = {s["envName"]: s for s in helm["secret"]}
    assert {"SANCTIONS_WATCH_DATABASE_URL", "AIRFLOW_CONN_SMTP_DEFAULT"} <= set(secrets)
    assert all(s["secretName"] and s["secretKey"] for s in secrets.values())
    # No admin made with the chart's default password.
    assert helm["webserver"]["defaultUser"]["enabled"] is False


def test_no_secret_value_is_written_in_a_committed_file(
    compose: dict[str, Any], helm: dict[str, Any]
) -> None:
    # Compose: secrets only through the env files, which git ignores; committed examples hold
    # placeholders only.
    for service, body in compose["services"].items():
        for name in body.get("environment", {}):
            assert not SECRET_NAME.search(name), (service, name)
    for path, value in _walk(compose):
        assert not CREDENTIALS_IN_URL.search(str(value)), path
    ignored = (COMPOSE.parent / ".gitignore").read_text("utf-8").splitlines()
    assert {"secrets.env", "postgres.env"} <= set(ignored)
    for name, value in _env_file(COMPOSE.parent / "airflow.env").items():
        assert not SECRET_NAME.search(name), name
        assert not CREDENTIALS_IN_URL.search(value), name
    for example in COMPOSE.parent.glob("*.env.example"):
        for name, value in _env_file(example).items():
            if SECRET_NAME.search(name):
                assert "change-me" in value, (example.name, name)
    # Helm: secrets are Kubernetes Secrets named by the chart's *SecretName keys and `secret:`.
    for key in ("fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey"):
        assert not helm.get(key), key
    assert "metadataConnection" not in helm["data"]
    for item in helm["env"]:
        assert not SECRET_NAME.search(item["name"]), item["name"]
    for path, value in _walk(helm):
        assert not CREDENTIALS_IN_URL.search(str(value)), path


def test_every_airflow_setting_named_exists_in_the_installed_airflow(
    compose: dict[str, Any], helm: dict[str, Any], airflow_options: set[tuple[str, str]]
) -> None:
    names = set()
    for service in AIRFLOW_SERVICES:
        names |= set(_airflow_env(compose, service))
    names |= set(_env_file(COMPOSE.parent / "secrets.env.example"))
    names |= {e["name"] for e in helm["env"]}
    settings = {n for n in names if n.startswith("AIRFLOW__")}
    assert len(settings) >= 10
    for name in sorted(settings):
        section, option = name.removeprefix("AIRFLOW__").lower().split("__", 1)
        assert (section, option) in airflow_options, name
    for section, body in helm["config"].items():
        for option in body:
            assert (section, option) in airflow_options, f"config.{section}.{option}"


def test_the_pipeline_settings_in_the_env_files_load(tmp_path: Path) -> None:
    """airflow.env and secrets.env.example, as the containers see them, over the shipped config:
    accepted by the loader, PostgreSQL, and passing the executor check."""
    env = {
        **_env_file(COMPOSE.parent / "airflow.env"),
        **_env_file(COMPOSE.parent / "secrets.env.example"),
    }
    env["SANCTIONS_WATCH_REVIEW_SECRET"] = "x" * 40  # the example's placeholder is too short
    config = load_config(ROOT / "config", environ=env)
    assert config.database_url == "postgresql://sanctions:change-me@postgres:5432/sanctions_watch"
    assert config.smtp.host == "smtp.example.org" and config.smtp.security == "starttls"
    assert not config.fetch.allow_hosts  # production: no loopback allow-list
    assert config.operators == ("operators@example.org",)
    # The pipeline's own metrics go where Airflow's go.
    assert config.metrics.enabled and config.metrics.host == "statsd-exporter"
    assert config.metrics.port == 9125  # statsd-exporter's, as AIRFLOW__METRICS__STATSD_PORT
    check_executor(config, "CeleryExecutor")
    check_executor(config, "KubernetesExecutor")
