# kolab_pipeline — the two commands (`make demo`, `make test`) and friends.
# Everything the project needs is installed by these targets; nothing by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export KOLAB_HOME ?= $(CURDIR)/data
PIP_FLAGS := --disable-pip-version-check --progress-bar off -q

.PHONY: demo test ui install install-dev lint bench bench-kabupaten clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip 2>/dev/null || true

# Re-install when pyproject.toml changes (stamp files).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e . 2> $(VENV)/pip-install.log || (cat $(VENV)/pip-install.log; exit 1)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e ".[dev]" 2> $(VENV)/pip-install.log || (cat $(VENV)/pip-install.log; exit 1)
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make demo: install, generate the sample data, run every asset for every sample month.
demo: install
	$(BIN)/kolab sample-data --seed 42
	$(BIN)/kolab run

## make test: install with dev extras, PostgreSQL and Chromium binaries (tests/support/), run the suite.
test: install-dev
	$(BIN)/python -m tests.support.pg ensure-binaries
	$(BIN)/python -m tests.support.chromium ensure-binaries
	$(BIN)/pytest

## make ui: the Dagster UI on the same warehouse, bound to 127.0.0.1 (UI_PORT, default 3000).
## DAGSTER_HOME is the instance `kolab run` records its runs in (KOLAB_HOME/.dagster; its
## dagster.yaml limits the duckdb_writer pool to one step at a time). Ctrl-C or SIGTERM stops every
## Dagster process it started (kolab_pipeline/orchestration/ui.py; `exec` so make's SIGTERM reaches it).
UI_PORT ?= 3000
ui: install
	exec $(BIN)/python -m kolab_pipeline.orchestration.ui --host 127.0.0.1 --port $(UI_PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## make bench: the national-scale benchmark (see benchmarks/README section in README.md).
bench: install
	$(BIN)/python benchmarks/run_benchmark.py --scale national --series

bench-kabupaten: install
	$(BIN)/python benchmarks/run_benchmark.py --scale kabupaten

clean:
	rm -rf $(VENV) .pytest_cache
