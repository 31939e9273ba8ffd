"""How well each sentence of a passage answers a question: shared by retrieval (which
reranks its best passages by their best sentence), abstention (which measures the
support of the best one) and the extractive answerer (which quotes the best ones).

A sentence's score is the cosine similarity of its embedding with the question's,
plus lexical evidence (the IDF-weighted share of the question's tokens it contains:
numbers, names, rare words), plus, when the index has them, the cosine of its latent
terms with the question's (rag/index/latent.py: concepts of the multilingual model,
so an English question and an Arabic sentence share them where they share no word),
less its language's share of the similarity. The weights are ``ScoringParams``
(rag/query/params.py), with where each comes from.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import numpy as np

from rag.index.reader import LoadedIndex
from rag.query.params import DEFAULT, ScoringParams
from rag.text.language import same_language
from rag.text.segment import tokens
from rag.types import Passage, ScoredSentence, SearchResult, Sentence, Terms

BASELINE_SAMPLE = 4096
"""Sentences that estimate a question's baseline similarity to the corpus."""
TEXT_CACHE = 200_000
"""Sentences whose search tokens are kept in memory (tokenising is most of the cost of
scoring a sentence; the cache is emptied when full)."""


@dataclass(frozen=True)
class Query:
    """What sentences are scored against: one question, prepared once."""

    vector: np.ndarray
    share: dict[str, float]
    """IDF weight of each of the question's tokens, as a share of their sum."""
    terms: Terms | None
    """The question's latent terms, when the latent ranking is on."""
    shift: dict[str, float]
    """What a sentence of each language scores less
    (``ScoringParams.sentence_language_centering``)."""
    lang: str | None = None
    """The question's language, when known (``ScoringParams.same_language_latent``)."""


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage that an answer may quote."""

    passage: Passage
    sentence: ScoredSentence
    score: float
    """The sentence's score less the rank prior (``ScoringParams.rank_weight``):
    orders sentences."""
    support: float
    """Its evidence (no latent terms, no rank prior) above the question's baseline
    similarity to the corpus: what the abstention threshold is calibrated on."""

    @property
    def doc_id(self) -> str:
        """The file the sentence is in."""
        return self.passage.doc_id

    @property
    def minor(self) -> bool:
        """A heading, question, table header or code (``ScoredSentence.minor``):
        quoted only when nothing else is."""
        return self.sentence.minor


class SentenceScorer:
    """Scores the sentences of passages for a question (see the module doc). Holds
    the corpus's IDF of each search token, a sample of sentence vectors for the
    question's baseline, and a cache of each sentence's tokens."""

    def __init__(self, index: LoadedIndex, params: ScoringParams = DEFAULT) -> None:
        self.index = index
        self.params = params
        n = max(1, len(index.passages))
        df = index.lexical.document_frequencies()
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self._max_idf = math.log(1 + (n + 0.5) / 0.5)
        """IDF of a token no passage contains."""
        rows = index.sentence_vectors.shape[0]
        step = max(1, rows // BASELINE_SAMPLE)
        # a copy in memory: the sentence vectors are memory-mapped, and every question
        # multiplies this sample
        self._baseline_rows = np.array(index.sentence_vectors[::step], dtype=np.float32)
        self._tokens: dict[int, frozenset[str]] = {}

    def tokens_of(self, row: int, content: str) -> frozenset[str]:
        """The distinct search tokens of sentence ``row`` (of its ``content``, both
        forms as the index has them), cached."""
        found = self._tokens.get(row)
        if found is None:
            if len(self._tokens) >= TEXT_CACHE:
                self._tokens.clear()
            found = self._tokens[row] = frozenset(tokens(content, forms="both"))
        return found

    def baseline(self, query_vector: np.ndarray) -> float:
        """Mean similarity of the question to the corpus's sentences: what any
        sentence scores for it, whatever it asks. Support is measured above it."""
        if self._baseline_rows.shape[0] == 0:
            return 0.0
        return float((self._baseline_rows @ query_vector).mean())

    def query(
        self,
        q_tokens: Collection[str],
        vector: np.ndarray,
        terms: Terms | None,
        lang: str | None = None,
    ) -> Query:
        """The question prepared for scoring: its distinct search tokens
        ``q_tokens``, its ``vector``, its latent ``terms`` (or None) and language."""
        weights = {t: self.idf.get(t, self._max_idf) for t in set(q_tokens)}
        total = sum(weights.values())
        share = {t: w / total for t, w in weights.items()} if total > 0 else {}
        similarity = self.index.language_similarity(vector)
        weight = self.params.sentence_language_centering
        shift = {lang: weight * s for lang, s in similarity.items()}
        return Query(vector, share, terms, shift, lang)

    def sentences(self, passage: Passage) -> Iterator[tuple[Sentence, int, str]]:
        """Each sentence of the passage, with its row of the sentence vectors and its
        raw text."""
        for s in passage.sentences:
            row = self.index.sentence_rows[(passage.doc_id, s.start, s.end)]
            yield s, row, passage.text[s.start - passage.start_char : s.end - passage.start_char]

    def score(self, query: Query, passage: Passage) -> list[ScoredSentence]:
        """Every sentence of the passage, scored for the question."""
        spans = list(self.sentences(passage))
        if not spans:
            return []
        rows = [row for _, row, _ in spans]
        cosines = np.asarray(self.index.sentence_vectors[rows]) @ query.vector
        latent = np.zeros(len(spans), dtype=np.float32)
        if query.terms is not None and self.index.sentence_terms is not None:
            latent = self.index.sentence_terms.cosine(query.terms, rows)
        out = []
        shift = query.shift.get(passage.lang, 0.0)
        same = query.lang is not None and same_language(passage.lang, query.lang)
        params = self.params
        latent_weight = params.same_language_latent if same else params.sentence_latent_weight
        for (s, row, text), cosine, lat in zip(spans, cosines, latent, strict=True):
            words = self.tokens_of(row, s.content)
            overlap = sum(query.share.get(t, 0.0) for t in words)
            evidence = float(cosine) + params.lexical_weight * overlap
            score = evidence + latent_weight * float(lat) - shift
            out.append(
                ScoredSentence(s.start, s.end, row, text, evidence, score, s.kind, s.content)
            )
        return out

    def candidates(self, q_tokens: Collection[str], search: SearchResult) -> list[Candidate]:
        """The sentences of the retrieved passages (each once), statements first, best
        first: scored by retrieval when it reranked their passage, else here."""
        query: Query | None = None
        baseline = self.baseline(search.query_vector)
        seen: set[int] = set()
        out: list[Candidate] = []
        for rank, scored in enumerate(search.passages):
            sentences = search.sentences.get(scored.passage.passage_id)
            if sentences is None:
                if query is None:
                    query = self.query(
                        q_tokens, search.query_vector, search.query_terms, search.lang
                    )
                sentences = self.score(query, scored.passage)
            for s in sentences:
                if s.row not in seen:
                    seen.add(s.row)
                    score = s.score - self.params.rank_weight * rank
                    out.append(Candidate(scored.passage, s, score, s.evidence - baseline))
        out.sort(key=lambda c: (c.minor, -c.score))
        return out


def best_statement(scored: list[ScoredSentence]) -> float:
    """Score of a passage's best statement (its best minor sentence when it has no
    statement; 0 when it has no sentence)."""
    statements = [s.score for s in scored if not s.minor]
    return max(statements or [s.score for s in scored], default=0.0)
