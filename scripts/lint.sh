#!/usr/bin/env bash
# The habits CI enforces (make test and make lint run this; .pre-commit-config.yaml runs the same
# three checks): code formatted by ruff, ruff's lint rules (Airflow's AIR rules included), and
# mypy --strict on pipeline/ (configured in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/mypy
