"""The default answerer: extractive (no LLM, no network). It quotes, verbatim and
with ``[n]`` markers, the sentences of the retrieved passages that best answer the
question, as scored by rag/query/sentences.py (cosine similarity of multilingual
embeddings, which works across languages, plus lexical evidence and latent terms).

Whether to answer at all is not its call: the pipeline asks rag/query/abstain.py
first, and gives this answerer the candidates that decision kept (``quote``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from rag.config import Settings
from rag.index.reader import LoadedIndex
from rag.query.abstain import quoting
from rag.query.citations import cite
from rag.query.params import DEFAULT, ScoringParams
from rag.query.sentences import Candidate, SentenceScorer
from rag.text.normalise import normalise
from rag.text.segment import tokens
from rag.types import Citation, Draft, SearchResult


class ExtractiveAnswerer:
    """Quotes the sentences that best answer the question: the best one, then at most
    ``Settings.max_citations - 1`` more that score within ``ScoringParams.margin`` of
    it (preferring other files) or that say the same thing from another file
    (corroboration: ``ScoringParams.corroboration`` within a language,
    ``ScoringParams.translation`` across two)."""

    def __init__(
        self,
        index: LoadedIndex,
        settings: Settings,
        scorer: SentenceScorer | None = None,
        params: ScoringParams = DEFAULT,
    ) -> None:
        self.index = index
        self.settings = settings
        self.params = params
        self.scorer = scorer or SentenceScorer(index, params)

    def select(self, ranked: list[Candidate]) -> list[Candidate]:
        """The best sentence, then sentences close to it in score, preferring other
        files; a sentence from another file that says the same thing as a chosen one
        is kept as corroboration even with a lower score."""
        if not ranked:
            return []
        best = ranked[0]
        chosen = [0]
        same = self.says_the_same(ranked)
        margin = self.params.margin
        for i, cand in enumerate(ranked[1:], start=1):
            if len(chosen) >= self.settings.max_citations:
                break
            if cand.minor and not best.minor:
                continue
            said = any(same(i, j) for j in chosen)
            if cand.doc_id in {ranked[j].doc_id for j in chosen}:
                if said:
                    continue  # the same fact twice from one file
                if cand.score >= best.score - margin / 2:
                    chosen.append(i)
            elif said or cand.score >= best.score - margin:
                chosen.append(i)
        return [ranked[j] for j in chosen]

    def says_the_same(self, ranked: list[Candidate]) -> Callable[[int, int], bool]:
        """Whether candidates ``i`` and ``j`` say the same thing: when their contents
        are one text in normal form (a copy of a file saved in another Unicode form);
        in one language, when their embeddings are ``corroboration`` close; in two,
        when their meanings (less each language's mean vector) are ``translation``
        close. Vectors are read once for all."""
        rows = [c.sentence.row for c in ranked]
        langs = [c.passage.lang for c in ranked]
        raw = np.asarray(self.index.sentence_vectors[rows])
        meant = self.index.meanings(rows, langs)
        corroboration, translation = self.params.corroboration, self.params.translation
        forms: dict[int, str] = {}

        def form(i: int) -> str:
            if i not in forms:
                forms[i] = normalise(ranked[i].sentence.content)
            return forms[i]

        def same(i: int, j: int) -> bool:
            if form(i) == form(j):
                return True
            if langs[i] == langs[j]:
                return float(raw[i] @ raw[j]) >= corroboration
            return float(meant[i] @ meant[j]) >= translation

        return same

    def citation(self, n: int, cand: Candidate) -> Citation:
        """Citation ``n`` of a candidate sentence, with its score."""
        start, end = cand.sentence.start, cand.sentence.end
        return cite(self.index, n, cand.passage, start, end, cand.score)

    def quote(self, ranked: list[Candidate], support: float = 0.0) -> Draft:
        """The answer quoting the chosen ones of ``ranked`` (candidates ordered as
        ``SentenceScorer.candidates`` orders them): each sentence as a reader sees it
        (its citation's ``text``: entities decoded, markup dropped, a table row with
        its header), followed by its marker; ``support`` is passed through. Quoting
        nothing gives an empty answer (the pipeline then abstains)."""
        citations = [self.citation(i, c) for i, c in enumerate(self.select(ranked), start=1)]
        body = " ".join(f"{c.text or ' '.join(c.quote.split())} [{c.n}]" for c in citations)
        return Draft(body, citations, False, support=support)

    def answer(
        self,
        question: str,
        search: SearchResult,
        lang: str,
        on_delta: Callable[[str], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> Draft:
        """Quote the sentences of ``search``'s passages that best answer ``question``
        (for a quantity question, only sentences that state one). The Answerer
        protocol: no abstention here (rag/query/abstain.py decides that before),
        nothing is streamed (``on_delta`` is not called), and it takes milliseconds,
        so ``cancelled`` is not looked at."""
        q_tokens = search.query_tokens or tuple(tokens(question, forms="query"))
        ranked = quoting(question, self.scorer.candidates(set(q_tokens), search))
        return self.quote(ranked)
