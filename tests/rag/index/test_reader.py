"""Opening the published version: what an absent store gives, and the index built in
memory that tests of the read side use (a damaged index: test_damaged_index.py)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import StoreUnavailableError
from rag.index import corpus
from rag.index.build import build, in_memory
from rag.index.reader import open_index
from rag.index.store import Location, MemoryVectors, VectorStore
from tests.fakes import HashEmbedding
from tests.servers import free_port


def test_a_chroma_server_that_does_not_answer_is_named(settings: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailableError, match=f"Chroma server at {url}"):
        VectorStore(Location(url=url, collection="rag-x"))
    with pytest.raises(StoreUnavailableError):
        build(settings.model_copy(update={"chroma_url": url}))


def test_memory_vectors_rank_by_cosine() -> None:
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 2.0]], dtype=np.float32)
    store = MemoryVectors(["a", "b", "c"], vectors)
    ranked = store.query(np.array([0.0, 1.0], dtype=np.float32), 2)
    assert [pid for pid, _ in ranked] == ["c", "b"]
    assert [round(score, 6) for _, score in ranked] == [1.0, 0.8]
    assert store.count() == 3 and len(store.query(np.array([1.0, 0.0]), 10)) == 3
    with pytest.raises(ValueError, match="2 passage ids for 3 vectors"):
        MemoryVectors(["a", "b"], vectors)


def test_an_index_built_in_memory_is_the_one_built_on_disk(settings: Settings) -> None:
    build(settings)
    disk = open_index(settings)
    memory = in_memory(corpus.load(settings.corpus_dir).documents, HashEmbedding())
    assert memory.passages == disk.passages and memory.order == disk.order
    assert memory.sentence_rows == disk.sentence_rows
    np.testing.assert_array_equal(memory.sentence_vectors, disk.sentence_vectors)
    assert memory.centroids.keys() == disk.centroids.keys()
    for lang, mean in disk.centroids.items():
        np.testing.assert_array_equal(memory.centroids[lang], mean)
    assert memory.manifest["documents"] == disk.manifest["documents"]
    assert memory.manifest["counts"] == disk.manifest["counts"]
    # the same cosine for every passage (Chroma's HNSW, asked for all, and exact search)
    vector = np.asarray(HashEmbedding().get_query_embedding("harbour of Hangzhou boats"))
    everything = disk.vectors.count()
    assert memory.vectors.count() == everything
    exact = dict(memory.vectors.query(vector, everything))
    found = dict(disk.vectors.query(vector, everything))
    assert exact.keys() == found.keys()
    assert all(abs(exact[p] - found[p]) < 1e-5 for p in exact)
    assert max(exact, key=exact.__getitem__) == disk.vectors.query(vector, 1)[0][0]
    for question in ("harbour of Hangzhou boats", "H800 chip export controls"):
        assert memory.lexical.search(question, 5) == disk.lexical.search(question, 5)
