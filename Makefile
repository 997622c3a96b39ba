# The two commands: `make run` and `make test`. Everything else is a habit with its own target.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

# `make run` is for development: debug on unless the environment or .env says otherwise.
DOTENV_DEBUG := $(shell sed -n 's/^DJANGO_DEBUG=//p' .env 2>/dev/null | tail -n 1)
DJANGO_DEBUG ?= $(or $(DOTENV_DEBUG),1)
# The demo model streams at a readable pace unless told otherwise.
export SIMULATOR_TPS ?= 40
export SIMULATOR_FIRST_TOKEN_DELAY ?= 0.3

.PHONY: run serve test lint format migrations-check browser-deps bench clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt requirements.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	DJANGO_DEBUG=$(DJANGO_DEBUG) $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=$(DJANGO_DEBUG) $(PY) manage.py bootstrap
	@if [ "$(DJANGO_DEBUG)" = "0" ]; then DJANGO_DEBUG=0 $(PY) manage.py collectstatic --noinput -v0; fi
	@echo "Serving on http://$(HOST):$(PORT)/"
	DJANGO_DEBUG=$(DJANGO_DEBUG) $(VENV)/bin/daphne -b $(HOST) -p $(PORT) chatsite.asgi:application

# Production: DJANGO_DEBUG off, several daphne processes behind one address (bin/serve-many,
# docs/deploy.md). Needs DJANGO_SECRET_KEY, and REDIS_URL for more than one process.
PROCESSES ?= $(shell nproc 2>/dev/null || echo 2)
serve: $(VENV)/.installed
	DJANGO_DEBUG=0 $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=0 $(PY) manage.py collectstatic --noinput -v0
	DJANGO_DEBUG=0 $(PY) manage.py bootstrap
	DJANGO_DEBUG=0 $(PY) bin/serve-many --processes $(PROCESSES) --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser tests; installed where missing and we are root.
browser-deps:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser tests..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The browser tests need Chromium: run 'sudo apt-get install chromium' (Debian/Ubuntu)."; \
		exit 1; \
	fi

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: $(VENV)/.dev-installed
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py makemigrations --check --dry-run

test: $(VENV)/.dev-installed browser-deps lint migrations-check
	$(VENV)/bin/pytest

bench: $(VENV)/.dev-installed
	$(PY) bench/streams.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
