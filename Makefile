# The README's two commands: `make test` and `make demo`. Both set everything up themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo demo-real clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/python -m emulators.demo

# The same client-patcher story against the real Keycloak (needs Java >= 21 and Maven; cached download).
demo-real: $(STAMP)
	$(BIN)/python -m lab.demo_real

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
