# Quick start: `make demo` and `make test`. Both create (or reuse) a local virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean data-dictionary

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "phm-audit needs Python 3.11 or newer; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/phm-audit demo

lint: $(STAMP)
	$(BIN)/ruff check phm_audit tests benchmarks examples
	$(BIN)/ruff format --check phm_audit tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy phm_audit

unit: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_generator.py

data-dictionary: $(STAMP)
	$(BIN)/phm-audit data-dictionary --out synthetic_data/DATA_DICTIONARY.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
