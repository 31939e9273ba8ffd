"""The vector store: Chroma through llama-index's ChromaVectorStore.

Embedded (a PersistentClient in each index version's folder) by default; with
``RAG_CHROMA_URL`` a Chroma server (``chroma run``), where each index version is a
collection of its own (``PREFIX-VERSION``). Telemetry off. The store has four
operations: add, delete, query, count; the read side needs only query and count
(``VectorSearch``), which ``MemoryVectors`` also gives for an index built in memory.

Errors are converted here: a Chroma server that cannot be reached or answers with an
error becomes StoreUnavailableError; an embedded store that cannot be opened or read
becomes IndexCorruptError (both name the server or the folder). A write the embedded
store refuses is raised as Chroma raised it: that is a fault of the build, not of the
data on disk.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import httpx
import numpy as np
from chromadb.errors import ChromaError
from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.vector_stores.chroma import ChromaVectorStore

from rag.errors import (
    ConfigError,
    IndexCorruptError,
    RagError,
    StoreUnavailableError,
    describe,
)

COLLECTION = "passages"

STORE_ERRORS = (ChromaError, httpx.HTTPError, OSError, ValueError)
"""What Chroma raises when a store cannot be reached or read (its client raises
ValueError when no server answers)."""


class VectorSearch(Protocol):
    """What a query needs of the passage vectors."""

    def query(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest passage ids with their cosine similarity, best first."""
        ...

    def count(self) -> int:
        """How many passages the store holds."""
        ...

    def close(self) -> None:
        """Release what the store holds open (files, connections, threads)."""
        ...


class MemoryVectors:
    """Passage vectors in one in-memory matrix, searched exactly (no index): the
    VectorSearch of an index built in memory (rag/index/build.py ``in_memory``)."""

    def __init__(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} passage ids for {len(vectors)} vectors")
        self.ids = list(ids)
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(self.ids), -1)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self._unit = matrix / np.where(norms > 0, norms, 1.0)

    def query(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` passages of highest cosine with ``vector``, best first (ties in
        the order the ids were given)."""
        k = min(k, len(self.ids))
        if k <= 0:
            return []
        norm = float(np.linalg.norm(vector))
        scores = self._unit @ (np.asarray(vector, dtype=np.float32) / (norm or 1.0))
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self.ids[i], float(scores[i])) for i in top]

    def count(self) -> int:
        """How many passages it holds."""
        return len(self.ids)

    def close(self) -> None:
        """Nothing to release: the matrix is an array like any other."""


def chroma_client(path: Path) -> Any:
    """An embedded Chroma client on ``path`` (created if missing), telemetry off."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )


def server_client(url: str) -> Any:
    """A client of the Chroma server at ``url`` (``http://host:port``)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise ConfigError(f"chroma_url must look like http://host:port, got '{url}'")
    with _failures(Location(url=url), "connect"):
        return chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if parsed.scheme == "https" else 80),
            ssl=parsed.scheme == "https",
            settings=ChromaSettings(anonymized_telemetry=False),
        )


@dataclass(frozen=True)
class Location:
    """Where one index version's vectors live: a folder, or a server collection."""

    path: Path | None = None
    url: str | None = None
    collection: str = COLLECTION

    @staticmethod
    def of(version_dir: Path, version: str, chroma_url: str | None, prefix: str) -> Location:
        """The location of ``version``'s vectors: a server collection
        ``PREFIX-VERSION`` when ``chroma_url`` is set, else ``version_dir/chroma``."""
        if chroma_url:
            return Location(url=chroma_url, collection=f"{prefix}-{version}")
        return Location(path=version_dir / "chroma")

    def __str__(self) -> str:
        if self.url:
            return f"collection '{self.collection}' of the Chroma server at {self.url}"
        return f"the vector store in '{self.path}'"


@contextlib.contextmanager
def _failures(location: Location, doing: str, write: bool = False) -> Iterator[None]:
    """Chroma's errors while ``doing`` something, converted (see the module doc)."""
    try:
        yield
    except RagError:
        raise
    except STORE_ERRORS as exc:
        reason = describe(exc)
        if location.url:
            raise StoreUnavailableError(f"{location} failed to {doing} ({reason})") from exc
        if write:
            raise
        raise IndexCorruptError(
            f"{location} cannot be read ({reason}); run `rag index --rebuild`"
        ) from exc


class VectorStore:
    """Passage vectors in one Chroma collection (cosine space)."""

    def __init__(self, location: Location | Path) -> None:
        if isinstance(location, Path):
            location = Location(path=location)
        self.location = location
        with _failures(location, "open"):
            if location.url:
                self._client = server_client(location.url)
            else:
                assert location.path is not None
                self._client = chroma_client(location.path)
            self._collection = self._client.get_or_create_collection(
                location.collection, metadata={"hnsw:space": "cosine"}
            )
            self._store = ChromaVectorStore(chroma_collection=self._collection)
            self._count = int(self._collection.count())

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        vectors: np.ndarray,
        metadata: Sequence[Mapping[str, str | int | float]],
        batch_size: int = 1000,
    ) -> None:
        """Add passages: ids, texts, vectors (rows, float32) and metadata, in batches.

        A ``doc_id`` in a passage's metadata is made the node's source document:
        llama-index writes the source's id over the ``doc_id`` key (``"None"`` for a
        node without one), so that is how the key keeps the passage's document."""
        nodes: list[BaseNode] = [
            TextNode(
                id_=i,
                text=t,
                embedding=v.tolist(),
                metadata=dict(m),
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(m["doc_id"]))}
                if "doc_id" in m
                else {},
            )
            for i, t, v, m in zip(ids, texts, vectors, metadata, strict=True)
        ]
        with _failures(self.location, "add passages", write=True):
            for start in range(0, len(nodes), batch_size):
                self._store.add(nodes[start : start + batch_size])
            self._count = int(self._collection.count())

    def delete(self, ids: Sequence[str]) -> None:
        """Delete passages by id (nothing to do for none)."""
        if ids:
            with _failures(self.location, "delete passages", write=True):
                self._store.delete_nodes(node_ids=list(ids))
                self._count = int(self._collection.count())

    def query(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest passage ids with their cosine similarity.

        Reads ask the collection for ids and distances only: llama-index's query also
        fetches every document and metadata to build nodes, which the engine already
        holds (measured 3.6 ms against 1.0 ms per query on the seeds)."""
        k = min(k, self._count)
        if k <= 0:
            return []
        with _failures(self.location, "query"):
            result = self._collection.query(
                query_embeddings=[vector.tolist()], n_results=k, include=["distances"]
            )
        ids = result["ids"][0]
        distances = (result["distances"] or [[]])[0]
        # cosine space: distance = 1 - cos
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    def count(self) -> int:
        """How many passages the collection holds."""
        return self._count

    def close(self) -> None:
        """Release the client: its database connections, open files and threads (an
        embedded client is shared by every store of one folder until the last closes).
        No call may follow."""
        close = getattr(self._client, "close", None)
        if close is not None:
            close()
        # a call that raised inside Chroma (llama-index's delete does) leaves the
        # client's bindings in a cycle (exception -> traceback -> frames) that only the
        # cycle collector frees, and with them the open files: collect them now
        gc.collect()

    def copy_from(self, other: VectorStore, ids: Sequence[str], batch_size: int = 1000) -> None:
        """Copy these passages (vectors, texts, metadata) from another store: how a
        new version starts from the previous one on a server."""
        with _failures(self.location, "copy passages", write=True):
            for start in range(0, len(ids), batch_size):
                got = other._collection.get(
                    ids=list(ids[start : start + batch_size]),
                    include=["embeddings", "documents", "metadatas"],
                )
                if got["ids"]:
                    self._collection.add(
                        ids=got["ids"],
                        embeddings=got["embeddings"],
                        documents=got["documents"],
                        metadatas=got["metadatas"],
                    )
            self._count = int(self._collection.count())


def drop_server_collections(url: str, prefix: str, keep: set[str]) -> None:
    """Delete the server collections of versions not in ``keep`` (partial builds and
    versions collected from disk)."""
    client = server_client(url)
    with _failures(Location(url=url), "drop old collections"):
        for collection in client.list_collections():
            name = collection if isinstance(collection, str) else collection.name
            if name.startswith(prefix + "-") and name.removeprefix(prefix + "-") not in keep:
                client.delete_collection(name)
