#!/usr/bin/env bash
# One full cycle through Airflow's dag.test() on the embedded defaults: sample feeds on loopback,
# SQLite under var/, mails to the local SMTP sink (var/outbox/*.eml). Prints the summary and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
export AIRFLOW_HOME=${AIRFLOW_HOME:-$PWD/var/airflow}
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export SANCTIONS_WATCH_CONFIG=${SANCTIONS_WATCH_CONFIG:-$PWD/config}
mkdir -p "$AIRFLOW_HOME" var/outbox
scripts/services.sh start
trap 'scripts/services.sh stop' EXIT
echo "== preparing Airflow's metadata database in $AIRFLOW_HOME"
.venv/bin/airflow db migrate >var/log/airflow-db-migrate.log 2>&1 || { tail -n 30 var/log/airflow-db-migrate.log; exit 1; }
echo "== running the ingest DAG, then the alert DAG, once each with dag.test() (Airflow's log: var/log/demo-dag.log)"
export DEMO_SUMMARY=$PWD/var/demo-summary.json
rm -f "$DEMO_SUMMARY"
if ! .venv/bin/python scripts/demo_dag.py >var/log/demo-dag.log 2>&1; then
  tail -n 40 var/log/demo-dag.log
  echo "the DAG run failed; see var/log/demo-dag.log"
  exit 1
fi
echo "== summary"
cat "$DEMO_SUMMARY"
echo "== $(ls var/outbox/*.eml 2>/dev/null | wc -l) mails in $PWD/var/outbox/ ($(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent_this_run"])' "$DEMO_SUMMARY") sent by this run)"
for f in $(ls -t var/outbox/*.eml 2>/dev/null | head -n 3); do
  echo "   $f: $(.venv/bin/python -c 'import email,sys; from email import policy; print(email.message_from_binary_file(open(sys.argv[1],"rb"), policy=policy.default)["Subject"])' "$f")"
done
