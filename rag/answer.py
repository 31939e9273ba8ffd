"""Answerers turn retrieved passages into an answer with citations.

The default answerer is extractive (no LLM, no network): it scores every sentence of
the retrieved passages against the question, by cosine similarity of their
multilingual embeddings (which works across languages) plus lexical evidence
(shared numbers, names and rare words, weighted by IDF), then quotes the best ones
verbatim with ``[n]`` markers. A question that asks for a quantity ("how many",
"berapa", "bao nhiêu", "كم", 多少) is answered only by sentences that state one
(digits or number words). When the best sentence's support is below
``abstain_threshold``, when no sentence states the quantity asked for, or when the
question names a model or product (letters with digits, like "R2") that no passage
contains, it abstains instead.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field

from rag.chunking import Passage
from rag.citations import Citation
from rag.config import Settings
from rag.indexer import LoadedIndex
from rag.lexical import tokenize
from rag.retriever import SearchResult
from rag.sentences import Query, ScoredSentence, SentenceScorer

RANK_WEIGHT = 0.01
"""Small prior for sentences of passages that retrieval ranked higher."""
CORROBORATION = 0.90
"""Two sentences of one language whose embeddings are this close say the same thing."""
TRANSLATION = 0.42
"""Two sentences of two languages whose meanings (rag/indexer.py
``LoadedIndex.meanings``) are this close say the same thing. On the seeds, 0.42 keeps
93% of the Malay sentences' Vietnamese translations and 4% of their nearest sentences
in unrelated files (the most translations kept less unrelated sentences kept). On
XQuAD's Arabic and Vietnamese paragraphs as one corpus, English questions (held out):
answers citing both translations 0.04 -> 0.65, quotes from the gold paragraph 0.836 ->
0.861 (at 0.50: 0.54 and 0.865)."""
MARGIN = 0.005
"""A further citation must score within this of the best one."""


class Answer(BaseModel):
    """The Answer JSON of ARCHITECTURE.md."""

    answer: str
    citations: list[Citation]
    abstained: bool
    mode: str = "extractive"
    warnings: list[str] = Field(default_factory=list)
    conversation_id: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)


@dataclass
class Draft:
    text: str
    citations: list[Citation]
    abstained: bool
    mode: str = "extractive"
    warnings: list[str] = field(default_factory=list)
    support: float = 0.0
    """Support score of the best sentence (what abstention compares)."""


class Answerer(Protocol):
    def answer(
        self,
        question: str,
        search: SearchResult,
        lang: str,
        on_delta: Callable[[str], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> Draft:
        """Answer from the retrieved passages; ``on_delta`` receives pieces of the
        answer text as they are ready (an LLM's stream), when the answerer streams.
        A streaming answerer stops at its next piece once ``cancelled`` is set
        (raising AnswerCancelled)."""
        ...


@lru_cache(maxsize=1)
def messages() -> dict[str, dict[str, str]]:
    text = resources.files("rag.prompts").joinpath("messages.json").read_text(encoding="utf-8")
    data: dict[str, dict[str, str]] = json.loads(text)
    return data


_PIECE = re.compile(r"\S+\s*|\s+")


def pieces(text: str, size: int = 48) -> Iterator[str]:
    """The text in pieces of whole words, about ``size`` characters each (how a
    finished answer is streamed); joined they give the text back exactly."""
    buffer = ""
    for match in _PIECE.finditer(text):
        buffer += match.group()
        if len(buffer) >= size:
            yield buffer
            buffer = ""
    if buffer:
        yield buffer


def message(kind: str, lang: str) -> str:
    table = messages()[kind]
    return table.get(lang, table["en"])


_IDENTIFIER = re.compile(r"^(?=.*[a-z])(?=.*\d)[a-z0-9]+$")

_ASKS_QUANTITY = re.compile(
    r"\bhow (?:many|much)\b|\bwhat (?:percentage|proportion)\b"  # English
    r"|\bberapa(?:kah)?\b"  # Malay, Indonesian
    r"|\bbao nhiêu\b"  # Vietnamese
    r"|(?<!\S)كم(?!\S)"  # Arabic
    r"|多少",  # Chinese
    re.IGNORECASE,
)
"""Questions whose answer is a quantity ("how much", "berapa", "bao nhiêu", "كم", 多少)."""
_STATES_QUANTITY = re.compile(
    r"[0-9\u0660-\u0669]"
    r"|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen"
    r"|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?"
    r"|millions?|billions?|trillions?|dozens?|twice|thrice|half|thirds?|quarters?"
    r"|several|many|few|most|none|majority"  # English
    r"|dua|tiga|empat|lima|enam|tujuh|lapan|delapan|sembilan|sepuluh|sebelas|belas"
    r"|puluh|ratus|ribu|juta|bilion|miliar|milyar|trilion|triliun|separuh|setengah"
    r"|beberapa|banyak"  # Malay, Indonesian
    r"|hai|ba|bốn|năm|sáu|bảy|tám|chín|mười|mươi|trăm|nghìn|ngàn|triệu|tỷ|nửa"
    r"|vài|nhiều)\b"  # Vietnamese
    r"|اثن|ثلاث|أربع|خمس|سبع|ثمان|تسع|عشر|مئ|مائ|ألف|آلاف|مليون|ملايين|مليار"
    r"|تريليون|نصف|ثلث|ربع|عدة|بضع|ستة|ستين|مرتين|كثير|معظم|أغلب"  # Arabic
    r"|[二两三四五六七八九十百千万亿兆半几多]",  # Chinese
    re.IGNORECASE,
)
"""Digits (Latin or Arabic-Indic), or a number or quantity word of a corpus language;
not "one" (one, satu, một, واحد, 一), which every language also uses as "a"."""


def asks_quantity(question: str) -> bool:
    return bool(_ASKS_QUANTITY.search(question))


def states_quantity(text: str) -> bool:
    return bool(_STATES_QUANTITY.search(text))


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    sentence: ScoredSentence
    score: float
    """The sentence's score (rag/sentences.py) less the rank prior: orders sentences."""
    support: float
    """Its evidence (no latent terms, no rank prior) above the question's baseline
    similarity to the corpus: what the abstention threshold is calibrated on."""

    @property
    def doc_id(self) -> str:
        return self.passage.doc_id

    @property
    def minor(self) -> bool:
        """A minor sentence (rag/sentences.py ``is_minor``): quoted only when nothing
        else is."""
        return self.sentence.minor


class ExtractiveAnswerer:
    """Quotes the sentences that best answer the question; see the module doc."""

    def __init__(
        self, index: LoadedIndex, settings: Settings, scorer: SentenceScorer | None = None
    ) -> None:
        self.index = index
        self.settings = settings
        self.scorer = scorer or SentenceScorer(index)

    def unknown_identifiers(self, q_tokens: set[str]) -> list[str]:
        """Model or product names among the question's tokens (letters with digits)
        that no passage of the corpus contains."""
        return sorted(t for t in q_tokens if _IDENTIFIER.match(t) and t not in self.scorer.idf)

    def candidates(self, q_tokens: set[str], search: SearchResult) -> list[Candidate]:
        """The sentences of the retrieved passages, statements first, best first
        (scored by retrieval when it reranked them, else here)."""
        query: Query | None = None
        baseline = self.scorer.baseline(search.query_vector)
        seen: set[int] = set()
        out: list[Candidate] = []
        for rank, scored in enumerate(search.passages):
            sentences = search.sentences.get(scored.passage.passage_id)
            if sentences is None:
                if query is None:
                    query = self.scorer.query(
                        q_tokens, search.query_vector, search.query_terms, search.lang
                    )
                sentences = self.scorer.score(query, scored.passage)
            for s in sentences:
                if s.row not in seen:
                    seen.add(s.row)
                    score = s.score - RANK_WEIGHT * rank
                    out.append(Candidate(scored.passage, s, score, s.evidence - baseline))
        out.sort(key=lambda c: (c.minor, -c.score))
        return out

    def select(self, ranked: list[Candidate]) -> list[Candidate]:
        """The best sentence, then sentences close to it in score, preferring other
        files; a sentence from another file that says the same thing as a chosen one
        is kept as corroboration even with a lower score."""
        if not ranked:
            return []
        best = ranked[0]
        chosen = [0]
        same = self.says_the_same(ranked)
        for i, cand in enumerate(ranked[1:], start=1):
            if len(chosen) >= self.settings.max_citations:
                break
            if cand.minor and not best.minor:
                continue
            said = any(same(i, j) for j in chosen)
            if cand.doc_id in {ranked[j].doc_id for j in chosen}:
                if said:
                    continue  # the same fact twice from one file
                if cand.score >= best.score - MARGIN / 2:
                    chosen.append(i)
            elif said or cand.score >= best.score - MARGIN:
                chosen.append(i)
        return [ranked[j] for j in chosen]

    def says_the_same(self, ranked: list[Candidate]) -> Callable[[int, int], bool]:
        """Whether candidates ``i`` and ``j`` say the same thing: in one language, when
        their embeddings are CORROBORATION close; in two, when their meanings (less each
        language's mean vector) are TRANSLATION close. Vectors are read once for all."""
        rows = [c.sentence.row for c in ranked]
        langs = [c.passage.lang for c in ranked]
        raw = np.asarray(self.index.sentence_vectors[rows])
        meant = self.index.meanings(rows, langs)

        def same(i: int, j: int) -> bool:
            if langs[i] == langs[j]:
                return float(raw[i] @ raw[j]) >= CORROBORATION
            return float(meant[i] @ meant[j]) >= TRANSLATION

        return same

    def citation(self, n: int, cand: Candidate, score: float) -> Citation:
        return self.citation_for(n, cand.passage, cand.sentence.start, cand.sentence.end, score)

    def citation_for(
        self, n: int, passage: Passage, start: int, end: int, score: float
    ) -> Citation:
        """Citation ``n`` of the span ``[start, end)`` of the passage's file."""
        offset = start - passage.start_char
        quote = passage.text[offset : end - passage.start_char]
        start_line = passage.start_line + passage.text.count("\n", 0, offset)
        doc = self.index.manifest["documents"][passage.doc_id]
        return Citation(
            n=n,
            source=passage.doc_id,
            title=doc["title"],
            start_char=start,
            end_char=end,
            start_line=start_line,
            end_line=start_line + quote.count("\n"),
            quote=quote,
            lang=doc["lang"],
            score=round(score, 4),
        )

    def answer(
        self,
        question: str,
        search: SearchResult,
        lang: str,
        on_delta: Callable[[str], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> Draft:
        q_tokens = set(tokenize(question))
        ranked = self.candidates(q_tokens, search)
        warnings = [f"unknown_term: {t}" for t in self.unknown_identifiers(q_tokens)]
        if asks_quantity(question):
            # the answer to "how much" states a quantity: other sentences cannot be it
            ranked = [c for c in ranked if states_quantity(c.sentence.text)]
            if not ranked:
                warnings.append("no_quantity")
        # the evidence of the best statement (of the best minor sentence when there is
        # no statement), however the sentences are ordered
        support = max((c.support for c in ranked if c.minor == ranked[0].minor), default=0.0)
        if not ranked or support < self.settings.abstain_threshold or warnings:
            return Draft(message("abstain", lang), [], True, warnings=warnings, support=support)
        chosen = self.select(ranked)
        citations = [self.citation(i, c, c.score) for i, c in enumerate(chosen, start=1)]
        body = " ".join(f"{' '.join(c.quote.split())} [{c.n}]" for c in citations)
        return Draft(body, citations, False, support=support)
