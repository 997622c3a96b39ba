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
	DJANGO_DEBUG=$(DJANGO_DEBUG) $(PY) -m chatsite.serve -b $(HOST) -p $(PORT) chatsite.asgi:application

# Production: DJANGO_DEBUG off, PROCESSES daphne processes behind one address, kept running by
# supervisor (deploy/supervisord.conf, docs/deploy.md). Needs DJANGO_SECRET_KEY, and REDIS_URL
# for more than one process. supervisord's pid file and control socket go to RUN_DIR.
PROCESSES ?= $(shell nproc 2>/dev/null || echo 2)
RUN_DIR ?= $(CURDIR)/.run
# Only a proxy on this machine can reach a loopback address: trust its X-Forwarded-For and
# X-Forwarded-Proto there, and elsewhere only when told (DAPHNE_ARGS=--proxy-headers).
DAPHNE_ARGS ?= $(if $(filter 127.% localhost,$(HOST)),--proxy-headers)
DOTENV_REDIS_URL := $(shell sed -n 's/^REDIS_URL=//p' .env 2>/dev/null | tail -n 1)
serve: $(VENV)/.installed
	@if [ "$(PROCESSES)" -gt 1 ] && [ -z "$${REDIS_URL-$(DOTENV_REDIS_URL)}" ]; then \
		echo "make serve: $(PROCESSES) processes need REDIS_URL (a shared channel layer): without" \
			"it a reply's tokens never reach a tab connected to another process." \
			"Set it, or PROCESSES=1." >&2; \
		exit 1; \
	fi
	DJANGO_DEBUG=0 $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=0 $(PY) manage.py collectstatic --noinput -v0
	DJANGO_DEBUG=0 $(PY) manage.py bootstrap
	@mkdir -p $(RUN_DIR)
	@echo "Serving on http://$(HOST):$(PORT)/ (PROCESSES=$(PROCESSES))"
	DJANGO_DEBUG=0 HOST=$(HOST) PORT=$(PORT) PROCESSES=$(PROCESSES) RUN_DIR=$(RUN_DIR) \
		DAPHNE_ARGS="$(DAPHNE_ARGS)" $(VENV)/bin/supervisord -n -c deploy/supervisord.conf

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

# Benchmarks, not part of `make test` (nor of CI): docs/benchmarks.md says how to run and read
# them. The streams benchmark with every mechanism switched off in turn on the three stacks, the
# capacity search (1, 2, 4 processes) and the memory soak. PostgreSQL and Redis as named below
# (the database is created when missing).
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/chat_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/5
BENCH_SAMPLES ?= 20
SOAK_MINUTES ?= 5
BENCH_STACK := DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL)
bench: $(VENV)/.dev-installed
	$(PY) bench/ablation.py --samples $(BENCH_SAMPLES) \
		--database-url $(BENCH_DATABASE_URL) --redis-url $(BENCH_REDIS_URL)
	$(BENCH_STACK) $(PY) bench/capacity.py
	$(BENCH_STACK) $(PY) bench/soak.py --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache $(RUN_DIR)
