"""The extractive answerer on an index built in memory (tests/conftest.py MEMORY_CORPUS)."""

from __future__ import annotations

from rag.query.extractive import ExtractiveAnswerer
from rag.query.retriever import Retriever
from rag.text.segment import tokens
from tests.conftest import MemoryIndex


def answerer_and_retriever(
    memory: MemoryIndex, **settings: object
) -> tuple[ExtractiveAnswerer, Retriever]:
    s = memory.settings.model_copy(update=settings)
    answerer = ExtractiveAnswerer(memory.index, s)
    return answerer, Retriever(memory.index, memory.embedding, s, answerer.scorer)


def test_quotes_the_answering_sentence_at_its_offsets(memory: MemoryIndex) -> None:
    answerer, retriever = answerer_and_retriever(memory)
    question = "Which chip did DeepSeek use?"
    draft = answerer.answer(question, retriever.search(question), "en")
    assert not draft.abstained and draft.mode == "extractive"
    [citation] = draft.citations
    assert citation.source == "chips.md" and citation.quote == "The H800 chip was used by DeepSeek."
    text = memory.files["chips.md"]
    assert text[citation.start_char : citation.end_char] == citation.quote
    assert (citation.start_line, citation.end_line, citation.lang) == (1, 1, "en")
    assert draft.text == "The H800 chip was used by DeepSeek. [1]"


def test_a_statement_is_quoted_before_a_heading_that_matches_better(memory: MemoryIndex) -> None:
    answerer, retriever = answerer_and_retriever(memory)
    question = "Who hires Longjing tea pickers every spring?"
    search = retriever.search(question)
    ranked = answerer.scorer.candidates(set(tokens(question, forms="query")), search)
    heading = next(c for c in ranked if c.minor)
    statement = next(c for c in ranked if not c.minor)
    assert heading.sentence.text == "Who Hires Longjing Tea Pickers Every Spring"
    assert heading.score > statement.score  # every word of the question, saying nothing
    draft = answerer.answer(question, search, "en")
    assert draft.citations[0].quote == statement.sentence.text
    assert all(not c.quote.startswith("Who Hires") for c in draft.citations)


def test_the_same_statement_in_another_file_is_cited_as_corroboration(
    memory: MemoryIndex,
) -> None:
    answerer, retriever = answerer_and_retriever(memory)
    question = "Who hires Longjing tea pickers every spring?"
    draft = answerer.answer(question, retriever.search(question), "en")
    quote = "Each spring the West Lake cooperative hires 300 Longjing pickers."
    assert [(c.source, c.quote) for c in draft.citations] == [
        ("tea.md", quote),
        ("coop.md", quote),
    ]
    assert [c.n for c in draft.citations] == [1, 2] and draft.text.endswith("[2]")
    # one citation allowed: the best one alone
    one, retriever = answerer_and_retriever(memory, max_citations=1)
    assert len(one.answer(question, retriever.search(question), "en").citations) == 1


def test_the_same_fact_twice_in_one_file_is_quoted_once(memory: MemoryIndex) -> None:
    """Both harbour sentences score the same for the question (it has neither "daily"
    nor "nightly") and say the same thing: the second adds nothing."""
    answerer, retriever = answerer_and_retriever(memory)
    question = "How often does the harbour master of Hangzhou count the fishing boats?"
    search = retriever.search(question)
    first, second = answerer.scorer.candidates(set(tokens(question, forms="query")), search)[:2]
    assert first.doc_id == second.doc_id == "harbour.md"
    assert abs(first.score - second.score) < answerer.params.margin / 2
    draft = answerer.answer(question, search, "en")
    assert [c.source for c in draft.citations] == ["harbour.md"]


def test_a_quantity_question_quotes_only_sentences_stating_one(memory: MemoryIndex) -> None:
    answerer, retriever = answerer_and_retriever(memory)
    question = "How many pickers work for the Longjing tea cooperative?"
    draft = answerer.answer(question, retriever.search(question), "en")
    assert draft.citations and all("300" in c.quote for c in draft.citations)
    # the harbour passage alone states no quantity: nothing to quote
    question = "How many boats does the harbour master count?"
    empty = answerer.answer(question, retriever.search(question, top_k=1), "en")
    assert empty.citations == [] and empty.text == ""
