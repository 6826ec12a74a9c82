# sanctions-watch: `make run` (Airflow + sample feeds + mail sink), `make demo` (one cycle through
# dag.test()), `make test` (format, lint and type checks, then every test), `make lint` (the checks
# alone). Each target sets up .venv/ first, with the dev and demo extras (the demo extra is the
# local SMTP sink, aiosmtpd, that run, demo and the tests talk to).
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export AIRFLOW_HOME ?= $(CURDIR)/var/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export SANCTIONS_WATCH_CONFIG ?= $(CURDIR)/config

.PHONY: setup run demo test lint format bench bench-quick clean services-start services-stop

$(STAMP): pyproject.toml
	@test -n "$(PY)" || { echo "Python 3.11 is required (python3.11 not found)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,demo]'
	@touch $(STAMP)

setup: $(STAMP)

# Airflow standalone with the project's DAGs, the sample feeds on loopback and the SMTP sink.
run: setup
	@scripts/run.sh

# One full cycle through Airflow's dag.test(); prints the summary and exits.
demo: setup
	@scripts/demo.sh

test: setup
	@scripts/test.sh

lint: setup
	@scripts/lint.sh

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Cycles (100, 1,000, 5,000 feeds: new, unchanged, 10 % changed) against the naive script and the
# lower bound, then scoring throughput on summaries and 600-word articles (docs/performance.md).
bench: setup
	$(BIN)/python bench/cycles.py --feeds 100,1000,5000
	$(BIN)/python bench/score_throughput.py --shape summary --processes 2 --out bench/results/score-summary-$$(date -u +%F).json
	$(BIN)/python bench/score_throughput.py --shape article --processes 2 --out bench/results/score-article-$$(date -u +%F).json

# The 100-feed cycles only (a few minutes).
bench-quick: setup
	$(BIN)/python bench/cycles.py --quick

clean:
	rm -rf var/ .pytest_cache .ruff_cache .mypy_cache
