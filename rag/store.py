"""The vector store: Chroma through llama-index's ChromaVectorStore.

Embedded (a PersistentClient in a folder) by default, telemetry off. The store has
four operations: add, delete, query, count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.schema import BaseNode, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery
from llama_index.vector_stores.chroma import ChromaVectorStore

COLLECTION = "passages"


def chroma_client(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )


class VectorStore:
    """Passage vectors in one Chroma collection (cosine space)."""

    def __init__(self, path: Path, collection: str = COLLECTION) -> None:
        self.path = path
        self._client = chroma_client(path)
        self._collection = self._client.get_or_create_collection(
            collection, metadata={"hnsw:space": "cosine"}
        )
        self._store = ChromaVectorStore(chroma_collection=self._collection)

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        vectors: np.ndarray,
        metadata: Sequence[Mapping[str, str | int | float]],
        batch_size: int = 1000,
    ) -> None:
        nodes: list[BaseNode] = [
            TextNode(id_=i, text=t, embedding=v.tolist(), metadata=dict(m))
            for i, t, v, m in zip(ids, texts, vectors, metadata, strict=True)
        ]
        for start in range(0, len(nodes), batch_size):
            self._store.add(nodes[start : start + batch_size])

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._store.delete_nodes(node_ids=list(ids))

    def query(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest passage ids with their cosine similarity."""
        k = min(k, self.count())
        if k <= 0:
            return []
        result = self._store.query(
            VectorStoreQuery(query_embedding=vector.tolist(), similarity_top_k=k),
            include=["distances", "metadatas", "documents"],
        )
        ids = result.ids or []
        sims = result.similarities or []
        # ChromaVectorStore reports exp(-distance); cosine distance is 1 - cos.
        return [(i, 1.0 + math.log(s)) for i, s in zip(ids, sims, strict=True)]

    def count(self) -> int:
        return int(self._collection.count())
