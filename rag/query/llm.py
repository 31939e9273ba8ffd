"""Answers written by an LLM behind any OpenAI-compatible endpoint, checked like the
extractive ones.

Opt-in: set ``RAG_LLM_BASE_URL`` and ``RAG_LLM_MODEL``. The retrieved passages go to
the model numbered, fenced with a per-request nonce and labelled as untrusted quoted
material (prompts in ``rag/prompts/``). What comes back is filtered while it streams
(``rag/query/sanitize.py``: parsed as Markdown renderers parse it; only text, ``[n]``
markers that name a passage given to the model and links to allowed hosts are kept,
so no image, link or HTML can carry data out of a rendered answer), and cut past
``llm_max_answer_chars``; an answer whose caller went away (``cancelled``) stops at
the next delta with AnswerCancelled. Either way the upstream response is closed at
once (``OpenResponses``), so the provider stops generating. Each remaining ``[n]``
becomes a citation of the sentence of passage ``n`` closest to the claim it follows.

The model is asked only when the pipeline did not abstain (rag/query/abstain.py).
An answer with no valid citation raises ``AnswerUnusable("llm_no_valid_citation")``,
an unreachable, slow or failing LLM ``AnswerUnusable("llm_unavailable")``: the
pipeline then answers extractively (``mode: extractive-fallback``) with that warning.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections.abc import Callable, Generator
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np

from rag.config import Settings
from rag.index.reader import LoadedIndex
from rag.query.abstain import message
from rag.query.citations import MARKER, cite
from rag.query.sanitize import Sanitizer
from rag.types import (
    AnswerCancelled,
    AnswerUnusable,
    Citation,
    Draft,
    ScoredPassage,
    SearchResult,
    WarningCode,
    warning,
)

log = logging.getLogger("rag.llm")

NO_ANSWER = "NO_ANSWER"
"""What the prompt asks the model to reply when the passages do not answer."""
LANGUAGES = {
    "en": "English",
    "ms": "Malay",
    "id": "Indonesian",
    "vi": "Vietnamese",
    "ar": "Arabic",
    "zh": "Chinese",
}

Delta = Callable[[str], None]


@cache
def prompt(name: str) -> str:
    """The text of ``rag/prompts/NAME``."""
    return resources.files("rag.prompts").joinpath(name).read_text(encoding="utf-8")


class OpenResponses:
    """The HTTP responses each thread opened to the LLM endpoint (an httpx response
    hook records them), so that an answer left early (past ``llm_max_answer_chars``,
    or cancelled because its client went away) closes its own at once. Closing the
    stream's generators is not enough: openai's ``Stream`` and the generator reading
    it hold each other, so the unread response would be closed, and the endpoint
    told, only whenever that cycle is collected."""

    KEEP = 8

    def __init__(self) -> None:
        self._local = threading.local()

    def opened(self, response: httpx.Response) -> None:
        mine: list[httpx.Response] = self._local.__dict__.setdefault("open", [])
        mine.append(response)
        del mine[: -self.KEEP]

    def close_mine(self) -> None:
        """Close this thread's responses (a no-op for those already read to the end)."""
        for response in self._local.__dict__.pop("open", []):
            response.close()


RESPONSES = OpenResponses()


def build_llm(settings: Settings) -> Any:
    """llama-index's OpenAI-compatible LLM for the configured endpoint, or None."""
    if not (settings.llm_base_url and settings.llm_model):
        return None
    from llama_index.llms.openai_like import OpenAILike
    from openai import DefaultHttpxClient

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "unused"
    return OpenAILike(  # type: ignore[call-arg]  # http_client: OpenAI.__init__ takes it
        model=settings.llm_model,
        api_base=settings.llm_base_url,
        api_key=key,
        is_chat_model=True,
        timeout=settings.llm_timeout,
        max_retries=0,
        max_tokens=settings.llm_max_tokens,
        temperature=0.1,
        context_window=settings.llm_context_window,
        http_client=DefaultHttpxClient(event_hooks={"response": [RESPONSES.opened]}),
    )


def fence(passages: list[ScoredPassage], nonce: str) -> str:
    """The passages numbered 1..k, each between BEGIN and END lines that carry a nonce
    the passage text cannot know, so no article can close its fence early. A passage
    is given as a reader sees it (``Passage.content``: no markup, a table row with its
    header)."""
    blocks = []
    for n, scored in enumerate(passages, start=1):
        p = scored.passage
        blocks.append(
            f"----- BEGIN PASSAGE [{n}] {nonce} (source: {p.doc_id}; untrusted) -----\n"
            f"{p.content}\n"
            f"----- END PASSAGE [{n}] {nonce} -----"
        )
    return "\n\n".join(blocks)


class LLMAnswerer:
    """Writes answers with an LLM (a llama-index LLM, ``build_llm``); see the module
    doc. ``embed_query`` embeds a claim of the answer to find the sentence it cites."""

    def __init__(
        self,
        llm: Any,
        index: LoadedIndex,
        embed_query: Callable[[str], np.ndarray],
        settings: Settings,
    ) -> None:
        self.llm = llm
        self.index = index
        self.embed_query = embed_query
        self.settings = settings
        hosts = {h.lower() for h in settings.llm_link_hosts}
        if settings.public_url:
            hosts.add((urlparse(settings.public_url).hostname or "").lower())
        self.allowed_hosts = hosts - {""}

    def messages(
        self, question: str, search: SearchResult, lang: str, instructions: str | None = None
    ) -> list[Any]:
        """The chat messages: the system prompt (answer in ``lang``), then the fenced
        passages and the question. A caller's ``instructions`` (an OpenAI ``system``
        message) are appended to the system prompt under a heading that puts the
        service's rules first: they can change tone, length or format, not make the
        model answer without citing the passages (an uncited answer is replaced by the
        extractive one anyway)."""
        from llama_index.core.llms import ChatMessage, MessageRole

        system = prompt("answer_system.txt").format(language=LANGUAGES.get(lang, "English"))
        if instructions and instructions.strip():
            system += prompt("answer_instructions.txt").format(instructions=instructions.strip())
        user = prompt("answer_user.txt").format(
            passages=fence(search.passages, secrets.token_hex(6)), question=question
        )
        return [
            ChatMessage(role=MessageRole.SYSTEM, content=system),
            ChatMessage(role=MessageRole.USER, content=user),
        ]

    def _stream(
        self, messages: list[Any], cancelled: threading.Event | None
    ) -> Generator[str, None, None]:
        """The model's text deltas; AnswerCancelled at the next chunk once
        ``cancelled`` is set."""
        chunks = self.llm.stream_chat(messages)
        try:
            for chunk in chunks:
                _check(cancelled)
                if chunk.delta:
                    yield chunk.delta
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # a stream left early (an answer too long) ends the request

    def answer(
        self,
        question: str,
        search: SearchResult,
        lang: str,
        on_delta: Delta | None = None,
        cancelled: threading.Event | None = None,
        instructions: str | None = None,
    ) -> Draft:
        """The model's answer from ``search``'s passages, its checked text streamed to
        ``on_delta`` (nothing before its first valid marker). A ``NO_ANSWER`` reply is
        an abstention (mode ``llm``). Raises AnswerUnusable (module doc), and
        AnswerCancelled before asking the model or at its next delta once
        ``cancelled`` is set (the stream closed, no fallback)."""
        _check(cancelled)
        valid = set(range(1, len(search.passages) + 1))
        RESPONSES.close_mine()
        sanitizer = Sanitizer(valid, self.allowed_hosts, self.settings.llm_max_answer_chars)
        shown: list[str] = []
        raw: list[str] = []

        def show(piece: str) -> None:
            if piece:
                shown.append(piece)
                if on_delta is not None:
                    on_delta(piece)

        messages = self.messages(question, search, lang, instructions)
        stream = self._stream(messages, cancelled)
        try:
            for delta in stream:
                raw.append(delta)
                show(sanitizer.feed(delta))
                if sanitizer.truncated:
                    log.warning("LLM answer cut at %d characters", sanitizer.max_chars)
                    break
        except AnswerCancelled:
            raise
        except Exception as exc:  # any failure of the endpoint: answer without it
            log.warning("LLM call failed (%s: %s); answering extractively", type(exc).__name__, exc)
            if not shown:
                raise AnswerUnusable(warning(WarningCode.LLM_UNAVAILABLE)) from exc
            # part of a checked answer was already shown: finish with what it holds
            sanitizer.warnings.append(warning(WarningCode.LLM_INTERRUPTED))
        finally:
            stream.close()
            RESPONSES.close_mine()  # a stream left early (too long, cancelled) ends upstream
        tail = sanitizer.finish()
        if "".join(raw).strip() == NO_ANSWER:
            return Draft(message("abstain", lang), [], True, mode="llm")
        if not sanitizer.cited:
            raise AnswerUnusable(warning(WarningCode.LLM_NO_VALID_CITATION))
        show(tail)
        text = "".join(shown)
        citations = self.citations(text, search)
        return Draft(text, citations, False, mode="llm", warnings=sanitizer.warnings)

    def passage_citations(self, search: SearchResult) -> list[Citation]:
        """The passages given to the model, numbered as it sees them."""
        return [
            cite(self.index, n, s.passage, s.passage.start_char, s.passage.end_char, s.score)
            for n, s in enumerate(search.passages, start=1)
        ]

    def citations(self, text: str, search: SearchResult) -> list[Citation]:
        """One citation per passage number used: the passage's sentence closest to the
        claim (the answer sentence holding the marker), so a citation is a sentence
        span, not a whole chunk. Numbers stay those the model saw."""
        index = self.index
        used = sorted({int(n) for n in MARKER.findall(text)})
        claims = _claims(text)
        out: list[Citation] = []
        for n in used:
            passage = search.passages[n - 1].passage
            claim = " ".join(c for c in claims if f"[{n}]" in c) or text
            vector = self.embed_query(MARKER.sub("", claim))
            rows = [
                index.sentence_rows[(passage.doc_id, s.start, s.end)] for s in passage.sentences
            ]
            scores = index.sentence_vectors[rows] @ vector
            best = int(np.argmax(scores))
            chosen = passage.sentences[best]
            out.append(cite(index, n, passage, chosen.start, chosen.end, float(scores[best])))
        return out


def _check(cancelled: threading.Event | None) -> None:
    if cancelled is not None and cancelled.is_set():
        raise AnswerCancelled("the caller went away; its answer was abandoned")


_CLAIM_END = re.compile(r"(?<=[.!?。！？؟])\s+|\n+")


def _claims(text: str) -> list[str]:
    """The sentences of an answer text."""
    return [c for c in _CLAIM_END.split(text) if c.strip()]
