# The two commands a newcomer runs (README): `make demo` runs the system, `make test` the whole test suite.
# Both create .venv with Python 3.11+ when it is missing and install the project into it (`pip install -e
# '.[dev]'`), again only when pyproject.toml changed since the last install.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-pyproject
PYTHON_CANDIDATES := python3.13 python3.12 python3.11 python3

.PHONY: install test lint demo

install: $(STAMP)

# pytest first (it exits 5, a failure, when it collected no test), then the linters and the type checker.
test: $(STAMP)
	$(BIN)/pytest
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/smsdispatch demo

$(BIN)/python:
	@python=""; \
	for candidate in $(PYTHON_CANDIDATES); do \
	  if command -v $$candidate >/dev/null 2>&1 \
	     && $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	    python=$$candidate; break; \
	  fi; \
	done; \
	if [ -z "$$python" ]; then \
	  echo "make: Python 3.11 or newer is needed: install it (on Debian: apt-get install python3 python3-venv)." >&2; \
	  exit 1; \
	fi; \
	echo "Creating $(VENV) with $$($$python --version)"; \
	$$python -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@
