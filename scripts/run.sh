#!/usr/bin/env bash
# Airflow standalone with the project's DAGs on the embedded defaults: sample feeds on loopback,
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
# A DAG first seen by `make demo` (dag.test) may have been registered paused: unpause them explicitly.
for dag_id in ingest alert digest housekeeping; do
  for _ in $(seq 1 60); do
    if .venv/bin/airflow dags unpause "$dag_id" >/dev/null 2>&1; then break; fi
    sleep 2
  done
done
# The analysts' review page (its own login; docs/analyst-guide.md): a secret kept under var/ for the
# demo (production sets SANCTIONS_WATCH_REVIEW_SECRET from its secret store) and an account `analyst`.
if [ -z "${SANCTIONS_WATCH_REVIEW_SECRET:-}" ]; then
  [ -f var/review-secret ] || (umask 077; .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(48))" >var/review-secret)
  SANCTIONS_WATCH_REVIEW_SECRET=$(cat var/review-secret); export SANCTIONS_WATCH_REVIEW_SECRET
fi
if [ ! -f var/review-analyst-password ]; then
  (umask 077; .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(12))" >var/review-analyst-password)
  .venv/bin/sanctions-watch review add-analyst analyst <var/review-analyst-password >/dev/null
fi
.venv/bin/sanctions-watch review serve --port 8081 >var/log/review.log 2>&1 &
pids+=($!)
PASSFILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
cat <<INFO

  Airflow UI:   http://localhost:$PORT   (DAGs: ingest every 15 minutes, then alert on its asset; trigger ingest to run now)
  Operators:    "Sanctions watch" in the Airflow UI's menu (feed health, alert volumes, outbox, latency, model)
  Login:        $( [ -f "$PASSFILE" ] && .venv/bin/python -c "import json,sys; d=json.load(open(sys.argv[1])); print(', '.join(f'{u} / {p}' for u,p in d.items()))" "$PASSFILE" || echo "see $PASSFILE")
  Review page:  http://127.0.0.1:8081   (analyst / $(cat var/review-analyst-password); log: var/log/review.log)
  Sample feeds: http://127.0.0.1:8765/   Mail sink: 127.0.0.1:8025
  Mails land:   $PWD/var/outbox/*.eml
  Database:     $PWD/var/sanctions-watch.db
  Stop:         Ctrl-C

INFO
wait "${pids[0]}"
