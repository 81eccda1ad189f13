# UrbanLake — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test lint format bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install UrbanLake with its dev tools

demo: $(STAMP) ## generate the sample city, ingest, publish, serve the API (DEMO_ARGS=--no-serve: exit)
	$(BIN)/urbanlake --project . demo $(DEMO_ARGS)

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check platform tests bench
	$(BIN)/ruff format --check platform tests bench
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix platform tests bench
	$(BIN)/ruff format platform tests bench

test: lint ## lint, then every test
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP) ## benchmarks against raw pyarrow/protobuf floors, dlt and Datasette (installs the bench extra)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/quality.py
	@if [ -f bench/transport.py ]; then $(BIN)/python bench/transport.py; fi
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk) \
		|| echo "wrk is missing and could not be installed: bench/api.py will say what it skips"
	$(BIN)/python bench/api.py

clean: ## remove the demo lake and caches (keeps .venv)
	rm -rf lake .urbanlake demo-data .pytest_cache .mypy_cache .ruff_cache
