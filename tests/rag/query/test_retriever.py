"""Retrieval over indexes built in memory (rag/index/build.py ``in_memory``): neither
a folder nor Chroma; tests/rag/index/test_reader.py checks they equal built ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import Settings
from rag.index import corpus
from rag.index.build import in_memory
from rag.index.reader import LoadedIndex
from rag.query.retriever import Retriever, rrf, weighted
from tests.conftest import documents, make_settings
from tests.fakes import HashEmbedding


def memory_index(corpus_dir: Path) -> tuple[LoadedIndex, HashEmbedding]:
    """The files of ``corpus_dir`` (read, languages detected) indexed in memory."""
    embedding = HashEmbedding()
    return in_memory(corpus.load(corpus_dir).documents, embedding), embedding


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
    # the fusion alone (reranking by best sentence is tested below)
    s = settings.model_copy(update={"fusion": fusion, "rerank_weight": 0.0})
    retriever = Retriever(*memory_index(settings.corpus_dir), s)
    result = retriever.search("harbour of Hangzhou boats", top_k=3)
    assert result.passages[0].passage.doc_id == "page.html"
    assert len(result.passages) == 3
    assert result.passages[0].dense is not None and result.passages[0].lexical is not None
    result = retriever.search("H800 chip export controls", top_k=2)
    assert result.passages[0].passage.doc_id == "notes.md"


def test_a_repeated_question_is_not_embedded_again(settings: Settings) -> None:
    index, embedding = memory_index(settings.corpus_dir)
    retriever = Retriever(index, embedding, settings)
    first = retriever.search("harbour of Hangzhou boats")
    again = retriever.search("harbour of Hangzhou boats")
    other = retriever.search("H800 chip export controls")
    assert embedding.calls == 2
    assert [p.passage.passage_id for p in first.passages] == [
        p.passage.passage_id for p in again.passages
    ]
    assert other.passages[0].passage.doc_id == "notes.md"


def test_bm25_weight_follows_how_much_of_the_question_the_corpus_knows() -> None:
    from rag.query.retriever import coverage

    vocabulary = {"deepseek", "v3", "biaya"}
    assert coverage(["deepseek", "v3", "cost", "train"], vocabulary) == 0.5
    assert coverage([], vocabulary) == 0.0
    dense, lexical = {"a": 0.9, "b": 0.5}, {"b": 9.0, "a": 1.0}
    assert weighted(dense, lexical, 0.7, coverage=1.0) == pytest.approx({"a": 0.7, "b": 0.3})
    # a question the corpus barely knows: BM25's (noisy) ranking hardly counts
    assert weighted(dense, lexical, 0.7, coverage=0.0) == pytest.approx({"a": 0.7, "b": 0.0})


def test_passages_are_reranked_by_their_best_sentence(tmp_path: Path) -> None:
    # "broad": about tea pickers throughout, never saying who hires them; "exact":
    # mostly about a harbour, with one sentence that answers
    files = {
        "broad.md": "Tea pickers come every spring. Tea is what the gardens grow, and "
        "tea pickers pick it. Pickers come in spring, every year.\n",
        "exact.md": "Ferries cross the harbour at dawn. The harbour master counts boats "
        "daily. The cooperative hires tea pickers every spring.\n",
    }
    question = "Which cooperative hires tea pickers every spring?"
    s = make_settings(tmp_path, tmp_path / "corpus", rerank_weight=0.0)
    embedding = HashEmbedding()
    index = in_memory(documents(files, tmp_path / "corpus"), embedding)
    fused_only = Retriever(index, embedding, s).search(question, top_k=2)
    reranked = Retriever(index, embedding, s.model_copy(update={"rerank_weight": 5.0})).search(
        question, top_k=2
    )
    # fused, the tea passage leads; its best sentence is weaker than the one that
    # answers, so reranked, the answering passage leads
    assert [p.passage.doc_id for p in fused_only.passages] == ["broad.md", "exact.md"]
    assert [p.passage.doc_id for p in reranked.passages] == ["exact.md", "broad.md"]
    assert reranked.passages[0].score > reranked.passages[1].score
    # only the first rerank_depth passages are reranked, however many are asked for
    shallow = s.model_copy(update={"rerank_weight": 5.0, "rerank_depth": 1})
    kept = Retriever(index, embedding, shallow).search(question, top_k=2)
    assert [p.passage.doc_id for p in kept.passages] == ["broad.md", "exact.md"]


def test_dense_scores_are_centred_per_language(settings: Settings) -> None:
    import numpy as np

    index, embedding = memory_index(settings.corpus_dir)
    langs = {p.lang for p in index.passages.values()}
    assert set(index.centroids) == langs and len(langs) > 1
    rows_of: dict[str, list[int]] = {}
    for (doc, _, _), row in index.sentence_rows.items():
        rows_of.setdefault(index.manifest["documents"][doc]["lang"], []).append(row)
    for lang, rows in rows_of.items():
        mean = np.asarray(index.sentence_vectors[rows]).mean(axis=0)
        np.testing.assert_allclose(index.centroids[lang], mean, rtol=1e-5, atol=1e-6)
    s = settings.model_copy(update={"language_centering": 0.5})
    retriever = Retriever(index, embedding, s)
    query = retriever.embed_query("harbour of Hangzhou boats")
    dense = {pid: 0.9 for pid in index.order}
    centred = retriever.centred(dense, query)
    for pid, score in centred.items():
        lang = index.passages[pid].lang
        assert score == pytest.approx(0.9 - 0.5 * float(index.centroids[lang] @ query))
    off = settings.model_copy(update={"language_centering": 0.0})
    assert Retriever(index, embedding, off).centred(dense, query) == dense
