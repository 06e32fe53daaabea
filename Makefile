# A Sorcha node: `make run` starts one, `make test` proves it, `make lint` keeps it tidy.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Tools that import the settings run without a developer's .env, with development values.
TOOL_ENV := SORCHA_ENV_FILE=/dev/null DEBUG=true

.PHONY: run test lint install install-dev env migrate redis stop-redis clean demo bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Secrets are generated once and kept in .env (gitignored); the rest of .env is the operator's own.
# PEER_SERVICE_URL is not written: unset, it follows HOST and PORT (sorcha_site/settings.py).
.env:
	@umask 077; { \
	  echo "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')"; \
	  echo "SORCHA_SERVICE_TOKEN=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))')"; \
	} > .env
	@echo "Wrote .env with a new SECRET_KEY and SORCHA_SERVICE_TOKEN."

env: .env

migrate: install .env
	$(BIN)/python manage.py migrate --noinput

# The node's Redis answers, or a private redis-server is started for it (data under var/); a configured
# remote Redis that does not answer stops here with one line (scripts/ensure_redis.py).
redis: install .env
	$(BIN)/python scripts/ensure_redis.py

# Stop the private redis-server `make run` started (the one whose data is under var/redis-PORT/).
stop-redis:
	@for pidfile in var/redis-*/redis.pid; do [ -f "$$pidfile" ] && kill "$$(cat "$$pidfile")" && echo "stopped $$pidfile"; done; true

run: install .env redis migrate
	@echo ""
	@echo "Sorcha node on http://$(HOST):$(PORT)/"
	@echo "  admin      http://$(HOST):$(PORT)/admin/   (create a user: $(BIN)/python manage.py createsuperuser)"
	@echo "  API docs   http://$(HOST):$(PORT)/api/docs/"
	@echo "  API token  grep SORCHA_SERVICE_TOKEN .env   (send it as: Authorization: Bearer <token>)"
	@grep -s '^PEER_SERVICE_URL=' .env | sed 's/^/  pushes to  /; s/$$/ (set in .env; delete that line to have it follow HOST and PORT)/' || true
	@echo "The ready process prints a line when the node answers, and another when its startup full sync has succeeded."
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" HOST=$(HOST) PORT=$(PORT) NODE_PORT=$(PORT) $(BIN)/honcho start -f Procfile

# Two nodes gossiping on this machine (needs the Redis on 127.0.0.1:6379), until Ctrl-C.
demo: install
	$(BIN)/python scripts/demo.py

# Benchmarks against the spec's success criteria (not tests): tables on stdout, JSON and PNG in bench/results/.
bench: install-dev
	$(BIN)/pip install --quiet -r requirements-bench.txt
	$(BIN)/python -m bench.bench_full_sync
	$(BIN)/python -m bench.bench_restart
	$(BIN)/python -m bench.bench_memory
	$(BIN)/python -m bench.bench_latency
	$(BIN)/python -m bench.bench_propagation
	$(BIN)/python -m bench.bench_burst
	$(BIN)/python -m bench.bench_gossip
	$(BIN)/python -m bench.bench_network
	$(BIN)/python -m bench.summary

test: install-dev
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/check_sizes.py
	$(TOOL_ENV) $(BIN)/python manage.py check
	$(TOOL_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(TOOL_ENV) $(BIN)/mypy sorcha_site registers peers tasks

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache test-output
