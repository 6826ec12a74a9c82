#!/usr/bin/env bash
# One full cycle through Airflow's dag.test() on the embedded defaults: sample feeds on loopback,
# SQLite under var/, mails to the local SMTP sink (var/outbox/*.eml). Prints the summary and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
export AIRFLOW_HOME=${AIRFLOW_HOME:-$PWD/var/airflow}
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export SANCTIONS_WATCH_CONFIG=${SANCTIONS_WATCH_CONFIG:-$PWD/config}
mkdir -p "$AIRFLOW_HOME" var/outbox
scripts/services.sh start
trap 'scripts/services.sh stop' EXIT
echo "== preparing Airflow's metadata database in $AIRFLOW_HOME"
.venv/bin/airflow db migrate >var/log/airflow-db-migrate.log 2>&1 || { tail -n 30 var/log/airflow-db-migrate.log; exit 1; }
echo "== running the sanctions_watch DAG once with dag.test()"
.venv/bin/python scripts/demo_dag.py
