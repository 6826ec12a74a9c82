#!/usr/bin/env bash
# Every test. PostgreSQL tests run against $SANCTIONS_WATCH_TEST_POSTGRES_URL
# (default postgresql://postgres@127.0.0.1:5432/test) and skip with a reason when it is unreachable,
# unless SANCTIONS_WATCH_REQUIRE_POSTGRES=1 (CI sets it) turns the skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
