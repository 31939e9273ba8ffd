"""The read side of an index: ``open_index`` opens the published version as a
``LoadedIndex``, what a query needs and nothing of the builder.

rag/query/ imports nothing else of rag/index/: what it needs from there (the
embedding model, the source files' text, the published version's id) is re-exported
here.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from rag.config import Settings
from rag.errors import IndexCorruptError
from rag.index.corpus import read_source_text
from rag.index.embedding import load_embedding, model_id
from rag.index.latent import LatentIndex, SentenceTerms, supports_latent
from rag.index.layout import (
    BM25,
    CENTROIDS,
    LATENT,
    PASSAGES,
    SENTENCE_KEYS,
    SENTENCE_VECTORS,
    DocumentEntry,
    Manifest,
    check_model,
    current_version,
    load_centroids,
    location,
    passage_from_record,
    published,
    version_dir,
)
from rag.index.lexical import LexicalIndex
from rag.index.store import VectorSearch, VectorStore
from rag.types import Passage

__all__ = [
    "DocumentEntry",
    "LoadedIndex",
    "Manifest",
    "VectorSearch",
    "current_version",
    "load_embedding",
    "model_id",
    "open_index",
    "read_source_text",
    "supports_latent",
]

T = TypeVar("T")

UNREADABLE = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile)
"""What reading a missing, garbled or truncated index file raises (json, numpy,
bm25s; ``json.JSONDecodeError`` is a ValueError)."""


@dataclass
class LoadedIndex:
    """A published version, opened for reading."""

    version: str
    path: Path | None
    """The version's folder (None for an index built in memory)."""
    manifest: Manifest
    passages: dict[str, Passage]
    """By passage id."""
    order: list[str]
    """Passage ids in the order they were indexed."""
    lexical: LexicalIndex
    vectors: VectorSearch
    """The passage vectors: Chroma (VectorStore) or in memory (MemoryVectors)."""
    sentence_rows: dict[tuple[str, int, int], int]
    """``(doc_id, start, end)`` of a sentence -> its row of ``sentence_vectors``."""
    sentence_vectors: np.ndarray
    """One embedding per distinct sentence (float32, rows x dim; memory-mapped)."""
    latent: LatentIndex | None = None
    """Latent terms of the passages, when the embedding has a sparse head."""
    sentence_terms: SentenceTerms | None = None
    """Latent terms of the sentences (rows of ``sentence_vectors``), likewise."""
    centroids: dict[str, np.ndarray] = field(default_factory=dict)
    """Mean sentence vector of each language of the corpus (see rag/query/retriever.py)."""

    @property
    def embedding_model(self) -> str:
        """The model id the version was built with (``model_id``)."""
        return str(self.manifest["embedding_model"])

    @property
    def languages(self) -> frozenset[str]:
        """The languages of the indexed documents (``und`` left out)."""
        return frozenset(d["lang"] for d in self.manifest["documents"].values()) - {"und"}

    def document(self, doc_id: str) -> DocumentEntry:
        """The manifest's entry of an indexed document (title, lang, ...)."""
        return self.manifest["documents"][doc_id]

    def language_similarity(self, vector: np.ndarray) -> dict[str, float]:
        """The question's similarity to the mean sentence vector of each language:
        the share of any score that comes from the language alone."""
        return {lang: float(mean @ vector) for lang, mean in self.centroids.items()}

    def meanings(self, rows: list[int], langs: list[str]) -> np.ndarray:
        """Unit vectors of sentences ``rows`` (of languages ``langs``) less their
        language's mean vector: what a sentence says, without the language it is said
        in. Raw cosines cannot tell a translation from any sentence on the same subject
        (the seeds: Malay sentences and their Vietnamese translations 0.891 median,
        Malay sentences and the nearest sentence of an unrelated file 0.885); centred,
        0.558 against 0.310."""
        vectors = np.asarray(self.sentence_vectors[rows], dtype=np.float32)
        if self.centroids:  # (an index built before centroids: raw vectors)
            none = np.zeros(vectors.shape[1], dtype=np.float32)
            vectors = vectors - np.stack([self.centroids.get(lang, none) for lang in langs])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)


def _read(version: str, path: Path, load: Callable[[], T]) -> T:
    """``load()``, with what a damaged file raises as IndexCorruptError naming it."""
    try:
        return load()
    except UNREADABLE as exc:
        raise IndexCorruptError(
            f"index version {version} is damaged: {path} cannot be read "
            f"({type(exc).__name__}: {exc}); run `rag index --rebuild`"
        ) from exc


def _passages(path: Path) -> tuple[dict[str, Passage], list[str]]:
    passages: dict[str, Passage] = {}
    order: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            p = passage_from_record(json.loads(line))
            passages[p.passage_id] = p
            order.append(p.passage_id)
    return passages, order


def open_index(settings: Settings, expected_model: str | None = None) -> LoadedIndex:
    """Open the published version of ``settings.index_dir``; errors name what is wrong
    and what to run: IndexMissingError (nothing published), IndexMismatchError (built
    with a model other than ``expected_model``), IndexCorruptError (a file of the
    version is missing or garbled), StoreUnavailableError (the Chroma server)."""
    version, manifest = published(settings.index_dir)
    path = version_dir(settings.index_dir, version)
    if expected_model is not None:
        check_model(manifest["embedding_model"], expected_model)
    passages, order = _read(version, path / PASSAGES, lambda: _passages(path / PASSAGES))
    keys_path = path / SENTENCE_KEYS
    keys = _read(version, keys_path, lambda: json.loads(keys_path.read_text(encoding="utf-8")))
    rows = _read(version, keys_path, lambda: {(d, s, e): i for i, (d, s, e) in enumerate(keys)})
    # mapped, not read: pages come in as sentences are scored (large corpora)
    vectors_path = path / SENTENCE_VECTORS
    sentence_vectors = _read(version, vectors_path, lambda: np.load(vectors_path, mmap_mode="r"))
    if len(passages) != manifest["counts"]["passages"]:
        raise IndexCorruptError(
            f"index version {version} is damaged: {path / PASSAGES} holds {len(passages)} "
            f"passages, the manifest counts {manifest['counts']['passages']}; "
            "run `rag index --rebuild`"
        )
    if len(keys) != sentence_vectors.shape[0]:
        raise IndexCorruptError(
            f"index version {version} is damaged: {keys_path} names {len(keys)} sentences, "
            f"{vectors_path} holds {sentence_vectors.shape[0]} vectors; "
            "run `rag index --rebuild`"
        )
    latent_dir = path / LATENT
    return LoadedIndex(
        version=version,
        path=path,
        manifest=manifest,
        passages=passages,
        order=order,
        lexical=_read(version, path / BM25, lambda: LexicalIndex.load(path / BM25)),
        vectors=VectorStore(location(settings, version)),
        sentence_rows=rows,
        sentence_vectors=sentence_vectors,
        latent=_read(version, latent_dir, lambda: LatentIndex.load(latent_dir))
        if latent_dir.is_dir()
        else None,
        sentence_terms=_read(version, latent_dir, lambda: SentenceTerms.load(latent_dir)),
        centroids=_read(version, path / CENTROIDS, lambda: load_centroids(path)),
    )
