# The console's commands. `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test run worker lint format migrate clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e ".[dev,demo]"
	@touch $@

$(VENV)/.installed-demo: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e ".[demo]"
	@touch $@

$(VENV)/.installed-run: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e .
	@touch $@

demo: $(VENV)/.installed-demo  ## sandbox AWS + web + worker on SQLite, until Ctrl-C (DEMO_PORT=8000)
	DEBUG=true $(PY) manage.py demo

test: $(VENV)/.installed-dev  ## the whole suite (SQLite, or PostgreSQL when DATABASE_URL says so)
	@scripts/system-packages
	$(PY) -m pytest

run: $(VENV)/.installed-run  ## real AWS, settings from the environment
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input --verbosity 0
	BIND=$${BIND:-127.0.0.1:8000} $(VENV)/bin/gunicorn console.wsgi --config gunicorn.conf.py --access-logfile -

worker: $(VENV)/.installed-run
	$(PY) manage.py qcluster

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy cleanup breaker webhooks accounts audit console notify
	$(VENV)/bin/cfn-lint deploy/cloudformation/*.yaml
	$(VENV)/bin/hadolint Dockerfile

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) staticfiles
