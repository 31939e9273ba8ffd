"""How well each sentence of a passage answers a question: shared by retrieval (which
reranks its best passages by their best sentence) and the extractive answerer (which
quotes the best sentences).

A sentence's score is the cosine similarity of its embedding with the question's,
plus lexical evidence (the IDF-weighted share of the question's tokens it contains:
numbers, names, rare words), plus, when the index has them, the cosine of its latent
terms with the question's (rag/latent.py: concepts of the multilingual model, so an
English question and an Arabic sentence share them where they share no word).

Measured on XQuAD (questions on 1190 paragraphs, sentence that holds the gold answer
ranked first among the top passages' sentences): en->ar 0.617 -> 0.646 and en->vi
0.603 -> 0.644 with the latent terms at LATENT_WEIGHT; on the dev set 0.769 -> 0.872.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import numpy as np

from rag.chunking import Passage
from rag.indexer import LoadedIndex
from rag.latent import Terms
from rag.lexical import tokenize

LEXICAL_WEIGHT = 0.08
"""Weight of the IDF-weighted token overlap next to cosine similarity."""
LATENT_WEIGHT = 0.7
"""Weight of the cosine of the question's and the sentence's latent terms."""
SAME_LANGUAGE_LATENT = 0.35
"""The same weight for a sentence in the question's language. Latent terms bridge
languages; within one, words and the embedding already meet, and the terms' noise
costs: answers quoting the gold in their first quote on XQuAD at 0.7 -> 0.35 -> 0,
vi:vi 0.746 -> 0.765 -> 0.772, ar:ar 0.713 -> 0.720 -> 0.724, en:en 0.812 -> 0.814 ->
0.798."""
LANGUAGE_CENTERING = 1.0
"""A sentence's score is less this times the question's similarity to the mean vector
of the sentence's language (as in retrieval: rag/retriever.py ``Retriever.centred``)."""
BASELINE_SAMPLE = 4096
"""Sentences that estimate a question's baseline similarity to the corpus."""
TEXT_CACHE = 200_000
"""Sentences whose search tokens and ``is_minor`` are kept in memory (tokenising is
most of the cost of scoring a sentence; the cache is emptied when full)."""
MIN_WORDS = 5
"""Shorter sentences (headings, clause fragments) are minor."""
MIN_CJK_CHARS = 12

_SAME_LANGUAGE = {"id": "ms"}
"""Languages that share their words for this purpose (Indonesian and Malay, which the
detector also confuses on short questions)."""


def _language(code: str) -> str:
    return _SAME_LANGUAGE.get(code, code)


_CLOSERS = "\"'”’»)]\u200f "
_QUESTION_END = re.compile(r"[?？؟]$")
_LIST_ITEM = re.compile(r"^\s*(?:[•◦▪‣*–—-]|\d+[.)])\s")


def is_minor(text: str) -> bool:
    """Not a statement: short (a fragment), a question (it asks rather than says) or
    a heading (ends without punctuation and is not a list item). Minor sentences are
    quoted only when nothing else is: a title can match a question better than any
    sentence below it while saying nothing about it. (A piece of a long sentence that
    the chunker cut at a comma is not minor: demoting those cost XQuAD en->ar answers
    quoting the gold 0.564 -> 0.510.)"""
    cjk = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff")
    if (cjk < MIN_CJK_CHARS) if cjk else (len(text.split()) < MIN_WORDS):
        return True
    end = text.rstrip(_CLOSERS)
    if _QUESTION_END.search(end):
        return True
    return bool(end) and end[-1].isalnum() and not _LIST_ITEM.match(text)


@dataclass(frozen=True)
class Query:
    """What sentences are scored against: one question, prepared once."""

    vector: np.ndarray
    share: dict[str, float]
    """IDF weight of each of the question's tokens, as a share of their sum."""
    terms: Terms | None
    """The question's latent terms, when the latent ranking is on."""
    shift: dict[str, float]
    """What a sentence of each language scores less (LANGUAGE_CENTERING)."""
    lang: str | None = None
    """The question's language, when known (SAME_LANGUAGE_LATENT)."""


@dataclass(frozen=True)
class ScoredSentence:
    start: int
    end: int
    row: int
    """Row of the sentence in the index's sentence vectors."""
    text: str
    evidence: float
    """Cosine similarity plus lexical evidence (what abstention is calibrated on)."""
    score: float
    """``evidence`` plus the latent-terms similarity, less the language's share
    (LANGUAGE_CENTERING): what orders sentences."""
    minor: bool
    """``is_minor``: ranked after every statement."""


class SentenceScorer:
    def __init__(self, index: LoadedIndex) -> None:
        self.index = index
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
        self._of_text: dict[int, tuple[frozenset[str], bool]] = {}

    def of_text(self, row: int, text: str) -> tuple[frozenset[str], bool]:
        """What depends on the text of sentence ``row`` alone: its distinct search
        tokens and whether it is minor."""
        found = self._of_text.get(row)
        if found is None:
            if len(self._of_text) >= TEXT_CACHE:
                self._of_text.clear()
            found = self._of_text[row] = (frozenset(tokenize(text)), is_minor(text))
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
        weights = {t: self.idf.get(t, self._max_idf) for t in set(q_tokens)}
        total = sum(weights.values())
        share = {t: w / total for t, w in weights.items()} if total > 0 else {}
        similarity = self.index.language_similarity(vector)
        shift = {lang: LANGUAGE_CENTERING * s for lang, s in similarity.items()}
        return Query(vector, share, terms, shift, lang)

    def sentences(self, passage: Passage) -> Iterator[tuple[int, int, int, str]]:
        """``(start, end, row, text)`` of each sentence of the passage."""
        for start, end in passage.sentences:
            row = self.index.sentence_rows[(passage.doc_id, start, end)]
            yield (
                start,
                end,
                row,
                passage.text[start - passage.start_char : end - passage.start_char],
            )

    def score(self, query: Query, passage: Passage) -> list[ScoredSentence]:
        """Every sentence of the passage, scored for the question."""
        spans = list(self.sentences(passage))
        if not spans:
            return []
        rows = [row for _, _, row, _ in spans]
        cosines = np.asarray(self.index.sentence_vectors[rows]) @ query.vector
        latent = np.zeros(len(spans), dtype=np.float32)
        if query.terms is not None and self.index.sentence_terms is not None:
            latent = self.index.sentence_terms.cosine(query.terms, rows)
        out = []
        shift = query.shift.get(passage.lang, 0.0)
        same = query.lang is not None and _language(passage.lang) == _language(query.lang)
        latent_weight = SAME_LANGUAGE_LATENT if same else LATENT_WEIGHT
        for (start, end, row, text), cosine, lat in zip(spans, cosines, latent, strict=True):
            tokens, minor = self.of_text(row, text)
            overlap = sum(query.share.get(t, 0.0) for t in tokens)
            evidence = float(cosine) + LEXICAL_WEIGHT * overlap
            score = evidence + latent_weight * float(lat) - shift
            out.append(ScoredSentence(start, end, row, text, evidence, score, minor))
        return out


def best_statement(scored: list[ScoredSentence]) -> float:
    """Score of a passage's best statement (its best minor sentence when it has no
    statement; 0 when it has no sentence)."""
    statements = [s.score for s in scored if not s.minor]
    return max(statements or [s.score for s in scored], default=0.0)
