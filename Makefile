# Two commands: `make run` serves the gateway on $PORT (3000); `make test` runs the quality gate
# (`make lint`), then the whole suite on PostgreSQL + Redis, the relay tests again on the embedded
# SQLite default, and everything on MariaDB.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

LINT_PATHS := newapi_site relay accounts billing tasks

.PHONY: run test lint bench install install-test migrate serve clean image-steps bench-logs

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[test]'
	touch $(STAMP) $@

install: $(STAMP)
install-test: $(TEST_STAMP)

migrate: $(STAMP)
	$(PY) manage.py compile_catalogues
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_root

run: migrate
	$(PY) manage.py serve

# The quality gate: lint rules, formatting and types on the product packages, zero errors.
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy $(LINT_PATHS)

test: lint
	$(PY) manage.py compile_catalogues
	$(PY) -m pytest $(PYTEST_ARGS)
	NEWAPI_TEST_DB=sqlite $(PY) -m pytest -m relay $(PYTEST_ARGS)
	NEWAPI_TEST_DB=mysql $(PY) -m pytest $(PYTEST_ARGS)

bench: $(TEST_STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

# Log searches at scale: fills a scratch PostgreSQL database with 5 million log rows (BENCH_ARGS="--rows N")
# and times a user's first page, an admin search by model and token name, and the stats endpoints.
bench-logs: $(TEST_STAMP)
	$(PY) bench/logs.py $(BENCH_ARGS)

# The Docker image's build steps without Docker (docker/build.sh): dependency wheels, then an offline virtualenv.
image-steps:
	bash docker/build.sh wheels build/wheels
	bash docker/build.sh install build/wheels build/venv

clean:
	rm -rf $(VENV) data
