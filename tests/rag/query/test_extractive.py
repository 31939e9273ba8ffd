"""The extractive answerer on an index built in memory (tests/conftest.py MEMORY_CORPUS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.index.build import in_memory
from rag.query.answer_types import TYPES, AnswerTypes
from rag.query.extractive import ExtractiveAnswerer
from rag.query.retriever import Retriever
from rag.text.segment import tokens
from tests.conftest import MemoryIndex, documents, make_settings
from tests.fakes import DIM, HashEmbedding


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


def always(kind: str, p: float = 0.9) -> AnswerTypes:
    """A classifier that gives every question type ``kind`` with probability ``p`` (the
    rest spread over the other types): the fitted one belongs to the real model."""
    rest = (1 - p) / (len(TYPES) - 1)
    bias = np.log(np.array([p if t == kind else rest for t in TYPES], dtype=np.float32))
    return AnswerTypes(TYPES, np.zeros((len(TYPES), DIM), np.float32), bias, "hash-bag-512")


PLACES = {
    "ridgeway.md": "Ridgeway Hospital\n\n"
    "Ridgeway Hospital in Carlow opened in 1962 and has beds.\n"
    "The hospital has 640 beds.\n",
    "lakeside.md": "Lakeside Clinic\n\nLakeside Clinic opened in 2004.\nThe clinic has 45 beds.\n",
}
"""Two places: in each file, a sentence naming the place and a year, then one stating
a count that names the place only as "the hospital" / "the clinic"."""


def places(tmp_path: Path, files: dict[str, str] = PLACES) -> tuple[ExtractiveAnswerer, Retriever]:
    embedding = HashEmbedding()
    settings = make_settings(tmp_path, tmp_path / "corpus", abstain_threshold=-1.0)
    index = in_memory(documents(files, tmp_path / "corpus"), embedding)
    answerer = ExtractiveAnswerer(index, settings)
    return answerer, Retriever(index, embedding, settings, answerer.scorer)


def first_quote(answerer: ExtractiveAnswerer, retriever: Retriever, question: str) -> str:
    draft = answerer.answer(question, retriever.search(question), "en")
    return draft.citations[0].quote


def test_a_quantity_question_prefers_a_count_to_a_year(tmp_path: Path) -> None:
    """Two sentences that score the same (the year's first, in file order): a quantity
    question quotes the count first, a time question the year."""
    files = {"beds.md": "Hospital beds since 1962. Hospital beds total 640.\n"}
    answerer, retriever = places(tmp_path, files)
    question = "How many hospital beds?"
    assert answerer.types is None  # no classifier for the fake embedding's vectors
    assert first_quote(answerer, retriever, question) == "Hospital beds since 1962."
    answerer.types = always("quantity")
    assert first_quote(answerer, retriever, question) == "Hospital beds total 640."
    answerer.types = always("time")
    assert first_quote(answerer, retriever, question) == "Hospital beds since 1962."


def test_the_type_is_a_preference_that_never_empties_an_answer(memory: MemoryIndex) -> None:
    """The harbour passage states no quantity: its best sentence is still quoted
    (whether to answer at all is abstention's call, rag/query/abstain.py)."""
    answerer, retriever = answerer_and_retriever(memory)
    answerer.types = always("quantity")
    question = "How many boats does the harbour master count?"
    draft = answerer.answer(question, retriever.search(question, top_k=1), "en")
    assert [c.source for c in draft.citations] == ["harbour.md"]
    question = "How many pickers work for the Longjing tea cooperative?"
    draft = answerer.answer(question, retriever.search(question), "en")
    assert draft.citations and all("300" in c.quote for c in draft.citations)


def test_a_sentence_that_refers_back_is_read_with_its_subject(tmp_path: Path) -> None:
    """ "The clinic has 45 beds" does not name Lakeside; its title and the sentence
    before it do: asked about Lakeside's beds, it outranks the hospital's (which says
    "beds" as often), and the quote is the sentence itself."""
    answerer, retriever = places(tmp_path)
    question = "Lakeside beds?"
    search = retriever.search(question)
    ranked = answerer.scorer.candidates(set(search.query_tokens), search)
    score = {c.sentence.content: c.score for c in ranked}
    preferred = {c.sentence.content: c.score for c in answerer.prefer(ranked, search)}
    clinic, hospital = "The clinic has 45 beds.", "The hospital has 640 beds."
    assert score[clinic] == pytest.approx(score[hospital], abs=0.02)
    assert preferred[clinic] > preferred[hospital] + 0.02
    quote = first_quote(answerer, retriever, question)
    assert quote == clinic


def test_alike_sentences_with_other_numbers_are_two_facts(tmp_path: Path) -> None:
    """Three files say nearly the same words (their embeddings are over the
    corroboration threshold); two state 45 beds and 310 staff, one 640 and 2,100:
    those two corroborate each other, the third is another fact, never cited as the
    same thing."""
    common = "city clinic near the old boating lake in Carlow has {} beds and employs {} staff"
    files = {
        "a.md": f"The {common.format(45, 310)} on its wards.\n",
        "b.md": f"The {common.format(640, '2,100')} on its wards.\n",
        "c.md": f"The {common.format(45, 310)} on its wards in total.\n",
    }
    answerer, retriever = places(tmp_path, files)
    question = "How many beds does the city clinic near the old boating lake have?"
    search = retriever.search(question)
    ranked = answerer.scorer.candidates(set(search.query_tokens), search)
    row = {c.doc_id: c.sentence.row for c in ranked}
    vectors = answerer.index.sentence_vectors
    assert float(vectors[row["a.md"]] @ vectors[row["b.md"]]) >= answerer.params.corroboration
    same = answerer.says_the_same(ranked)
    at = {c.doc_id: i for i, c in enumerate(ranked)}
    assert same(at["a.md"], at["c.md"]) and not same(at["a.md"], at["b.md"])
    # asked with one of the numbers, the sentence stating it comes first, and only the
    # sentences stating the same numbers are cited beside it
    for staff, expected in (("310", {"a.md", "c.md"}), ("2,100", {"b.md"})):
        asked = f"Does the city clinic near the old boating lake with {staff} staff have beds?"
        cited = {c.source for c in answerer.answer(asked, retriever.search(asked), "en").citations}
        assert cited == expected, staff
