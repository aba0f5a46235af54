# The two newcomer commands are `make run` and `make test`; the rest is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

# pip's own notices (setuptools' editable-install advice) go to a log, shown only when
# the install fails.
PIP_LOG := $(VENV)/pip.log

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip > $(PIP_LOG) 2>&1 || (cat $(PIP_LOG); exit 1)

$(VENV)/.installed-run: pyproject.toml setup.py | $(BIN)/python
	@echo "installing EcoHub into $(VENV) (a minute the first time)"
	$(BIN)/pip install --quiet -e . > $(PIP_LOG) 2>&1 || (cat $(PIP_LOG); exit 1)
	touch $@

$(VENV)/.installed-dev: pyproject.toml setup.py | $(BIN)/python
	@echo "installing EcoHub with its development tools into $(VENV)"
	$(BIN)/pip install --quiet -e '.[dev]' > $(PIP_LOG) 2>&1 || (cat $(PIP_LOG); exit 1)
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-bench: $(VENV)/.installed-dev
	@echo "installing the benchmarks' comparison tools (SaQC, matplotlib)"
	$(BIN)/pip install --quiet -e '.[dev,bench]' > $(PIP_LOG) 2>&1 || (cat $(PIP_LOG); exit 1)
	touch $@

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
bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks.store_write
	$(BIN)/python -m benchmarks.hj212_gateway
	$(BIN)/python -m benchmarks.standards
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.alarms
	$(BIN)/python -m benchmarks.api
	$(BIN)/python -m benchmarks.soak
	$(BIN)/python -m benchmarks.qc_saqc
	$(BIN)/python -m benchmarks.cnemc_import
	$(BIN)/python -m benchmarks.supervision_risk
	$(BIN)/python -m benchmarks.complaints_linking
	$(BIN)/python -m benchmarks.complaints_intake
	$(BIN)/python -m benchmarks.permits_tax
	$(BIN)/python -m benchmarks.bus_throughput

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
