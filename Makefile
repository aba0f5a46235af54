# The two newcomer commands are `make run` and `make test`; the rest is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## run: install, initialise the embedded store, load the demo data and start the platform
run: $(VENV)/.installed-run
	$(BIN)/ecohub init
	$(BIN)/ecohub demo load
	$(BIN)/ecohub serve --demo-loggers --demo-interval 10

## test: install with dev extras, lint, type-check and run the whole suite (SQLite + PostgreSQL)
test: $(VENV)/.installed-dev lint
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: run every benchmark and print its figures
bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.store_write
	$(BIN)/python -m benchmarks.hj212_gateway
	$(BIN)/python -m benchmarks.standards
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.alarms
	$(BIN)/python -m benchmarks.api

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
