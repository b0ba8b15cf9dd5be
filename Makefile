# Quick start: `make demo` and `make test`. Both create (or reuse) a local virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LOWEST_VENV ?= .venv-lowest
LOWEST_STAMP := $(LOWEST_VENV)/.installed

.PHONY: demo test test-fast test-lowest lint typecheck unit bench clean data-dictionary

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "phm-audit needs Python 3.11 or newer; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The lowest supported versions: every dependency pinned to the lower bound pyproject.toml declares.
$(LOWEST_STAMP): pyproject.toml .ci/lowest_constraints.py
	@test -x $(LOWEST_VENV)/bin/python || $(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) .ci/lowest_constraints.py > $(LOWEST_VENV)/constraints.txt
	$(LOWEST_VENV)/bin/python -m pip install --quiet -c $(LOWEST_VENV)/constraints.txt -e '.[all,test]'
	@touch $(LOWEST_STAMP)

demo: $(STAMP)
	$(BIN)/phm-audit demo

lint: $(STAMP)
	$(BIN)/ruff check phm_audit tests benchmarks examples conftest.py
	$(BIN)/ruff format --check phm_audit tests benchmarks examples conftest.py

typecheck: $(STAMP)
	$(BIN)/mypy phm_audit

unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# everything: ruff, mypy, the whole suite (doctests and the slow tests included) on the newest versions
test: lint typecheck unit

# everyday work: the suite less the tests marked slow (large populations, many seeds)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

# the whole suite on the lowest supported versions (.ci/run runs it after `make test`)
test-lowest: $(LOWEST_STAMP)
	$(LOWEST_VENV)/bin/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_generator.py

data-dictionary: $(STAMP)
	$(BIN)/phm-audit data-dictionary --out synthetic_data/DATA_DICTIONARY.md

clean:
	rm -rf $(VENV) $(LOWEST_VENV) .pytest_cache .mypy_cache .ruff_cache
