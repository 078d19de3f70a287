# The commands the README names. `make run` and `make test` each install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run build test test-all lint format reports clean

install: $(STAMP)

# One virtual environment with the package (editable), the lab extra and the test tools.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Build the index if it is missing or stale, then serve on http://127.0.0.1:8000
run: install
	$(BIN)/citeqa build
	$(BIN)/citeqa serve

build: install
	$(BIN)/citeqa build

## The default test suite (what CI runs)
test: install
	$(BIN)/python -m pytest

## Everything, the slow suites included
test-all: install
	$(BIN)/python -m pytest -m "slow or not slow"

lint: install
	$(BIN)/ruff check service tests
	$(BIN)/ruff format --check service tests
	$(BIN)/mypy

format: install
	$(BIN)/ruff format service tests
	$(BIN)/ruff check --fix service tests

## Rewrite the reports in eval/reports/ (under a minute): the evaluation, measured anew
## (eval.md and its charts in eval/), and the markdown and charts of the bench, load and
## scale reports from their saved JSON, without measuring. The bench is not measured anew:
## the seed corpus alone takes 2 minutes, but the committed report also holds --scale rows
## that take hours the first time. To measure those reports again:
##   citeqa bench --requests 800 --clients 1 8 32 [--scale 10000 100000 1000000]
##   citeqa load (2.5 minutes); citeqa load --soak (30 minutes)
##   python -m service.lab.scale 100000 1000000 --serve --questions eval/questions.jsonl
##       --out eval/reports/scale   (hours)
reports: build
	$(BIN)/citeqa eval --report --quiet
	$(BIN)/python -m service.lab.render eval/reports

clean:
	rm -rf $(VENV) index/CURRENT index/gen-* index/.building-* .pytest_cache .mypy_cache .ruff_cache
