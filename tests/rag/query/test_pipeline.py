"""The pipeline (condense, retrieve, abstain?, answer, verify) over an index built in
memory; its LLM is the fake OpenAI-compatible server of tests/fake_llm.py."""

from __future__ import annotations

from typing import Any

import pytest

from rag.errors import QuestionError
from rag.query.pipeline import Pipeline
from tests.conftest import MemoryIndex
from tests.fake_llm import FakeLLM, Reply, passage_number

QUESTION = "Which chip did DeepSeek use?"


def pipeline(memory: MemoryIndex, fake: FakeLLM | None = None) -> Pipeline:
    memory.write_files()
    settings = memory.settings
    if fake is not None:
        settings = settings.model_copy(
            update={"llm_base_url": fake.base_url, "llm_model": "fake", "llm_timeout": 2.0}
        )
    return Pipeline.over(memory.index, memory.embedding, settings)


def test_an_answer_cites_exact_spans_of_the_files(memory: MemoryIndex) -> None:
    turn = pipeline(memory).answer(f"  {QUESTION} ")
    answer = turn.answer
    assert turn.standalone == QUESTION and turn.search.passages
    assert answer.mode == "extractive" and not answer.abstained and answer.warnings == []
    assert answer.answer == "The H800 chip was used by DeepSeek. [1]"
    folder = memory.settings.corpus_dir
    for c in answer.citations:
        text = (folder / c.source).read_text(encoding="utf-8")
        assert text[c.start_char : c.end_char] == c.quote
    assert set(answer.timings_ms) == {"embed", "retrieve", "answer", "total"}
    assert answer.timings_ms["total"] >= answer.timings_ms["answer"]
    assert answer.conversation_id is None


def test_a_citation_its_file_no_longer_holds_is_dropped_and_it_abstains(
    memory: MemoryIndex,
) -> None:
    chips = pipeline(memory)
    (memory.settings.corpus_dir / "chips.md").write_text(
        "Rewritten. " + memory.files["chips.md"], encoding="utf-8"
    )
    answer = chips.answer(QUESTION).answer
    assert answer.abstained and answer.citations == []
    assert answer.answer == "The corpus does not answer this question."
    assert answer.warnings == ["citation_mismatch: chips.md changed since it was indexed"]


def test_the_answer_is_in_the_language_asked_or_detected(memory: MemoryIndex) -> None:
    p = pipeline(memory)
    asked = p.answer("Which chip did DeepSeek use, the H900?", lang="vi").answer
    assert asked.abstained and asked.answer == "Kho tài liệu không trả lời câu hỏi này."
    detected = p.answer("DeepSeek đã dùng chip H900 nào vậy?").answer
    assert detected.abstained and detected.answer == "Kho tài liệu không trả lời câu hỏi này."


def test_a_follow_up_is_condensed_against_the_history(memory: MemoryIndex) -> None:
    turn = pipeline(memory).answer(
        "And which one?", history=["Which chip, H800, did DeepSeek use?"]
    )
    assert turn.standalone == "H800 DeepSeek. And which one?"
    assert turn.answer.citations[0].source == "chips.md"


def test_bad_questions_are_refused(memory: MemoryIndex) -> None:
    p = pipeline(memory)
    with pytest.raises(QuestionError, match="empty"):
        p.answer("   ")
    with pytest.raises(QuestionError, match="top_k must be > 0, got 0"):
        p.answer(QUESTION, top_k=0)


def test_the_listener_gets_the_citations_then_the_text(memory: MemoryIndex) -> None:
    events: list[tuple[str, Any]] = []
    answer = pipeline(memory).answer(QUESTION, listener=lambda k, p: events.append((k, p))).answer
    assert events[0] == ("citations", answer.citations)
    assert "".join(p for k, p in events[1:] if k == "delta") == answer.answer


def test_abstention_comes_before_the_llm(memory: MemoryIndex, fake_llm: FakeLLM) -> None:
    fake_llm.script = lambda r: Reply(f"It was the H800 [{passage_number(r, 'H800')}].")
    answer = pipeline(memory, fake_llm).answer("Which chip did DeepSeek use, the H900?").answer
    assert answer.abstained and answer.warnings == ["unknown_term: h900"]
    assert fake_llm.requests == []  # the model was never asked
    used = pipeline(memory, fake_llm).answer(QUESTION).answer
    assert used.mode == "llm" and len(fake_llm.requests) == 1
    n = passage_number(fake_llm.requests[0], "H800")  # the number the model saw
    assert used.answer == f"It was the H800 [{n}]." and used.citations[0].n == n
    assert used.citations[0].quote == "The H800 chip was used by DeepSeek."


@pytest.mark.parametrize(
    ("reply", "warning"),
    [
        (Reply("DeepSeek used a chip, trust me."), "llm_no_valid_citation"),
        (Reply("DeepSeek used a chip [9]."), "llm_no_valid_citation"),
        (Reply(status=500), "llm_unavailable"),
    ],
)
def test_an_unusable_llm_answer_falls_back_to_the_extractive_one(
    memory: MemoryIndex, fake_llm: FakeLLM, reply: Reply, warning: str
) -> None:
    fake_llm.script = lambda r: reply
    answer = pipeline(memory, fake_llm).answer(QUESTION).answer
    extractive = pipeline(memory).answer(QUESTION).answer
    assert answer.mode == "extractive-fallback" and answer.warnings == [warning]
    assert answer.answer == extractive.answer and answer.citations == extractive.citations
