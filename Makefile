# Every target sets up .venv itself, so each works from a clean clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: chat test test-all lint bench index eval clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## chat: interactive chat in the terminal over seeds/ (builds the index if needed)
chat: $(STAMP)
	$(BIN)/rag index
	$(BIN)/rag chat

index: $(STAMP)
	$(BIN)/rag index

## test: the whole suite, slow tests included (they index the seeds once per session)
test: $(STAMP)
	$(BIN)/pytest -q

## test-fast: unit tests only
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check rag api tests bench
	$(BIN)/ruff format --check rag api tests bench
	$(BIN)/mypy

eval: $(STAMP)
	$(BIN)/rag index
	$(BIN)/rag eval evals/seeds_dev.jsonl

## bench: warm ask latency (split by stage) and cold/warm index times
bench: $(STAMP)
	$(BIN)/python bench/bench_core.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
