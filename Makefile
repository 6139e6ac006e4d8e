# The two commands a newcomer runs (README): `make demo` runs the system, `make test` the whole test suite.
# Both create .venv with Python 3.11+ when it is missing and install the project into it (`pip install -e
# '.[dev]'`), again only when pyproject.toml changed since the last install.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-pyproject
PYTHON_CANDIDATES := python3.13 python3.12 python3.11 python3

.PHONY: install test check lint demo

install: $(STAMP)

# Everything: pytest first (it exits 5, a failure, when it collected no test), printing its 25 slowest tests,
# then the linters and the type checker. The README's test command; .ci/run calls it. Two processes (pytest-xdist),
# each with its own Kafka broker and PostgreSQL server; a test file stays in one process (its stack is per module).
test: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile --durations=25
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The everyday development command: the linters, the type checker, and every test that needs no Kafka broker, no
# PostgreSQL server and no stack of worker processes (the markers `kafka` and `postgres`, which tests/conftest.py
# adds to every test using the broker or the database). About a minute from a warm venv.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q -n 2 -m "not kafka and not postgres"

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
