#!/bin/bash
# First start of an empty data volume only (the postgres image runs /docker-entrypoint-initdb.d/*):
# one role and one database for Airflow's metadata, one for the pipeline. Passwords from postgres.env.
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?set it in postgres.env}" "${PIPELINE_DB_PASSWORD:?set it in postgres.env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v pipeline_pw="$PIPELINE_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE sanctions LOGIN PASSWORD :'pipeline_pw';
CREATE DATABASE sanctions_watch OWNER sanctions;
SQL
