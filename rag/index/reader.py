"""The read side of an index: ``open_index`` opens the published version as a
``LoadedIndex``, what a query needs and nothing of the builder.

rag/query/ imports nothing else of rag/index/: what it needs from there (the
embedding model, the source files' text, the published version's id) is re-exported
here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.index.corpus import read_source
from rag.index.embedding import load_embedding, model_id, query_tokens
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
    damaged,
    expect,
    load_centroids,
    location,
    passage_from_record,
    published,
    version_dir,
)
from rag.index.lexical import LexicalIndex
from rag.index.store import VectorSearch, VectorStore
from rag.types import Passage, Sentence

__all__ = [
    "DocumentEntry",
    "LoadedIndex",
    "Manifest",
    "VectorSearch",
    "current_version",
    "load_embedding",
    "model_id",
    "open_index",
    "query_tokens",
    "read_source",
    "supports_latent",
]


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

    @cached_property
    def languages(self) -> frozenset[str]:
        """The languages of the indexed documents (``und`` left out), made once."""
        return frozenset(d["lang"] for d in self.manifest["documents"].values()) - {"und"}

    @cached_property
    def sentences_by_document(self) -> dict[str, list[Sentence]]:
        """Each document's sentences in order, each once (its passages overlap), made
        once per loaded index: what the answerer reads a sentence's context from and
        the scorer its previous sentence."""
        by_doc: dict[str, dict[int, Sentence]] = {}
        for passage in self.passages.values():
            found = by_doc.setdefault(passage.doc_id, {})
            for s in passage.sentences:
                found.setdefault(s.start, s)
        return {d: [found[k] for k in sorted(found)] for d, found in by_doc.items()}

    def document(self, doc_id: str) -> DocumentEntry:
        """The manifest's entry of an indexed document (title, lang, ...)."""
        return self.manifest["documents"][doc_id]

    def close(self) -> None:
        """Release what the version holds open: the vector store's client and the
        memory maps (the arrays are replaced by empty ones). No query may follow: the
        chat service closes a version once no request uses it (rag/query/chat.py)."""
        self.vectors.close()
        self.sentence_vectors = np.zeros((0, self.sentence_vectors.shape[-1]), np.float32)
        self.sentence_terms = None

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
    with a model other than ``expected_model``), IndexCorruptError (CURRENT names no
    version, or a file of the version is missing, garbled or disagrees with the
    manifest), StoreUnavailableError (the Chroma server).

    Every part is checked as it is opened, against the manifest's counts where it has
    one (passages, sentence keys and vectors, BM25 ids, latent terms, centroids, the
    vector store's count and one query), so a damaged version fails here, naming the
    file, never with a traceback under a later question."""
    version, manifest = published(settings.index_dir)
    path = version_dir(settings.index_dir, version)
    if expected_model is not None:
        check_model(manifest["embedding_model"], expected_model)
    counts = manifest["counts"]
    with damaged(version, path / PASSAGES):
        passages, order = _passages(path / PASSAGES)
    expect(version, path / PASSAGES, len(passages), counts["passages"], "passages")
    keys_path = path / SENTENCE_KEYS
    with damaged(version, keys_path):
        keys = json.loads(keys_path.read_text(encoding="utf-8"))
        rows = {(d, s, e): i for i, (d, s, e) in enumerate(keys)}
    expect(version, keys_path, len(keys), counts["sentences"], "sentences")
    vectors_path = path / SENTENCE_VECTORS
    with damaged(version, vectors_path):
        # mapped, not read: pages come in as sentences are scored (large corpora)
        sentence_vectors = np.load(vectors_path, mmap_mode="r")
    expect(version, vectors_path, sentence_vectors.shape[0], counts["sentences"], "vectors")
    with damaged(version, path / BM25):
        lexical = LexicalIndex.load(path / BM25)
    expect(version, path / BM25, len(lexical.ids), counts["passages"], "passages")
    latent_dir = path / LATENT
    latent: LatentIndex | None = None
    with damaged(version, latent_dir):
        if manifest.get("latent_terms", 0) or latent_dir.is_dir():
            latent = LatentIndex.load(latent_dir)
        sentence_terms = SentenceTerms.load(latent_dir)
        if manifest.get("sentence_latent_terms", 0) and sentence_terms is None:
            raise FileNotFoundError("the sentences' latent terms are missing")
    if latent is not None:
        expect(version, latent_dir, len(latent.ids), counts["passages"], "passages")
    with damaged(version, path / CENTROIDS):
        if manifest.get("language_centroids") and not (path / CENTROIDS).is_file():
            raise FileNotFoundError("the language centroids are missing")
        centroids = load_centroids(path)
    where = location(settings, version)
    with damaged(version, where):  # (a server's failures are StoreUnavailableError)
        vectors = VectorStore(where)
    try:
        expect(version, where, vectors.count(), counts["passages"], "passages")
        if sentence_vectors.ndim == 2 and counts["passages"]:  # its files can be read
            dim = sentence_vectors.shape[1]
            with damaged(version, where):
                vectors.query(np.full(dim, dim**-0.5, dtype=np.float32), 1)
    except BaseException:
        vectors.close()
        raise
    return LoadedIndex(
        version=version,
        path=path,
        manifest=manifest,
        passages=passages,
        order=order,
        lexical=lexical,
        vectors=vectors,
        sentence_rows=rows,
        sentence_vectors=sentence_vectors,
        latent=latent,
        sentence_terms=sentence_terms,
        centroids=centroids,
    )
