"""Hybrid retrieval: dense (Chroma), BM25 and, when the embedding has a sparse head,
latent-terms (rag/index/latent.py) rankings over the same passages, fused.

Two fusion methods (``Settings.fusion``):

- ``rrf``: reciprocal rank fusion, ``sum(1 / (rrf_k + rank))`` over the rankings.
- ``weighted``: ``w * dense + (1 - w) * coverage * bm25 + fusion_latent_weight *
  latent``, each min-max normalised over the candidates; a passage missing from a
  ranking scores 0 there.

Then the first ``rerank_depth`` fused passages are reranked by their best sentence
(``Retriever.rerank``; the rest keep their fused order), and the first ``top_k`` are
returned.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import TypeVar

import numpy as np
from llama_index.core.embeddings import BaseEmbedding

from rag.config import Settings
from rag.index.reader import LoadedIndex, supports_latent
from rag.query.sentences import SentenceScorer, best_statement
from rag.text.segment import tokens as search_tokens
from rag.types import ScoredPassage, ScoredSentence, SearchResult, Terms


def rrf(rankings: list[list[str]], k: int) -> dict[str, float]:
    """Reciprocal rank fusion of rankings (lists of ids, best first)."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, pid in enumerate(ranking, start=1):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (k + rank)
    return fused


def _minmax(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo < 1e-9:
        return {pid: 1.0 for pid in scores}
    return {pid: (s - lo) / (hi - lo) for pid, s in scores.items()}


def weighted(
    dense: dict[str, float], lexical: dict[str, float], w: float, coverage: float = 1.0
) -> dict[str, float]:
    """Convex combination of min-max normalised dense and BM25 scores; the BM25 part
    is scaled by ``coverage`` (how much of the question the corpus vocabulary knows)."""
    d, lex = _minmax(dense), _minmax(lexical)
    lw = (1 - w) * coverage
    return {pid: w * d.get(pid, 0.0) + lw * lex.get(pid, 0.0) for pid in {*d, *lex}}


def coverage(tokens: list[str], vocabulary: Collection[str]) -> float:
    """Share of the question's distinct search tokens that occur in the corpus. An
    English question about Arabic text shares only names and numbers with it (low
    coverage): its BM25 ranking is mostly noise, and min-max normalisation would
    otherwise stretch that noise to full weight."""
    distinct = set(tokens)
    return sum(1 for t in distinct if t in vocabulary) / len(distinct) if distinct else 0.0


T = TypeVar("T")

QUERY_CACHE = 4096
"""Question vectors kept in memory: a repeated question skips the embedding model."""


class Retriever:
    """Hybrid retrieval over one opened index (see the module doc), with the question
    embedded by ``embedding`` (the model the index was built with) and its sentences
    scored by ``scorer`` (shared with the answerer). Keeps the vectors and latent
    terms of the last QUERY_CACHE questions. Safe to share between threads."""

    def __init__(
        self,
        index: LoadedIndex,
        embedding: BaseEmbedding,
        settings: Settings,
        scorer: SentenceScorer | None = None,
    ) -> None:
        self.index = index
        self.embedding = embedding
        self.settings = settings
        self.scorer = scorer or SentenceScorer(index)
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._terms: OrderedDict[str, Terms] = OrderedDict()
        self._tokens: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self.uses_latent = (
            index.latent is not None
            and settings.fusion_latent_weight > 0
            and supports_latent(embedding)
        )
        self._vocabulary = index.lexical.document_frequencies().keys()
        self._lock = threading.Lock()

    def _remembered(self, cache: OrderedDict[str, T], question: str, make: Callable[[], T]) -> T:
        """``cache[question]``, made (outside the lock) and kept when missing; the
        least recently used entry goes past QUERY_CACHE."""
        with self._lock:
            value = cache.get(question)
            if value is not None:
                cache.move_to_end(question)
                return value
        value = make()
        with self._lock:
            cache[question] = value
            if len(cache) > QUERY_CACHE:
                cache.popitem(last=False)
        return value

    def embed_query(self, question: str) -> np.ndarray:
        """The question's embedding (read-only float32 vector), cached."""

        def make() -> np.ndarray:
            vector = np.asarray(self.embedding.get_query_embedding(question), dtype=np.float32)
            vector.setflags(write=False)
            return vector

        return self._remembered(self._vectors, question, make)

    def latent_query(self, question: str) -> Terms:
        """The question's latent terms (the embedding's sparse head), cached."""

        def make() -> Terms:
            return self.embedding.latent_terms([question])[0]  # type: ignore[attr-defined]

        return self._remembered(self._terms, question, make)

    def query_tokens(self, question: str) -> tuple[str, ...]:
        """The question's search tokens (``forms="query"``), cached: ICU word breaking
        and normalisation cost about as much as everything else retrieval does."""
        return self._remembered(
            self._tokens,
            question,
            lambda: tuple(search_tokens(question, forms="query", known=self._vocabulary)),
        )

    def forget_queries(self) -> None:
        """Empty the caches of question vectors, terms and tokens (benchmarks measure
        questions never seen)."""
        with self._lock:
            self._vectors.clear()
            self._terms.clear()
            self._tokens.clear()

    def centred(self, dense: dict[str, float], query_vector: np.ndarray) -> dict[str, float]:
        """Dense scores less ``language_centering`` times the question's similarity to
        the mean vector of each passage's language. Multilingual embeddings score a
        question higher against any text in its own language: centring takes that
        share out, so a Malay question can find the Arabic passage that answers it."""
        weight = self.settings.language_centering
        if weight <= 0 or not self.index.centroids:
            return dense
        similarity = self.index.language_similarity(query_vector)
        passages = self.index.passages
        return {
            pid: s - weight * similarity.get(passages[pid].lang, 0.0) for pid, s in dense.items()
        }

    def rerank(
        self, head: list[str], fused: dict[str, float], scored: dict[str, list[ScoredSentence]]
    ) -> dict[str, float]:
        """Scores of the ``head`` passages: the fused score (as a share of the best)
        plus ``rerank_weight`` times the score of the passage's best statement
        (``scored``: its sentences, rag/sentences.py). A passage that holds one
        sentence answering the question outranks one that is merely about the same
        subject throughout."""
        top = max(fused[pid] for pid in head)
        top = top if top > 0 else 1.0
        weight = self.settings.rerank_weight
        return {pid: fused[pid] / top + weight * best_statement(scored[pid]) for pid in head}

    def search(
        self,
        question: str,
        top_k: int | None = None,
        query_vector: np.ndarray | None = None,
        lang: str | None = None,
    ) -> SearchResult:
        """The ``top_k`` passages (default ``Settings.top_k``) best answering
        ``question``, best first, with their fused (and, for the first
        ``rerank_depth``, reranked) scores and the scored sentences of the reranked
        ones. Each ranking takes ``Settings.candidates`` passages.

        ``query_vector``: the question's embedding when the caller has it (else it is
        embedded, or taken from the cache). ``lang``: the question's language (ISO
        639-1) when known: a sentence in it gets ``ScoringParams.same_language_latent``.
        ``timings_ms`` of the result: ``embed`` and ``retrieve``, in milliseconds."""
        top_k = top_k or self.settings.top_k
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if query_vector is None:
            query_vector = self.embed_query(question)
        terms = self.latent_query(question) if self.uses_latent else None
        t1 = time.perf_counter()
        timings["embed"] = (t1 - t0) * 1000
        n = self.settings.candidates
        tokens = list(self.query_tokens(question))
        dense = self.centred(dict(self.index.vectors.query(query_vector, n)), query_vector)
        lexical = dict(self.index.lexical.search(tokens, n))
        latent: dict[str, float] = {}
        if terms is not None and self.index.latent is not None:
            latent = dict(self.index.latent.search(terms, n))
        if self.settings.fusion == "rrf":
            fused = rrf([list(dense), list(lexical), list(latent)], self.settings.rrf_k)
        else:
            share = 1.0
            if self.settings.fusion_coverage:
                share = coverage(tokens, self._vocabulary)
            fused = weighted(dense, lexical, self.settings.fusion_dense_weight, share)
            for pid, score in _minmax(latent).items():
                fused[pid] = fused.get(pid, 0.0) + self.settings.fusion_latent_weight * score
        ranked = sorted(fused, key=lambda pid: (-fused[pid], pid))
        depth = self.settings.rerank_depth
        scored: dict[str, list[ScoredSentence]] = {}
        if self.settings.rerank_weight > 0 and ranked:
            query = self.scorer.query(tokens, query_vector, terms, lang)
            head = ranked[:depth]
            scored = {pid: self.scorer.score(query, self.index.passages[pid]) for pid in head}
            fused = {**fused, **self.rerank(head, fused, scored)}
            ranked = sorted(head, key=lambda pid: (-fused[pid], pid)) + ranked[depth:]
        chosen = ranked[:top_k]
        timings["retrieve"] = (time.perf_counter() - t1) * 1000
        return SearchResult(
            question=question,
            query_vector=query_vector,
            passages=[
                ScoredPassage(
                    self.index.passages[pid],
                    fused[pid],
                    dense.get(pid),
                    lexical.get(pid),
                    latent.get(pid),
                )
                for pid in chosen
            ],
            timings_ms=timings,
            query_terms=terms,
            sentences={pid: scored[pid] for pid in chosen if pid in scored},
            lang=lang,
            query_tokens=tuple(tokens),
        )
