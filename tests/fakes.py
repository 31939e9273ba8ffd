"""A deterministic embedding through llama-index's BaseEmbedding: a hashed bag of
search tokens, L2-normalised. Two texts are similar exactly as far as they share
tokens, so tests can assert rankings; selected with RAG_EMBEDDING=tests.fakes:HashEmbedding."""

from __future__ import annotations

import hashlib

import numpy as np
from llama_index.core.embeddings import BaseEmbedding

from rag.text.segment import tokens

DIM = 512


def hash_vector(text: str) -> list[float]:
    vec = np.zeros(DIM, dtype=np.float32)
    for token in tokens(text):
        vec[int(hashlib.sha1(token.encode()).hexdigest(), 16) % DIM] += 1.0
    norm = float(np.linalg.norm(vec))
    if norm == 0:
        vec[0] = 1.0
        norm = 1.0
    return (vec / norm).tolist()


class HashEmbedding(BaseEmbedding):
    model_name: str = "hash-bag-512"
    calls: int = 0
    """Questions embedded so far."""

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        self.calls += 1
        return hash_vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return hash_vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return hash_vector(text)


class OtherHashEmbedding(HashEmbedding):
    model_name: str = "hash-bag-other"

    @classmethod
    def class_name(cls) -> str:
        return "OtherHashEmbedding"


class HashLatentEmbedding(HashEmbedding):
    """HashEmbedding with a sparse head: a text's latent terms are its hashed tokens,
    weighted by count, so an index built with it has every latent-terms file."""

    model_name: str = "hash-bag-latent"
    latent_dim: int = 256

    @classmethod
    def class_name(cls) -> str:
        return "HashLatentEmbedding"

    def latent_terms(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for text in texts:
            counts: dict[int, float] = {}
            for token in tokens(text):
                term = int(hashlib.sha1(token.encode()).hexdigest(), 16) % self.latent_dim
                counts[term] = counts.get(term, 0.0) + 1.0
            ids = np.array(sorted(counts), dtype=np.int32)
            out.append((ids, np.array([counts[i] for i in ids], dtype=np.float32)))
        return out
