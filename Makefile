# Every workflow of the project. The first target that needs .venv creates it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
config ?= config/dev-config.yaml
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k config"`.
PYTEST_ARGS ?=

.PHONY: help install dev dev-multi test test-fast bench \
	backend-manager-start backend-manager-stop backend-manager-status \
	backend-manager-restart backend-manager-gen-nginx-conf \
	logs-tail logs-tail-nginx logs-clean \
	export-openapi-spec export-asyncapi-spec generate-python-clients clean

help:
	@echo "make dev-multi   run nginx :8000 in front of broker, datafeed and core (Ctrl+C stops all)"
	@echo "make dev         run the whole backend in one uvicorn process on :8000"
	@echo "make test        run the test suite"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

dev-multi: $(STAMP)
	$(BIN)/devenv start --foreground $(config)

# Phase 1 (specs and clients) runs first; the clients folder is excluded from reloads
# by absolute path, the only form uvicorn (0.55) excludes at any depth.
dev: $(STAMP)
	$(BIN)/python -m trading_api.codegen
	ENABLED_MODULES=all PYTHONUNBUFFERED=1 $(BIN)/uvicorn trading_api.main:app \
		--host 127.0.0.1 --port 8000 --reload --reload-dir backend/src \
		--reload-exclude $(CURDIR)/backend/src/trading_api/clients

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m 'not slow' $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py

backend-manager-start: $(STAMP)
	$(BIN)/devenv start $(config)

backend-manager-stop: $(STAMP)
	$(BIN)/devenv stop $(config)

backend-manager-status: $(STAMP)
	$(BIN)/devenv status $(config)

backend-manager-restart: $(STAMP)
	$(BIN)/devenv restart $(config)

backend-manager-gen-nginx-conf: $(STAMP)
	$(BIN)/devenv gen nginx $(config) --validate

logs-tail: $(STAMP)
	$(BIN)/devenv logs --config $(config) -f

logs-tail-nginx: $(STAMP)
	$(BIN)/devenv logs --config $(config) --nginx -f

logs-clean: $(STAMP)
	$(BIN)/devenv logs --config $(config) --clean

export-openapi-spec: $(STAMP)
	$(BIN)/python -m trading_api.codegen openapi

export-asyncapi-spec: $(STAMP)
	$(BIN)/python -m trading_api.codegen asyncapi

# Skipped while openapi.json is unchanged since the last generation; FORCE=1 generates anyway.
generate-python-clients: $(STAMP)
	$(BIN)/python -m trading_api.codegen clients $(if $(FORCE),--force)

clean:
	rm -rf $(VENV) .local Procfile .pytest_cache *.egg-info \
		backend/src/trading_api/openapi.json backend/src/trading_api/clients \
		backend/src/trading_api/modules/*/specs
