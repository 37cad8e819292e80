# Fengqiao — `make help` lists the targets.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCK := requirements.lock
PYTEST_ARGS ?=

.PHONY: help install lock wheelhouse demo test test-slow bench bench-dashboard quality clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCK)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the locked dependencies and the project (with its dev extras)

lock: $(STAMP) ## After editing pyproject.toml's dependencies: resolve them again into requirements.lock
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --universal --quiet -o $(LOCK)

wheelhouse: $(STAMP) ## Build wheelhouse/: every locked dependency and the project, for `pip install --no-index`
	$(BIN)/pip download --quiet --only-binary=:all: -r $(LOCK) -d wheelhouse
	$(BIN)/pip wheel --quiet --no-deps -w wheelhouse .
	@echo "offline install: python3.11 -m venv .venv && .venv/bin/pip install --no-index --find-links wheelhouse -r $(LOCK) fengqiao"

demo: $(STAMP) ## Run the main job on the embedded defaults (simulate → ingest → features → train, register, promote → score → serve the API)
	$(BIN)/fengqiao demo

test: $(STAMP) ## Run the fast test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP) ## Run the slow end-to-end tests only
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

bench: $(STAMP) ## Run the benchmarks in experiments/ (minutes; writes experiments/results/)
	$(BIN)/python experiments/bench_simulate.py
	$(BIN)/python experiments/bench_features.py
	$(BIN)/python experiments/bench_ingest.py

bench-dashboard: $(STAMP) ## Time the dashboard's ranking and map at province scale in headless Chromium (simulates a scale-10 world once)
	PYTHONPATH=tests $(BIN)/python experiments/bench_dashboard.py

quality: $(STAMP) ## Every model against the targets on the default world (long; writes experiments/results/quality.*)
	$(BIN)/python experiments/quality.py

clean: ## Remove the virtual environment and var/
	rm -rf $(VENV) var
