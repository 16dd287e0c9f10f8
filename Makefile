# Two commands matter: `make demo` (the tap on the embedded emulator into DuckDB) and
# `make test` (the whole test suite). Both install what they need into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast chaos lint typecheck check lock docs bench clean test-meltano

# Virtualenvs the test suite builds (Singer targets, Meltano) and uv itself live outside the
# clone, shared by every clone on this machine (docs/development.md: how to clear it).
TEST_CACHE ?= $(or $(TAP_AUDITLOGS_TEST_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tap-auditlogs-tests)
# uv (pinned in requirements.lock) builds .venv: seconds from its download cache, where
# venv + pip take a minute on a busy machine and download everything again.
UV_VERSION := $(shell sed -n 's/^uv==\([^ ;]*\).*/\1/p' requirements.lock)
UV_HOME := $(TEST_CACHE)/uv-$(UV_VERSION)
UV := $(UV_HOME)/bin/uv
# Compiled at install (as pip does): else every test worker compiles the same modules at once.
UV_PIP := $(UV) pip install --quiet --compile-bytecode --python $(BIN)/python

$(UV):
	rm -rf $(UV_HOME).tmp.$$$$ && \
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
		--root-user-action=ignore --target $(UV_HOME).tmp.$$$$ uv==$(UV_VERSION) && \
	{ [ -e $(UV_HOME) ] || mv $(UV_HOME).tmp.$$$$ $(UV_HOME); } && rm -rf $(UV_HOME).tmp.$$$$

$(STAMP): pyproject.toml requirements.lock | $(UV)
	$(UV) venv --quiet --clear --seed --python $(PYTHON) $(VENV)
	$(UV_PIP) -r requirements.lock
	$(UV_PIP) --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## The main job on an embedded default: emulator -> tap -> target-duckdb -> row counts.
demo: install
	$(BIN)/python scripts/demo.py

## The whole test suite (slow end-to-end tests included), on TEST_WORKERS processes: most tests
## wait on subprocesses and HTTP, so more workers than cores pay (TEST_WORKERS=0: one process);
## worksteal: an idle worker takes queued tests from a busy one, so no long test waits at the end.
TEST_WORKERS ?= 4
## Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set (some CI images): else every
## tap subprocess of the suite (hundreds) compiles the package from source again.
TEST_ENV := PYTHONDONTWRITEBYTECODE=
test: install
	$(TEST_ENV) $(BIN)/python -m compileall -q tap_auditlogs tests
	$(TEST_ENV) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

## Everything but the slow end-to-end tests.
test-fast: install
	$(TEST_ENV) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow"

## Meltano end to end alone: meltano run into DuckDB and PostgreSQL, connection tests
## (Meltano in the test cache, its plugins in output/meltano-e2e: both reused on later runs).
test-meltano: install
	$(BIN)/python -m pytest tests/test_meltano.py tests/test_connection_check.py

## Chaos over many seeds, as a table (CI runs a few in tests/test_chaos.py):
## CHAOS_SEEDS=50 make chaos
chaos: install
	$(BIN)/python scripts/chaos.py --seeds $${CHAOS_SEEDS:-20}

## Style, formatting and the import contracts (pyproject.toml [tool.importlinter]).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy tap_auditlogs benchmarks

check: lint typecheck test

## Throughput benchmark against the emulator and a plain orjson baseline (not a test).
bench: install
	$(BIN)/python benchmarks/run.py

## Regenerate the settings table (docs/settings.md), meltano.yml settings and .env.example.
docs: install
	$(BIN)/python scripts/update_docs.py

## Re-pin every dependency for Python 3.10-3.13 (needs network access to PyPI).
lock: $(UV)
	$(UV) pip compile pyproject.toml --extra test --extra dev --universal \
		--python-version 3.10 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache output
