# Newcomer entry points: `make run` and `make test` need only python3 and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/live-track serve --host $(HOST) --port $(PORT)

demo: $(VENV)/.installed-run
	$(BIN)/live-track demo --count 40

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(VENV)/.installed-dev  # both always run; fails if either missed a target
	$(BIN)/python -m benchmarks.run; run=$$?; $(BIN)/python -m benchmarks.instant; \
	instant=$$?; exit $$(( run || instant ))

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
