from __future__ import annotations

from pathlib import Path

from rag.index.build import in_memory
from rag.query.sentences import SentenceScorer
from tests.conftest import documents
from tests.fakes import HashEmbedding


def test_minor_sentences_are_decided_by_structure_not_length() -> None:
    text = (
        "# Huashan Hospital Beds\n\n"
        "医院有六百张床。\n\n"
        "How many beds does it have?\n\n"
        "Beds: 600\n\n"
        "| Ward | Beds |\n|---|---|\n| North | 200 |\n"
    )
    index = in_memory(documents({"a.md": text}, Path("corpus")), HashEmbedding())
    scorer = SentenceScorer(index)
    query = scorer.query(["beds"], index.sentence_vectors[0], None)
    (passage,) = index.passages.values()
    minor = {text[s.start : s.end]: s.minor for s in scorer.score(query, passage)}
    assert minor == {
        "Huashan Hospital Beds": True,  # a heading
        "医院有六百张床。": False,  # nine characters: a statement
        "How many beds does it have?": True,  # a question
        "Beds: 600": False,
        "| Ward | Beds |": True,  # a table's header
        "| North | 200 |": False,
    }
