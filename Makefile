# One task runner for people and CI. Everything runs inside backend/.venv, built from the
# committed lock files (backend/requirements*.txt).

PYTHON ?= python3
VENV := backend/.venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help install run migrate seed test lint format bench bench-load bench-fairness bench-forecast forecast-report lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): backend/requirements-dev.txt backend/pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r backend/requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e backend
	touch $(STAMP)

install: $(STAMP) ## create backend/.venv from the lock file

backend/.env:
	cp backend/.env.example backend/.env
	@echo "created backend/.env from .env.example (DEBUG=true, embedded SQLite and cache)"

migrate: install backend/.env ## apply database migrations
	cd backend && $(BIN)/cryptopredict db upgrade

seed: migrate ## load the bundled demo data if the database has none
	cd backend && $(BIN)/cryptopredict seed --if-empty

run: seed ## migrate, seed and serve the API on http://127.0.0.1:8000
	cd backend && $(BIN)/cryptopredict serve --host $(HOST) --port $(PORT)

test: install ## run the whole test suite with coverage
	cd backend && $(BIN)/pytest --cov=app --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

lint: install ## ruff (lint, complexity, format), mypy, the layer contracts, dead code, hadolint
	cd backend && $(BIN)/ruff check . ../bench && $(BIN)/ruff format --check . ../bench && $(BIN)/mypy
	cd backend && $(BIN)/lint-imports && $(BIN)/vulture
	$(BIN)/hadolint backend/Dockerfile

format: install ## apply ruff's fixes and formatting
	cd backend && $(BIN)/ruff check --fix . ../bench && $(BIN)/ruff format . ../bench

BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/14

$(VENV)/.bench-installed: $(STAMP) bench/requirements.txt
	$(BIN)/pip install --quiet -r bench/requirements.txt
	touch $@

BENCH_ENV = BENCH_DATABASE_URL='$(BENCH_DATABASE_URL)' BENCH_REDIS_URL='$(BENCH_REDIS_URL)'
FORECAST_BENCH = $(BENCH_ENV) $(BIN)/python bench/forecast.py --write-doc $(BENCH_FORECAST_ARGS)

bench: install $(VENV)/.bench-installed ## ingest, HTTP, load, fairness and forecasting benchmarks, writes docs/BENCHMARKS.md and docs/FORECASTING.md (~21 min)
	@command -v wrk >/dev/null 2>&1 || { echo "wrk is not on PATH; install it: apt-get install -y wrk" >&2; exit 1; }
	$(BENCH_ENV) $(BIN)/python bench/run.py $(BENCH_ARGS)
	$(FORECAST_BENCH)

bench-load: install ## the load run alone (mixed reads at a fixed rate, ~1 min): prints its JSON report, writes no doc
	$(BENCH_ENV) $(BIN)/python bench/load.py $(BENCH_LOAD_ARGS)

bench-fairness: install ## the fairness run alone (one key floods heavy work, another reads, ~1.5 min): rewrites its section of docs/BENCHMARKS.md
	$(BENCH_ENV) $(BIN)/python bench/run.py --only fairness $(BENCH_FAIRNESS_ARGS)

bench-forecast: install ## predictions for 100 coins vs statsforecast + LightGBM alone, writes its section of docs/FORECASTING.md (~9 min)
	$(FORECAST_BENCH)

forecast-report: install ## backtest every model on the demo data, rewrite docs/FORECASTING.md (~15 min)
	$(BIN)/python backend/scripts/forecast_report.py --write-doc

lock: ## re-resolve backend/requirements*.txt from pyproject.toml (needs network)
	$(PYTHON) -m venv /tmp/crypto-lock-venv && /tmp/crypto-lock-venv/bin/pip install --quiet uv
	cd backend && /tmp/crypto-lock-venv/bin/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -o requirements.txt
	cd backend && /tmp/crypto-lock-venv/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements-dev.txt

clean: ## remove the environment, caches and the embedded database
	rm -rf $(VENV) backend/var backend/.pytest_cache backend/.mypy_cache backend/.ruff_cache backend/htmlcov backend/.coverage
