"""How well each sentence of a passage answers a question: shared by retrieval (which
reranks its best passages by their best sentence), abstention (which measures the
support of the best one) and the extractive answerer (which quotes the best ones).

A sentence's score is the cosine similarity of its embedding with the question's,
plus lexical evidence (the IDF-weighted share of the question's tokens it contains:
numbers, names, rare words), plus, when the index has them, the cosine of its latent
terms with the question's (rag/index/latent.py: concepts of the multilingual model,
so an English question and an Arabic sentence share them where they share no word),
less its language's share of the similarity. The weights are ``ScoringParams``
(rag/query/params.py), with where each comes from: that score reranks retrieval's
passages. The candidates an answer may quote are then ordered by the fitted scorer
(``AnswerParams.sentence``: P(the sentence holds the answer) over
``sentence_features``, fitted on XQuAD by bench/fit_answer.py) when the scorer has it,
else by that score.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

from rag.index.reader import LoadedIndex
from rag.query.params import DEFAULT, AnswerParams, ScoringParams
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
    similarity to the corpus: what the hand abstention threshold compares."""
    rank: int = 0
    """Rank of its passage in the retrieval (0-based)."""
    probability: float | None = None
    """P(it holds the answer) by the fitted scorer (``AnswerParams.sentence``), when
    the scorer has one: then candidates are ordered by it."""

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

    def __init__(
        self,
        index: LoadedIndex,
        params: ScoringParams = DEFAULT,
        fitted: AnswerParams | None = None,
    ) -> None:
        self.index = index
        self.params = params
        self.fitted = fitted
        """The fitted scorer and abstention rule (rag/query/params.py ``answer_params``),
        or None for the hand rule."""
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
        self._order: tuple[dict[int, int], dict[int, str]] | None = None
        """Each sentence row's previous row and each row's content (``columns``), made
        on first use (``_previous_sentences``)."""

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
        return self.ranked(q_tokens, search)[0]

    def ranked(
        self, q_tokens: Collection[str], search: SearchResult
    ) -> tuple[list[Candidate], dict[str, np.ndarray] | None]:
        """``candidates``, with their ``columns`` in the same order when the scorer
        has fitted parameters (None otherwise): ordered by the fitted probability,
        else by the hand score, statements first. The fitted order is what abstention
        reads; the extractive answerer re-orders by the hand score and its context and
        type terms (``ExtractiveAnswerer.prefer``) before it quotes."""
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
                    out.append(Candidate(scored.passage, s, score, s.evidence - baseline, rank))
        if self.fitted is None or not out:
            out.sort(key=lambda c: (c.minor, -c.score))
            return out, None
        if query is None:
            query = self.query(q_tokens, search.query_vector, search.query_terms, search.lang)
        columns = self.columns(query, out, search)
        p = self.fitted.sentence.probability(sentence_features(columns))
        order = sorted(range(len(out)), key=lambda i: (out[i].minor, -p[i]))
        ranked = [replace(out[i], probability=float(p[i])) for i in order]
        return ranked, {k: v[order] for k, v in columns.items()}

    def columns(
        self,
        query: Query,
        candidates: list[Candidate],
        search: SearchResult,
        fitted: AnswerParams | None = None,
    ) -> dict[str, np.ndarray]:
        """What the fitted rules read of each candidate (arrays of one length, in the
        candidates' order), from the index alone: ``cos`` (sentence . question vector),
        ``lex`` (the IDF-weighted share of the question's tokens it holds), ``lat``
        (latent-terms cosine; 0 without terms), ``same_lang``, ``minor``, ``p_rank``,
        ``p_bm25_share`` and ``p_latent_share`` (its passage's BM25 / latent score over
        the best of the retrieved passages; 0 when that ranking did not find it),
        ``n_tokens`` (its distinct search tokens), ``shift_ref`` (question . reference
        mean of the sentence's language, ``AnswerParams.reference``), and the previous
        sentence of its file: ``has_prev``, ``prev_cos``, ``prev_lat``, ``prev_lex``
        (the sentence's own cos and lat, and 0, when it has none). ``fitted``: the
        parameters whose reference means to use (default: the scorer's)."""
        fitted = fitted or self.fitted
        if fitted is None:
            raise ValueError("columns() needs fitted parameters (their reference means)")
        if self._order is None:
            self._order = _previous_sentences(self.index)
        previous, content = self._order
        n = len(candidates)
        rows = np.array([c.sentence.row for c in candidates], dtype=np.int64)
        prev = np.array([previous.get(int(r), -1) for r in rows], dtype=np.int64)
        has_prev = prev >= 0
        prev_rows = np.where(has_prev, prev, rows)
        both = np.concatenate([rows, prev_rows]).tolist()
        cos = np.asarray(self.index.sentence_vectors[both]) @ query.vector
        lat = np.zeros(2 * n, dtype=np.float32)
        if query.terms is not None and self.index.sentence_terms is not None:
            lat = self.index.sentence_terms.cosine(query.terms, both)
        share = query.share
        lex = np.array(
            [
                sum(share.get(t, 0.0) for t in self.tokens_of(c.sentence.row, c.sentence.content))
                for c in candidates
            ]
        )
        prev_lex = np.array(
            [
                sum(share.get(t, 0.0) for t in self.tokens_of(int(r), content[int(r)]))
                if h
                else 0.0
                for r, h in zip(prev_rows, has_prev, strict=True)
            ]
        )
        n_tokens = np.array(
            [len(self.tokens_of(c.sentence.row, c.sentence.content)) for c in candidates]
        )
        langs = [c.passage.lang for c in candidates]
        refs = {lang: float(fitted.reference(lang) @ query.vector) for lang in set(langs)}
        same = [query.lang is not None and same_language(lang, query.lang) for lang in langs]
        best_bm25 = max((p.lexical or 0.0 for p in search.passages), default=0.0)
        best_latent = max((p.latent or 0.0 for p in search.passages), default=0.0)
        passages = [search.passages[c.rank] for c in candidates]
        own_lat = lat[:n]
        return {
            "cos": cos[:n].astype(np.float64),
            "lex": lex,
            "lat": own_lat.astype(np.float64),
            "same_lang": np.array(same, dtype=np.float64),
            "minor": np.array([c.minor for c in candidates], dtype=np.float64),
            "p_rank": np.array([c.rank for c in candidates], dtype=np.float64),
            "p_bm25_share": np.array(
                [(p.lexical or 0.0) / best_bm25 if best_bm25 > 0 else 0.0 for p in passages]
            ),
            "p_latent_share": np.array(
                [(p.latent or 0.0) / best_latent if best_latent > 0 else 0.0 for p in passages]
            ),
            "n_tokens": n_tokens.astype(np.float64),
            "shift_ref": np.array([refs[lang] for lang in langs]),
            "has_prev": has_prev.astype(np.float64),
            "prev_cos": cos[n:].astype(np.float64),
            "prev_lat": np.where(has_prev, lat[n:], own_lat).astype(np.float64),
            "prev_lex": prev_lex,
        }


SENTENCE_FEATURES = (
    "cos_c",
    "lex",
    "lat",
    "lat_same",
    "same_lang",
    "minor",
    "p_rank",
    "p_bm25_share",
    "p_latent_share",
    "cos_gap",
    "lat_gap",
    "lex_gap",
    "log_tokens",
    "has_prev",
    "prev_cos_c",
    "prev_lat",
    "prev_lex",
)
"""The fitted scorer's features (``sentence_features``); which of them a fit uses is
in its parameter file."""


def sentence_features(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The fitted scorer's features of one question's candidates, from
    ``SentenceScorer.columns``: ``cos_c`` = cos - shift_ref; ``lat_same`` = lat x
    same_lang; ``cos_gap``, ``lat_gap``, ``lex_gap`` = the feature less its best
    among the candidates; ``log_tokens`` = log(1 + n_tokens); ``prev_cos_c`` =
    prev_cos - shift_ref; the others as they are."""
    f = dict(columns)
    cos_c = columns["cos"] - columns["shift_ref"]
    f["cos_c"] = cos_c
    f["lat_same"] = columns["lat"] * columns["same_lang"]
    f["cos_gap"] = cos_c - cos_c.max()
    f["lat_gap"] = columns["lat"] - columns["lat"].max()
    f["lex_gap"] = columns["lex"] - columns["lex"].max()
    f["log_tokens"] = np.log1p(columns["n_tokens"])
    f["prev_cos_c"] = columns["prev_cos"] - columns["shift_ref"]
    return f


def _previous_sentences(index: LoadedIndex) -> tuple[dict[int, int], dict[int, str]]:
    """The row of each sentence's previous sentence in its file (rows of the index's
    sentence vectors), and each row's content (from ``LoadedIndex.sentences_by_document``)."""
    content: dict[int, str] = {}
    previous: dict[int, int] = {}
    for doc_id, found in index.sentences_by_document.items():
        rows = []
        for s in found:
            row = index.sentence_rows.get((doc_id, s.start, s.end))
            if row is not None:
                content[row] = s.content
                rows.append(row)
        for before, row in pairwise(rows):
            previous[row] = before
    return previous, content


def best_statement(scored: list[ScoredSentence]) -> float:
    """Score of a passage's best statement (its best minor sentence when it has no
    statement; 0 when it has no sentence)."""
    statements = [s.score for s in scored if not s.minor]
    return max(statements or [s.score for s in scored], default=0.0)
