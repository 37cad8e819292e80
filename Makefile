# Fengqiao — `make help` lists the targets.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help install demo test test-slow bench bench-dashboard quality clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its dev extras

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
