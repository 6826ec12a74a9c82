#!/usr/bin/env bash
# Every check, then every test. The checks (scripts/lint.sh): ruff format --check, ruff check (with
# Airflow's AIR rules) and mypy --strict on pipeline/; an unformatted file or a type error fails
# the run before any test. PostgreSQL tests run against $SANCTIONS_WATCH_TEST_POSTGRES_URL
# (default postgresql://postgres@127.0.0.1:5432/test) and skip with a reason when it is unreachable,
# unless SANCTIONS_WATCH_REQUIRE_POSTGRES=1 (CI sets it) turns the skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/lint.sh
exec .venv/bin/python -m pytest "$@"
