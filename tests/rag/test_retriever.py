from __future__ import annotations

import pytest

from rag.config import Settings
from rag.embedding import load_embedding
from rag.indexer import build, open_index
from rag.retriever import Retriever, rrf, weighted


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = rrf([["a", "b"], ["b", "c"]], k=1)
    assert fused == pytest.approx({"a": 1 / 2, "b": 1 / 3 + 1 / 2, "c": 1 / 3})


def test_weighted_normalises_each_ranking() -> None:
    fused = weighted({"a": 0.9, "b": 0.8}, {"b": 10.0, "c": 5.0}, w=0.5)
    assert fused == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.0})


@pytest.mark.parametrize("fusion", ["rrf", "weighted"])
def test_search_ranks_the_passage_sharing_the_question_words_first(
    settings: Settings, fusion: str
) -> None:
    build(settings)
    s = settings.model_copy(update={"fusion": fusion})
    retriever = Retriever(open_index(s), load_embedding(s.embedding), s)
    result = retriever.search("harbour of Hangzhou boats", top_k=3)
    assert result.passages[0].passage.doc_id == "page.html"
    assert len(result.passages) == 3
    assert result.passages[0].dense is not None and result.passages[0].lexical is not None
    result = retriever.search("H800 chip export controls", top_k=2)
    assert result.passages[0].passage.doc_id == "notes.md"


def test_a_repeated_question_is_not_embedded_again(settings: Settings) -> None:
    build(settings)
    embedding = load_embedding(settings.embedding)
    retriever = Retriever(open_index(settings), embedding, settings)
    first = retriever.search("harbour of Hangzhou boats")
    again = retriever.search("harbour of Hangzhou boats")
    other = retriever.search("H800 chip export controls")
    assert embedding.calls == 2  # type: ignore[attr-defined]
    assert [p.passage.passage_id for p in first.passages] == [
        p.passage.passage_id for p in again.passages
    ]
    assert other.passages[0].passage.doc_id == "notes.md"


def test_bm25_weight_follows_how_much_of_the_question_the_corpus_knows() -> None:
    from rag.retriever import coverage

    vocabulary = {"deepseek", "v3", "biaya"}
    assert coverage(["deepseek", "v3", "cost", "train"], vocabulary) == 0.5
    assert coverage([], vocabulary) == 0.0
    dense, lexical = {"a": 0.9, "b": 0.5}, {"b": 9.0, "a": 1.0}
    assert weighted(dense, lexical, 0.7, coverage=1.0) == pytest.approx({"a": 0.7, "b": 0.3})
    # a question the corpus barely knows: BM25's (noisy) ranking hardly counts
    assert weighted(dense, lexical, 0.7, coverage=0.0) == pytest.approx({"a": 0.7, "b": 0.0})
