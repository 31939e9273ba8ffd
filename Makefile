# Every target sets up .venv itself, so each works from a clean clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve env-example chat test test-fast test-browser lint bench bench-http bench-load bench-scale bench-xquad bench-followups fit fit-condense fit-answer-types index eval eval-guard screenshots first-answer clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "make: creating $(VENV) with $(PY)"; $(PY) -m venv $(VENV); }
	@echo "make: installing the project and its dependencies into $(VENV) (pip install -e '.[dev]'; a few minutes the first time)"
	@$(BIN)/pip install --quiet --upgrade pip
	@$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)
	@echo "make: $(VENV) is ready"

## serve: the HTTP service on 127.0.0.1:8000 (builds or updates the index of seeds/ first)
serve: $(STAMP)
	@echo "make: starting rag serve (it indexes seeds/ first when needed, then prints the URL to open)"
	@$(BIN)/rag serve

## env-example: write .env.example from rag/config.py (a test checks it is in sync)
env-example: $(STAMP)
	$(BIN)/python -m rag.config > .env.example

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

## test-browser: the chat page in Chromium (apt-get install chromium; skipped without it)
test-browser: $(STAMP)
	$(BIN)/pytest -q -m browser

lint: $(STAMP)
	$(BIN)/ruff check rag api tests bench docs
	$(BIN)/ruff format --check rag api tests bench docs
	$(BIN)/mypy

eval: $(STAMP)
	$(BIN)/rag index
	$(BIN)/rag eval evals/seeds_dev.jsonl --report seeds_dev --compare naive

## eval-guard: the dev set against the committed report; exits 5 when a metric fell
## by more than 0.03 (one question of 42 is 0.024, so one flipped question passes)
eval-guard: $(STAMP)
	$(BIN)/rag index
	$(BIN)/rag eval evals/seeds_dev.jsonl --baseline evals/reports/seeds_dev.json --max-drop 0.03

## bench: warm ask latency (split by stage), cold/warm index times, then HTTP load
bench: $(STAMP)
	$(BIN)/python bench/bench_core.py
	$(BIN)/python bench/bench_http.py

## bench-xquad: XQuAD paragraph retrieval for six language pairs (not in CI; ~15 min cold)
bench-xquad: $(STAMP)
	$(BIN)/python bench/bench_xquad.py

## fit: fit the sentence scorer and abstention on XQuAD -> rag/query/answer_params.json and
## docs/fit.md (~30 min cold: indexes the four XQuAD corpora and the small ones; minutes after)
fit: $(STAMP)
	$(BIN)/python bench/fit_answer.py

## fit-condense: fit the follow-up relatedness test on XQuAD -> rag/query/condense.json (~5 min)
fit-condense: $(STAMP)
	$(BIN)/python bench/fit_condense.py

## fit-answer-types: fit the answer-type classifier on XQuAD -> rag/query/answer_types.json (~4 min)
fit-answer-types: $(STAMP)
	$(BIN)/python bench/fit_answer_types.py

## bench-followups: the follow-up conversations of evals/followups, condensed before and after
bench-followups: $(STAMP)
	$(BIN)/python bench/bench_followups.py

## bench-load: 16 clients for 60 s, with a re-index during one run (issue 7's load test)
bench-load: $(STAMP)
	$(BIN)/python bench/bench_http.py --clients 16 --seconds 60 --reindex

## bench-scale: retrieval latency and memory at 10k/100k/1M synthetic passages (not in CI)
bench-scale: $(STAMP)
	$(BIN)/python bench/bench_scale.py

## bench-http: 8 concurrent clients for 30 s against /v1/chat on loopback
bench-http: $(STAMP)
	$(BIN)/python bench/bench_http.py

## screenshots: docs/web-*.png of the chat page (indexes seeds/ if needed; needs chromium)
screenshots: $(STAMP)
	$(BIN)/python docs/make_screenshots.py

## first-answer: time from a clean clone of HEAD to the first answer in the browser
first-answer: $(STAMP)
	$(BIN)/python bench/first_answer.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
