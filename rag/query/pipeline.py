"""The pipeline: question -> verified Answer, stateless (no conversation store, no
reload): what the chat service, the eval runner, XQuAD and the benchmarks all answer
through.

    question (+ earlier standalone questions)
      -> condense       follow-up -> standalone question (rag/query/condense.py)
      -> retrieve       dense + BM25 + latent terms, fused, reranked (retriever.py)
      -> abstain?       does the corpus answer it? if not: say so, cite nothing
                        (abstain.py); no answerer runs
      -> answer         the LLM answerer when one is configured (llm.py), else the
                        extractive one (extractive.py); an unusable LLM answer falls
                        back to the extractive one (mode ``extractive-fallback``)
      -> verify         every [n] resolves, every quote is its file's text at its
                        offsets (citations.py); none left: abstain
      -> Answer
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from llama_index.core.embeddings import BaseEmbedding

from rag.config import Settings
from rag.errors import QuestionError
from rag.index.reader import LoadedIndex, load_embedding, model_id, open_index, query_tokens
from rag.query.abstain import Abstention, Decision, message, refusal
from rag.query.citations import SourceTexts, verify
from rag.query.condense import Condenser, FollowUps, load_relatedness
from rag.query.extractive import ExtractiveAnswerer
from rag.query.llm import LLMAnswerer, build_llm
from rag.query.params import DEFAULT, ScoringParams, answer_params
from rag.query.retriever import Retriever
from rag.query.sentences import SentenceScorer
from rag.text.language import detect_language
from rag.types import Answer, Answerer, AnswerUnusable, Draft, SearchResult

Listener = Callable[[str, object], None]
"""Receives ``("citations", list[Citation])`` and ``("delta", str)`` while a question is
answered; the final Answer is what the pipeline returns."""


@dataclass
class Turn:
    """One question answered: the Answer, what retrieval found, the standalone
    question it was answered as, and its abstention score."""

    answer: Answer
    search: SearchResult
    standalone: str
    abstain_score: float = 0.0
    """What abstention compared with its threshold (rag/query/abstain.py
    ``Decision.support``): the service abstains below ``Abstention.threshold``
    (or for a reason its warnings name). Eval runs sweep it (rag/eval/metrics.py
    ``abstention_curve``)."""


def validate_question(question: str, max_chars: int) -> str:
    """The question without surrounding white space, in NFC (a question typed in
    decomposed form is the same question: the embedding model reads code points one by
    one); QuestionError when it is not UTF-8 text (a lone surrogate, as from bytes that
    were not UTF-8 on a command line), empty or longer than ``max_chars`` characters. The
    cheap check, for what is never embedded; a question to answer goes through
    ``Pipeline.validate`` (tokens too)."""
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: bytes that were not UTF-8
        raise QuestionError(
            f"the question is not valid text: U+{ord(question[exc.start]):04X} at character "
            f"{exc.start} (bytes that are not UTF-8?); ask in UTF-8 text"
        ) from None
    stripped = unicodedata.normalize("NFC", question).strip()
    if not stripped:
        raise QuestionError("the question is empty; ask something about the corpus")
    if len(stripped) > max_chars:
        raise QuestionError(
            f"the question is {len(stripped)} characters long, over the limit of {max_chars}"
        )
    return stripped


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


class Pipeline:
    """Answers questions over one opened index version (see the module doc).

    Holds no state between questions besides caches (question vectors, source texts),
    so one instance serves concurrent questions. ``open`` builds one from Settings."""

    def __init__(
        self,
        settings: Settings,
        index: LoadedIndex,
        retriever: Retriever,
        abstention: Abstention,
        extractive: ExtractiveAnswerer,
        sources: SourceTexts,
        llm: LLMAnswerer | None = None,
        condenser: Condenser | None = None,
    ) -> None:
        self.settings = settings
        self.index = index
        self.retriever = retriever
        self.abstention = abstention
        self.extractive = extractive
        self.llm = llm
        self.sources = sources
        self.condenser = condenser or Condenser(None, settings.max_question_chars)

    @classmethod
    def open(
        cls,
        settings: Settings,
        embedding: BaseEmbedding | None = None,
        llm: Any = None,
        sources: SourceTexts | None = None,
        params: ScoringParams = DEFAULT,
    ) -> Pipeline:
        """The pipeline over the published index of ``settings.index_dir``, with
        ``embedding`` (default: the one the settings name); the other arguments as
        for ``over``. Raises what ``open_index`` raises (IndexMissingError,
        IndexMismatchError, IndexCorruptError, StoreUnavailableError)."""
        embedding = embedding if embedding is not None else load_embedding(settings.embedding)
        index = open_index(settings, expected_model=model_id(embedding))
        return cls.over(index, embedding, settings, llm, sources, params)

    @classmethod
    def over(
        cls,
        index: LoadedIndex,
        embedding: BaseEmbedding,
        settings: Settings,
        llm: Any = None,
        sources: SourceTexts | None = None,
        params: ScoringParams = DEFAULT,
    ) -> Pipeline:
        """The pipeline over an opened ``index`` (or one built in memory), questions
        embedded by ``embedding`` (the model the index was built with). ``llm``: a
        llama-index LLM (default: the one ``settings`` configure, if any; pass
        ``build_llm``'s result to share one); ``sources``: a cache of source texts to
        share (default: a new one over ``settings.corpus_dir``); ``params``: the
        scoring figures."""
        if llm is None:
            llm = build_llm(settings)
        scorer = SentenceScorer(index, params, answer_params(index.embedding_model))
        retriever = Retriever(index, embedding, settings, scorer)
        return cls(
            settings,
            index,
            retriever,
            Abstention(scorer, settings.abstain_threshold),
            ExtractiveAnswerer(index, settings, scorer, params),
            sources if sources is not None else SourceTexts(settings.corpus_dir),
            LLMAnswerer(llm, index, retriever.embed_query, settings) if llm is not None else None,
            Condenser(
                llm,
                settings.max_question_chars,
                FollowUps(retriever.embed_query, load_relatedness(model_id(embedding))),
            ),
        )

    @property
    def embedding(self) -> BaseEmbedding:
        """The model questions are embedded with."""
        return self.retriever.embedding

    def validate(self, question: str) -> str:
        """The question stripped when it is within the limits: characters
        (``max_question_chars``, cheap, first), then tokens of the embedding model
        (``max_question_tokens``: what a question costs, as CJK and combining marks
        cost several tokens a character). QuestionError naming the count and the
        limit otherwise."""
        question = validate_question(question, self.settings.max_question_chars)
        tokens = query_tokens(self.embedding, question)
        if tokens > self.settings.max_question_tokens:
            raise QuestionError(
                f"the question is {tokens} tokens long (tokens of the embedding model), over "
                f"the limit of {self.settings.max_question_tokens}; ask a shorter question"
            )
        return question

    def validate_history(self, history: Sequence[str]) -> None:
        """QuestionError, naming the count and the limit, when the earlier user
        messages a client sent (the OpenAI-compatible route's) are together over
        ``max_history_tokens`` tokens of the embedding model."""
        if not history:
            return
        total = sum(query_tokens(self.embedding, h) for h in history)
        if total > self.settings.max_history_tokens:
            raise QuestionError(
                f"the earlier user messages are {total} tokens long together (tokens of "
                f"the embedding model), over the limit of {self.settings.max_history_tokens}; "
                "send fewer earlier messages"
            )

    @property
    def answerer(self) -> Answerer:
        """The answerer asked when the pipeline does not abstain."""
        return self.llm if self.llm is not None else self.extractive

    def question_language(self, question: str) -> str:
        """The question's language (rag/text/language.py), a short or unsure question
        read as one of the corpus's languages or English where the detector gives any
        of them a chance; ``und`` without letters."""
        return detect_language(question, allowed=self.index.languages | {"en"})

    def search(
        self, question: str, top_k: int | None = None, lang: str | None = None
    ) -> SearchResult:
        """Retrieve for ``question`` (rag/query/retriever.py ``Retriever.search``)."""
        return self.retriever.search(question, top_k, lang=lang)

    def answer(
        self,
        question: str,
        *,
        history: Sequence[str] = (),
        top_k: int | None = None,
        lang: str | None = None,
        conversation_id: str | None = None,
        listener: Listener | None = None,
        started: float | None = None,
        cancelled: threading.Event | None = None,
        instructions: str | None = None,
    ) -> Turn:
        """Answer ``question``: condensed against ``history`` (the conversation's
        earlier standalone questions, oldest first), ``top_k`` passages retrieved
        (default ``Settings.top_k``), answered in ``lang`` (ISO 639-1; default: the
        language detected in the question, English when none is). The Answer carries
        ``conversation_id`` as given; its ``timings_ms.total`` counts from ``started``
        (a ``time.perf_counter()`` reading; default: now). ``listener`` receives the
        citations and the answer text in pieces as soon as they are known;
        ``cancelled`` stops an LLM's answer and ``instructions`` go to it
        (``answer_search``).

        Raises QuestionError for an empty or oversized question (``validate``) or
        ``top_k <= 0``."""
        started = time.perf_counter() if started is None else started
        question = self.validate(question)
        if top_k is not None and top_k <= 0:
            raise QuestionError(f"top_k must be > 0, got {top_k}")
        standalone = self.condenser.standalone(question, history)
        if standalone != question and (
            query_tokens(self.embedding, standalone) > self.settings.max_question_tokens
        ):
            standalone = question  # what was carried over made it too long to embed
        if lang is None:
            lang = self.question_language(question)
        search = self.search(standalone, top_k, None if lang == "und" else lang)
        answer, support = self._answer_search(
            standalone,
            search,
            "en" if lang == "und" else lang,
            conversation_id,
            listener,
            started,
            cancelled,
            instructions,
        )
        return Turn(answer, search, standalone, support)

    def answer_search(
        self,
        question: str,
        search: SearchResult,
        lang: str,
        *,
        conversation_id: str | None = None,
        listener: Listener | None = None,
        started: float | None = None,
        cancelled: threading.Event | None = None,
        instructions: str | None = None,
    ) -> Answer:
        """The verified Answer to ``question`` from what ``search`` retrieved (the
        steps after retrieval: abstain?, answer, verify), in language ``lang``.

        ``listener``: with an LLM, first the passages given to it (as citations
        numbered as it sees them), then its checked stream; otherwise the final
        citations, then the answer text in pieces. Joined, the pieces equal the final
        answer unless a citation failed its check at the end (then the returned
        Answer is the truth). ``started`` as for ``answer`` (default: the moment the
        search began, from its timings). Once ``cancelled`` is set (the client went
        away), an LLM's answer stops at its next piece, its stream closed, and
        AnswerCancelled is raised (rag/types.py). ``instructions`` (a caller's own,
        such as an OpenAI ``system`` message) are given to the LLM after the service's
        rules (``LLMAnswerer.messages``); the extractive answerer has no use for them.

        Quotes are checked against the files as they are now and, by content hash,
        as they were indexed (``verify``): a file edited since never verifies."""
        return self._answer_search(
            question, search, lang, conversation_id, listener, started, cancelled, instructions
        )[0]

    def _answer_search(
        self,
        question: str,
        search: SearchResult,
        lang: str,
        conversation_id: str | None,
        listener: Listener | None,
        started: float | None,
        cancelled: threading.Event | None,
        instructions: str | None = None,
    ) -> tuple[Answer, float]:
        """``answer_search``'s Answer and the abstention score (``Draft.support``)."""
        t_answer = time.perf_counter()
        if started is None:
            started = t_answer - sum(search.timings_ms.values()) / 1000
        streamed: list[str] = []
        on_delta = None
        if listener is not None and self.llm is not None:
            listener("citations", self.llm.passage_citations(search))

            def on_delta(piece: str) -> None:
                streamed.append(piece)
                listener("delta", piece)

        draft = self.draft(question, search, lang, on_delta, cancelled, instructions)
        documents = self.index.manifest["documents"]
        checked = verify(
            draft.text,
            draft.citations,
            self.sources,
            renumber=draft.mode != "llm",
            sha256_of=lambda source: documents[source]["sha256"] if source in documents else None,
        )
        answer_ms = (time.perf_counter() - t_answer) * 1000
        answer = Answer(
            answer=checked.text,
            citations=checked.citations,
            abstained=draft.abstained,
            mode=draft.mode,
            warnings=draft.warnings + checked.warnings,
            conversation_id=conversation_id,
            timings_ms={
                "embed": round(search.timings_ms["embed"], 2),
                "retrieve": round(search.timings_ms["retrieve"], 2),
                "answer": round(answer_ms, 2),
                "total": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        if not answer.abstained and not answer.citations:
            # every citation failed verification: say so rather than answer unsupported
            answer = answer.model_copy(
                update={"abstained": True, "answer": message("abstain", lang)}
            )
        if listener is not None and not streamed:
            listener("citations", answer.citations)
            for piece in pieces(answer.answer):
                listener("delta", piece)
        return answer, draft.support

    def draft(
        self,
        question: str,
        search: SearchResult,
        lang: str,
        on_delta: Callable[[str], None] | None = None,
        cancelled: threading.Event | None = None,
        instructions: str | None = None,
    ) -> Draft:
        """The unverified answer: abstention decides first; then the LLM answerer
        (falling back to the extractive one) or the extractive one."""
        decision = self.abstention.decide(question, search)
        if decision.abstain:
            return refusal(decision, lang)
        if self.llm is None:
            return self.extractive.quote(decision.candidates, decision.support, search)
        try:
            draft = self.llm.answer(question, search, lang, on_delta, cancelled, instructions)
        except AnswerUnusable as unusable:
            return self.fallback(decision, unusable.warning, search)
        return replace(draft, support=decision.support)

    def fallback(
        self, decision: Decision, warning: str, search: SearchResult | None = None
    ) -> Draft:
        """The extractive answer in place of an LLM's (to what ``search`` retrieved),
        with ``warning`` first."""
        draft = self.extractive.quote(decision.candidates, decision.support, search)
        return replace(draft, mode="extractive-fallback", warnings=[warning, *draft.warnings])
