"""What a question costs: CPU seconds of one answer for long questions and long
histories, with the token limits and the history window off (as before they existed)
and on (the defaults).

    .venv/bin/python bench/bench_tokens.py

Rows: a 2,000-character CJK question and a 2,000-character question of combining
marks (both within RAG_MAX_QUESTION_CHARS, about 2,000 tokens each); a 256-token
question (the default limit); a normal question; and a follow-up after a 9 KB history
of earlier user messages (the OpenAI route's ``messages``), from 4,500 one-letter
messages to 135 longer ones. Columns: limits off (as before they existed), only the
history window (RAG_HISTORY_TURNS), all defaults. CPU is ``time.process_time()`` of
the whole process (the embedding engine's threads included), one uncached run each
after a warm-up; extractive mode, the seeds index with the bundled model.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rag.config import Settings
from rag.errors import QuestionError
from rag.index.build import build
from rag.index.embedding import query_tokens
from rag.query.chat import ChatService

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench-tokens"

CJK = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(2000))
COMBINING = "".join("ae\u0301\u0323\u0308"[i % 5] for i in range(2000))
NORMAL = "How much did the final training run of DeepSeek V3 cost?"
WARM_UP = "Who founded DeepSeek?"
TINY_HISTORY = ["a"] * 4500  # 9 KB with one separator each
SHORT_HISTORY = ["and then?"] * 900  # 9 KB with separators
LONG_HISTORY = ["What did the final training run of DeepSeek V3 cost, and who paid?"] * 135


def cpu(service: ChatService, question: str, history: list[str] | None = None) -> str:
    started = time.process_time()
    try:
        service.respond(question, history=history)
        outcome = "answered"
    except QuestionError:
        outcome = "422"
    return f"{time.process_time() - started:.3f} s ({outcome})"


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    base = Settings(
        corpus_dir=ROOT / "seeds",
        index_dir=WORK / "index",
        cache_dir=ROOT / "var" / "cache",
        data_dir=WORK,
    )
    build(base)
    before = ChatService(
        base.model_copy(
            update={
                "max_question_tokens": 10**9,
                "max_history_tokens": 10**9,
                "history_turns": 10**9,
            }
        )
    )
    window = ChatService(
        base.model_copy(update={"max_question_tokens": 10**9, "max_history_tokens": 10**9})
    )
    after = ChatService(base)
    for service in (before, window, after):
        service.ask(WARM_UP)
    at_limit = ("Which chip did DeepSeek use? " * 60)[:2000]
    while query_tokens(after.embedding, at_limit) > base.max_question_tokens:
        at_limit = at_limit[:-10]
    rows = [
        ("2,000 CJK characters", CJK, None),
        ("2,000 characters with combining marks", COMBINING, None),
        (f"English at the token limit ({len(at_limit)} characters)", at_limit, None),
        ("a normal question", NORMAL, None),
        ("follow-up after 4,500 one-letter messages (9 KB)", "And the cost?", TINY_HISTORY),
        ("follow-up after 900 short messages (9 KB)", "And the cost?", SHORT_HISTORY),
        ("follow-up after 135 longer messages (9 KB)", "And the cost?", LONG_HISTORY),
    ]
    print(
        "| question | tokens | CPU, limits off | CPU, history window only "
        "| CPU, limits on (defaults) |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, question, history in rows:
        tokens = query_tokens(after.embedding, question)
        # each service answers each question once, uncached: a fresh question vector
        cells = [cpu(s, question, history) for s in (before, window, after)]
        print(f"| {name} | {tokens} | " + " | ".join(cells) + " |", flush=True)
        for s in (before, window, after):
            s.pipeline.retriever.forget_queries()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
