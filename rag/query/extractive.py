"""The default answerer: extractive (no LLM, no network). It quotes, verbatim and
with ``[n]`` markers, the sentences of the retrieved passages that best answer the
question, as scored by rag/query/sentences.py (cosine similarity of multilingual
embeddings, which works across languages, plus lexical evidence and latent terms).

Before choosing, it re-reads the scorer's candidates (``ExtractiveAnswerer.prefer``):

- **with their context**: a sentence that refers back ("The clinic has 45 beds", "Its
  founder, ...") does not name its subject; the question's words that the sentence
  lacks but its document's title, its heading or the sentence before it contain count
  for it as the sentence's own words do (``ScoringParams.lexical_weight``), so "How many
  beds does Lakeside Clinic have?" finds the clinic's sentence, not the hospital's. The
  quote stays the sentence itself (its citation names the file and line);
- **by answer type** (rag/query/answer_types.py): a question that asks for a quantity,
  a time or a person prefers a sentence that states one (a year is not a count): the
  score is less ``TYPE_PENALTY`` times the probability that the sentence lacks what is
  asked. A soft preference: no candidate is dropped, none is added.

Whether to answer at all is not its call: the pipeline asks rag/query/abstain.py
first, and gives this answerer the candidates that decision kept (``quote``).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from rag.config import Settings
from rag.index.reader import LoadedIndex
from rag.query.answer_types import (
    AnswerTypes,
    Statements,
    agree,
    load_answer_types,
    mismatch,
    statements,
)
from rag.query.citations import cite
from rag.query.params import DEFAULT, ScoringParams
from rag.query.sentences import Candidate, SentenceScorer
from rag.text.language import same_language
from rag.text.normalise import normalise
from rag.text.segment import tokens
from rag.types import Citation, Draft, SearchResult, Sentence

TYPE_PENALTY = 0.04
"""What a candidate's score loses, times the probability that it lacks the asked type
(``answer_types.mismatch``, in [0, 1]). Measured on XQuAD, 13 language pairs (en, ar, vi,
zh; 15,470 answerable questions, the sentences of each question's top 5 passages as the
service retrieves them), the type probabilities out-of-fold by article: the first quote
holds the gold answer 0.6487 at 0 -> 0.6513 at 0.03 -> 0.6514 at 0.04 -> 0.6509 at 0.05
-> 0.6474 at 0.10 -> 0.6315 at 0.20; quantity questions whose first quote states only a
year 0.050 -> 0.042 (at 0.20: 0.020, at the cost above: a count written as a word is
stated by no digit). Hence soft, and this small."""


CONTEXT_WEIGHT = 0.5
"""What a sentence gains, times how much better (cosine with the question) the
sentence before it or its heading matches the question than itself: read with its
context, a sentence that refers back scores halfway between. Measured with the previous
sentence on XQuAD (the data of ``TYPE_PENALTY``; XQuAD has no headings): first quote
holds the gold 0.6514 at 0 -> 0.6518 at 0.3 -> 0.6525 at 0.5 -> 0.6526 at 0.7 -> 0.6512
at 1.0, no language pair down by more than 0.0034 at 0.5 (XQuAD's sentences seldom
refer back: what it shows is that the gain costs nothing elsewhere). The question's
tokens found in the context count at ``ScoringParams.lexical_weight``, as in the
sentence: with the previous sentence's lexical share above the sentence's own as a
proxy, 0.6525 -> 0.6518 on XQuAD (at twice the weight 0.6459: not more)."""
CONTEXT_CACHE = 100_000
"""Sentences whose context and statements are kept in memory (each emptied when full)."""


@dataclass(frozen=True)
class Context:
    """What a sentence may refer back to (``ExtractiveAnswerer.context``)."""

    tokens: frozenset[str]
    """Search tokens of its document's title, its heading and the sentence before it."""
    rows: tuple[int, ...]
    """Rows (of the index's sentence vectors) of the sentence before it and its heading."""


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
        self.types: AnswerTypes | None = load_answer_types(index.embedding_model)
        """The answer-type classifier fitted for the index's embedding model (None for
        another model: then no type is preferred)."""
        self._context: dict[tuple[str, int], Context] = {}
        self._statements: dict[int, Statements] = {}

    def document_sentences(self, doc_id: str) -> list[Sentence]:
        """The sentences of a document in order (``LoadedIndex.sentences_by_document``)."""
        return self.index.sentences_by_document.get(doc_id, [])

    def context(self, doc_id: str, start: int) -> Context:
        """What a sentence (of ``doc_id``, at ``start``) may refer back to: its
        document's title, the sentence just before it and the nearest heading before
        it (cached)."""
        key = (doc_id, start)
        found = self._context.get(key)
        if found is not None:
            return found
        sentences = self.document_sentences(doc_id)
        texts = [str(self.index.document(doc_id).get("title", ""))]
        k = bisect_left([s.start for s in sentences], start)
        near: list[Sentence] = []
        if k > 0:
            near.append(sentences[k - 1])
            heading = next((s for s in reversed(sentences[:k]) if s.kind == "heading"), None)
            if heading is not None and heading is not near[0]:
                near.append(heading)
        texts += [s.content for s in near]
        rows = self.index.sentence_rows
        found = Context(
            frozenset(t for text in texts for t in tokens(text, forms="both")),
            tuple(r for s in near if (r := rows.get((doc_id, s.start, s.end))) is not None),
        )
        if len(self._context) >= CONTEXT_CACHE:
            self._context.clear()
        self._context[key] = found
        return found

    def stated(self, cand: Candidate) -> Statements:
        """What the candidate's sentence states (``answer_types.statements``), cached."""
        found = self._statements.get(cand.sentence.row)
        if found is None:
            if len(self._statements) >= CONTEXT_CACHE:
                self._statements.clear()
            found = self._statements[cand.sentence.row] = statements(cand.sentence.content)
        return found

    def prefer(self, ranked: list[Candidate], search: SearchResult | None) -> list[Candidate]:
        """The candidates re-read with their context and the question's answer type
        (module doc), re-ordered as the scorer orders them (statements first, best
        first); the same list when there is no search to read them against."""
        if search is None or not ranked:
            return ranked
        q_tokens = set(search.query_tokens)
        share = self.scorer.query(q_tokens, search.query_vector, None).share
        expected = self.types.expected(search.query_vector) if self.types is not None else {}
        asked = statements(search.question)
        contexts = [self.context(c.doc_id, c.sentence.start) for c in ranked]
        rows = sorted({c.sentence.row for c in ranked} | {r for x in contexts for r in x.rows})
        similarity = np.asarray(self.index.sentence_vectors[rows]) @ search.query_vector
        cosine = dict(zip(rows, similarity.tolist(), strict=True))
        out = []
        for cand, context in zip(ranked, contexts, strict=True):
            own = cosine[cand.sentence.row]
            near = max((cosine[r] for r in context.rows), default=own)
            score = (
                cand.score
                + CONTEXT_WEIGHT * max(0.0, near - own)
                + self.params.lexical_weight * self.context_share(cand, context, share)
            )
            if expected:
                score -= TYPE_PENALTY * mismatch(expected, self.stated(cand).without(asked))
            out.append(replace(cand, score=score))
        out.sort(key=lambda c: (c.minor, -c.score))
        return out

    def context_share(self, cand: Candidate, context: Context, share: dict[str, float]) -> float:
        """The IDF share of the question's tokens (``share``) that the candidate's
        sentence lacks and its ``context`` has."""
        own = self.scorer.tokens_of(cand.sentence.row, cand.sentence.content)
        return sum(w for t, w in share.items() if t not in own and t in context.tokens)

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
        otherwise only when their numbers agree (``answer_types.agree``: "45 beds" and
        "640 beds" are two facts, however alike the sentences), and their names too
        within one language, and then, in one language, when their embeddings are
        ``corroboration`` close; in two, when their meanings (less each language's
        mean vector) are ``translation`` close. Vectors are read once for all."""
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
            one = same_language(langs[i], langs[j])
            if not agree(self.stated(ranked[i]), self.stated(ranked[j]), compare_names=one):
                return False
            if langs[i] == langs[j]:
                return float(raw[i] @ raw[j]) >= corroboration
            return float(meant[i] @ meant[j]) >= translation

        return same

    def citation(self, n: int, cand: Candidate) -> Citation:
        """Citation ``n`` of a candidate sentence, with its score."""
        start, end = cand.sentence.start, cand.sentence.end
        return cite(self.index, n, cand.passage, start, end, cand.score)

    def quote(
        self, ranked: list[Candidate], support: float = 0.0, search: SearchResult | None = None
    ) -> Draft:
        """The answer quoting the chosen ones of ``ranked`` (candidates ordered as
        ``SentenceScorer.candidates`` orders them), re-read against ``search`` (the
        retrieval they come from: its question, vector and tokens) by ``prefer``:
        each sentence as a reader sees it (its citation's ``text``: entities decoded,
        markup dropped, a table row with its header), followed by its marker;
        ``support`` is passed through. A citation's ``score`` is the scorer's (the
        re-reading chooses, it does not re-score). Quoting nothing gives an empty
        answer (the pipeline then abstains)."""
        scored = {c.sentence.row: c for c in ranked}
        chosen = [scored[c.sentence.row] for c in self.select(self.prefer(ranked, search))]
        citations = [self.citation(i, c) for i, c in enumerate(chosen, start=1)]
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
        (``quote``). The Answerer protocol: no abstention here (rag/query/abstain.py
        decides that before), nothing is streamed (``on_delta`` is not called), and it
        takes milliseconds, so ``cancelled`` is not looked at."""
        q_tokens = search.query_tokens
        ranked = self.scorer.candidates(set(q_tokens), search)
        return self.quote(ranked, search=search)
