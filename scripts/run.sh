#!/usr/bin/env bash
# Airflow standalone with the project's DAG on the embedded defaults: sample feeds on loopback,
# SQLite under var/, mails to the local SMTP sink (var/outbox/*.eml). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export AIRFLOW_HOME=${AIRFLOW_HOME:-$PWD/var/airflow}
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}
export SANCTIONS_WATCH_CONFIG=${SANCTIONS_WATCH_CONFIG:-$PWD/config}
export PATH="$PWD/.venv/bin:$PATH"  # airflow standalone starts its parts as `airflow ...`
PORT=${AIRFLOW__API__PORT:-8080}
mkdir -p "$AIRFLOW_HOME" var/log var/outbox
scripts/services.sh start
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; scripts/services.sh stop; }
trap cleanup EXIT INT TERM
echo "== starting Airflow standalone (log: var/log/airflow-standalone.log); first start takes a minute"
.venv/bin/airflow standalone >var/log/airflow-standalone.log 2>&1 &
pids+=($!)
for _ in $(seq 1 180); do
  if curl -fsS "http://127.0.0.1:$PORT/api/v2/monitor/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[0]}" 2>/dev/null; then echo "Airflow exited; see var/log/airflow-standalone.log"; tail -n 30 var/log/airflow-standalone.log; exit 1; fi
  sleep 1
done
# A DAG first seen by `make demo` (dag.test) may have been registered paused: unpause it explicitly.
for _ in $(seq 1 60); do
  if .venv/bin/airflow dags unpause sanctions_watch >/dev/null 2>&1; then break; fi
  sleep 2
done
PASSFILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
cat <<INFO

  Airflow UI:   http://localhost:$PORT   (DAG: sanctions_watch, every 15 minutes; trigger it to run now)
  Login:        $( [ -f "$PASSFILE" ] && .venv/bin/python -c "import json,sys; d=json.load(open(sys.argv[1])); print(', '.join(f'{u} / {p}' for u,p in d.items()))" "$PASSFILE" || echo "see $PASSFILE")
  Sample feeds: http://127.0.0.1:8765/   Mail sink: 127.0.0.1:8025
  Mails land:   $PWD/var/outbox/*.eml
  Database:     $PWD/var/sanctions-watch.db
  Stop:         Ctrl-C

INFO
wait "${pids[0]}"
