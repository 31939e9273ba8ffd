"""Abstention, the pipeline's step before any answerer, on an index built in memory."""

from __future__ import annotations

import unicodedata

import pytest

from rag.query.abstain import (
    Abstention,
    asks_quantity,
    message,
    messages,
    refusal,
    states_quantity,
)
from rag.query.retriever import Retriever
from rag.query.sentences import SentenceScorer
from tests.conftest import MemoryIndex


def abstention(memory: MemoryIndex, threshold: float = -1.0) -> tuple[Abstention, Retriever]:
    scorer = SentenceScorer(memory.index)
    retriever = Retriever(memory.index, memory.embedding, memory.settings, scorer)
    return Abstention(scorer, threshold), retriever


def test_a_model_name_no_passage_contains_makes_it_abstain(memory: MemoryIndex) -> None:
    judge, retriever = abstention(memory)
    question = "Which chip did DeepSeek use, the H900?"
    decision = judge.decide(question, retriever.search(question))
    assert decision.abstain and decision.warnings == ["unknown_term: h900"]
    known = "Which chip did DeepSeek use, the H800?"
    assert not judge.decide(known, retriever.search(known)).abstain


def test_a_quantity_no_sentence_states_makes_it_abstain(memory: MemoryIndex) -> None:
    judge, retriever = abstention(memory)
    question = "How many boats does the harbour master count?"
    search = retriever.search(question, top_k=1)
    assert search.passages[0].passage.doc_id == "harbour.md"
    decision = judge.decide(question, search)
    assert decision.abstain and decision.warnings == ["no_quantity"]
    assert decision.candidates == []
    # the same passage answers a question that asks for no quantity
    plain = "When does the harbour master count the boats?"
    assert not judge.decide(plain, retriever.search(plain, top_k=1)).abstain


def test_support_below_the_threshold_abstains(memory: MemoryIndex) -> None:
    judge, retriever = abstention(memory)
    question = "Who hires Longjing tea pickers every spring?"
    search = retriever.search(question)
    decision = judge.decide(question, search)
    # support is the best statement's, not the heading's (which scores higher)
    statements = [c.support for c in decision.candidates if not c.minor]
    assert decision.support == max(statements)
    assert any(c.minor and c.support > decision.support for c in decision.candidates)
    above, _ = abstention(memory, threshold=decision.support - 1e-6)
    below, _ = abstention(memory, threshold=decision.support + 1e-6)
    assert not above.decide(question, search).abstain
    refused = below.decide(question, search)
    assert refused.abstain and refused.warnings == []


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "The corpus does not answer this question."),
        ("vi", "Kho tài liệu không trả lời câu hỏi này."),
        ("xx", "The corpus does not answer this question."),  # unknown: English
    ],
)
def test_a_refusal_cites_nothing_in_the_question_language(
    memory: MemoryIndex, lang: str, text: str
) -> None:
    judge, retriever = abstention(memory)
    question = "Which chip did DeepSeek use, the H900?"
    draft = refusal(judge.decide(question, retriever.search(question)), lang)
    assert draft.abstained and draft.citations == [] and draft.text == text
    assert draft.warnings == ["unknown_term: h900"]


XQUAD_LANGUAGES = ["ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]
REQUIRED_LANGUAGES = [*XQUAD_LANGUAGES, "ms", "id", "ja", "ko", "fr", "pt", "it", "nl", "pl"]
REQUIRED_LANGUAGES += ["fa", "he", "ur", "bn", "sw"]


def test_the_abstain_message_speaks_every_language_a_user_may_ask_in() -> None:
    table = messages()["abstain"]
    assert set(REQUIRED_LANGUAGES) <= set(table)
    assert len(set(table.values())) == len(table)  # no language left in another's words
    assert message("abstain", "de") == "Die Dokumente beantworten diese Frage nicht."
    assert message("abstain", "und") == message("abstain", "xx") == table["en"]


def test_malay_and_indonesian_fall_back_to_each_other_before_english(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = {"abstain": {"en": "No.", "ms": "Tidak (ms)."}}
    monkeypatch.setattr("rag.query.abstain.messages", lambda: table)
    assert message("abstain", "id") == "Tidak (ms)."
    table["abstain"] = {"en": "No.", "id": "Tidak (id)."}
    assert message("abstain", "ms") == "Tidak (id)."
    table["abstain"] = {"en": "No."}
    assert message("abstain", "ms") == "No."


def test_a_quantity_question_is_recognised_in_any_normal_form() -> None:
    for question in (
        "Bệnh viện có bao nhiêu giường?",
        "Benh vien co bao nhieu giuong?",
        unicodedata.normalize("NFD", "Bệnh viện có bao nhiêu giường?"),
        "كَمْ عدد الأسرة؟",
        "HOW MANY beds?",
    ):
        assert asks_quantity(question), question
    assert states_quantity("Bệnh viện có sáu trăm giường.")  # six hundred
    assert not states_quantity("Sau đó bệnh viện mở cửa.")  # "then": no quantity
    assert states_quantity("يضم المستشفى مِئَة سرير") and not states_quantity("الحكومية")
    assert states_quantity("１５ beds") and states_quantity("١٥ سريرا")
