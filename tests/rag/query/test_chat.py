from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import IndexMissingError, QuestionError
from rag.index.build import build
from rag.index.corpus import read_source_text
from rag.query.chat import ChatService
from rag.query.conversation import LOCAL_OWNER, ConversationStore
from rag.query.pipeline import validate_question
from rag.text.segment import tokens
from tests.conftest import fill

QUESTION = "Which chip did DeepSeek use, the H800?"


def test_bad_questions_get_clear_errors() -> None:
    with pytest.raises(QuestionError, match="empty"):
        validate_question("  \n ", 2000)
    with pytest.raises(QuestionError, match="2001 characters long, over the limit of 2000"):
        validate_question("x" * 2001, 2000)
    # bytes that were not UTF-8 on a command line arrive as lone surrogates
    with pytest.raises(QuestionError, match=r"not valid text: U\+DCFF at character 0"):
        validate_question(b"\xff\xfe bad bytes".decode("utf-8", "surrogateescape"), 2000)
    assert validate_question("  ok? ", 2000) == "ok?"


def test_service_needs_an_index(settings: Settings) -> None:
    with pytest.raises(IndexMissingError):
        ChatService(settings)


def test_answer_quotes_verified_sentences_and_keeps_conversation(settings: Settings) -> None:
    build(settings)
    service = ChatService(settings.model_copy(update={"abstain_threshold": -1.0}))
    answer = service.ask("Which chip did DeepSeek use, the H800?")
    assert not answer.abstained and answer.citations
    assert 1 <= len(answer.citations) <= settings.max_citations
    for c in answer.citations:
        assert read_source_text(settings.corpus_dir, c.source)[c.start_char : c.end_char] == c.quote
        assert f"[{c.n}]" in answer.answer
    assert set(answer.timings_ms) == {"embed", "retrieve", "answer", "total"}
    follow = service.ask("And the export controls?", answer.conversation_id)
    assert follow.conversation_id == answer.conversation_id
    assert service.conversations.standalone_questions(answer.conversation_id, LOCAL_OWNER)[1] == (
        "DeepSeek H800. And the export controls?"
    )
    with pytest.raises(QuestionError, match="top_k must be > 0"):
        service.ask("x", top_k=0)


def test_unknown_model_name_makes_it_abstain(settings: Settings) -> None:
    build(settings)
    service = ChatService(settings.model_copy(update={"abstain_threshold": -1.0}))
    answer = service.ask("Which chip did DeepSeek use for the H900?")
    assert answer.abstained and answer.citations == []
    assert answer.warnings == ["unknown_term: h900"]
    assert answer.answer == "The corpus does not answer this question."


def test_service_switches_to_a_new_version_without_restart(settings: Settings) -> None:
    build(settings)
    service = ChatService(settings.model_copy(update={"abstain_threshold": -1.0}))
    old = service.pipeline.index.version
    (settings.corpus_dir / "tea.md").write_text(
        "Longjing tea grows near West Lake.", encoding="utf-8"
    )
    build(settings)
    answer = service.ask("Where does Longjing tea grow?")
    assert service.pipeline.index.version != old
    assert answer.citations[0].source == "tea.md"


def test_quantity_questions_and_sentences_in_each_language() -> None:
    from rag.query.abstain import asks_quantity, states_quantity

    asked = [
        "How many employees does DeepSeek have?",
        "Berapakah kos pembangunan DeepSeek?",
        "Chi phí là bao nhiêu?",
        "كم بلغت تكلفة الحوسبة؟",
        "DeepSeek V3 的最终训练花费了多少钱？",
    ]
    assert all(asks_quantity(q) for q in asked)
    assert not any(asks_quantity(q) for q in ["Who founded DeepSeek?", "Siapakah pengasas?"])
    assert not asks_quantity("كمبيوتر جديد")  # كم only as a word of its own
    stated = ["cost 6 ملايين دولار", "٣٥٪", "four teams", "USD 600,000", "dua kali", "一百"]
    assert all(states_quantity(t) for t in stated)
    assert not states_quantity("The founder met the president in Beijing.")
    # "one" doubles as "a" in every language: not a quantity
    assert not states_quantity("DeepSeek không chỉ xây dựng một mô hình.")
    assert not states_quantity("It is one model; 这是一个模型")


def test_quantity_question_quotes_a_quantity_or_abstains(tmp_path) -> None:
    from tests.conftest import make_settings, write_corpus

    text = (
        "Pickers of Longjing tea work near West Lake every spring.\n"
        "The gardens of West Lake hire 300 pickers of Longjing tea.\n"
    )
    corpus = write_corpus(tmp_path, {"tea.md": text})
    s = make_settings(tmp_path, corpus, abstain_threshold=-1.0)
    build(s)
    service = ChatService(s)
    answer = service.ask("How many pickers of Longjing tea work near West Lake?")
    assert not answer.abstained and "300" in answer.citations[0].quote
    (corpus / "tea.md").write_text(
        "Pickers of Longjing tea work near West Lake every spring.\n", encoding="utf-8"
    )
    build(s)
    answer = service.ask("How many pickers of Longjing tea work near West Lake?")
    assert answer.abstained and "no_quantity" in answer.warnings and not answer.citations
    assert not service.ask("Who works near West Lake every spring?").abstained
    service.close()


def test_a_heading_is_quoted_only_when_nothing_else_is(tmp_path) -> None:
    """The heading shares every word of the question and says nothing; the statement
    under it answers. The heading scores higher, the statement is quoted."""
    from tests.conftest import make_settings, write_corpus

    corpus = write_corpus(
        tmp_path,
        {
            "tea.md": "Who Hires Longjing Tea Pickers Every Spring\n\n"
            "Each spring the West Lake cooperative hires the Longjing pickers.\n"
        },
    )
    s = make_settings(tmp_path, corpus, abstain_threshold=-1.0)
    build(s)
    service = ChatService(s)
    question = "Who hires Longjing tea pickers every spring?"
    search = service.pipeline.search(question)
    ranked = service.pipeline.extractive.scorer.candidates(
        set(tokens(question, forms="query")), search
    )
    heading = next(c for c in ranked if c.minor)
    statement = next(c for c in ranked if not c.minor)
    assert heading.score > statement.score
    answer = service.ask(question)
    assert [c.quote for c in answer.citations] == [
        "Each spring the West Lake cooperative hires the Longjing pickers."
    ]
    service.close()


def test_a_turn_on_a_full_data_disk_is_answered_with_a_warning(
    settings: Settings, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build(settings)
    service = ChatService(
        settings.model_copy(update={"data_dir": small_disk, "abstain_threshold": -1.0})
    )
    try:
        saved = service.ask(QUESTION)
        assert "conversation_not_saved" not in saved.warnings
        fill(small_disk)
        answer = service.ask(QUESTION)
        follow = service.ask("And the export controls?", saved.conversation_id)
    finally:
        service.close()
    for lost in (answer, follow):
        assert lost.citations and not lost.abstained  # the computed answer comes back
        assert "conversation_not_saved" in lost.warnings
    assert "not saved" in caplog.text


def test_a_turn_whose_store_fails_is_answered_with_a_warning(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(settings)
    service = ChatService(settings.model_copy(update={"abstain_threshold": -1.0}))

    def full(self: ConversationStore, *args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ConversationStore, "add", full)
    answer = service.ask(QUESTION)
    assert answer.citations and answer.warnings == ["conversation_not_saved"]
    service.close()
