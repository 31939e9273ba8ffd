"""Answers written by an LLM behind any OpenAI-compatible endpoint, checked like the
extractive ones.

Opt-in: set ``RAG_LLM_BASE_URL`` and ``RAG_LLM_MODEL``. The retrieved passages go to
the model numbered, fenced with a per-request nonce and labelled as untrusted quoted
material (prompts in ``rag/prompts/``). What comes back is filtered while it streams:
``[n]`` markers that name no passage given to the model are removed, Markdown images,
HTML images and links to hosts outside the allowlist are stripped (the exfiltration
route through rendered answers). Each remaining ``[n]`` becomes a citation of the
sentence of passage ``n`` closest to the claim it follows. An answer with no valid
citation falls back to the extractive answer (``mode: extractive-fallback``); an
unreachable, slow or failing LLM falls back with ``warnings: ["llm_unavailable"]``.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlparse

import numpy as np

from rag.answer import Draft, ExtractiveAnswerer, message
from rag.citations import MARKER, Citation
from rag.config import Settings
from rag.errors import AnswerCancelled
from rag.retriever import ScoredPassage, SearchResult

log = logging.getLogger("rag.llm")

NO_ANSWER = "NO_ANSWER"
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
    return resources.files("rag.prompts").joinpath(name).read_text(encoding="utf-8")


def build_llm(settings: Settings) -> Any:
    """llama-index's OpenAI-compatible LLM for the configured endpoint, or None."""
    if not (settings.llm_base_url and settings.llm_model):
        return None
    from llama_index.llms.openai_like import OpenAILike
    from openai import DefaultHttpxClient

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "unused"
    # OpenAI's own httpx client (its pool and timeouts), which remembers the responses
    # each thread opens (passed through **kwargs: the class does not declare it)
    client: dict[str, Any] = {
        "http_client": DefaultHttpxClient(event_hooks={"response": [_remember]})
    }
    return OpenAILike(
        **client,
        model=settings.llm_model,
        api_base=settings.llm_base_url,
        api_key=key,
        is_chat_model=True,
        timeout=settings.llm_timeout,
        max_retries=0,
        max_tokens=settings.llm_max_tokens,
        temperature=0.1,
        context_window=settings.llm_context_window,
    )


_opened = threading.local()


def _remember(response: Any) -> None:
    """httpx response hook: each thread keeps the responses it opened, so that a
    cancelled answer closes its stream at once (closing llama-index's generator leaves
    the HTTP response to the garbage collector)."""
    responses = getattr(_opened, "responses", None)
    if responses is None:
        responses = _opened.responses = []
    responses.append(response)


def _close_opened() -> None:
    """Close the responses this thread opened (the connection of an unfinished
    stream is dropped: the provider sees its request end)."""
    for response in getattr(_opened, "responses", ()):
        response.close()
    _opened.responses = []


def fence(passages: list[ScoredPassage], nonce: str) -> str:
    """The passages numbered 1..k, each between BEGIN and END lines that carry a nonce
    the passage text cannot know, so no article can close its fence early."""
    blocks = []
    for n, scored in enumerate(passages, start=1):
        p = scored.passage
        blocks.append(
            f"----- BEGIN PASSAGE [{n}] {nonce} (source: {p.doc_id}; untrusted) -----\n"
            f"{p.text.strip()}\n"
            f"----- END PASSAGE [{n}] {nonce} -----"
        )
    return "\n\n".join(blocks)


_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_HTML_IMAGE = re.compile(r"<img\b[^>]*>?", re.IGNORECASE)
_LINK = re.compile(r"\[([^\]]*)\]\(\s*([^)\s]*)[^)]*\)")
_BARE_URL = re.compile(r"\b(?:https?|ftp)://[^\s)\]>]+", re.IGNORECASE)


class Sanitizer:
    """Filters LLM text as it streams. Text is released only up to a whitespace where
    no bracket, parenthesis or tag is open, so a link or marker is never cut in two
    and the released pieces joined equal ``clean(full text)``. Nothing is released
    before the first valid citation marker (an answer that has none falls back)."""

    def __init__(self, valid: set[int], allowed_hosts: set[str]) -> None:
        self.valid = valid
        self.allowed_hosts = allowed_hosts
        self._held = ""
        self._released: list[str] = []
        self.cited = False
        self.warnings: list[str] = []

    def _host_allowed(self, url: str) -> bool:
        host = (urlparse(url).hostname or "").lower()
        return bool(host) and host in self.allowed_hosts

    def clean(self, text: str) -> str:
        def image(match: re.Match[str]) -> str:
            self.warnings.append("llm_image_removed")
            return ""

        def link(match: re.Match[str]) -> str:
            if self._host_allowed(match.group(2)):
                return match.group(0)
            self.warnings.append("llm_link_removed")
            return match.group(1)

        def bare(match: re.Match[str]) -> str:
            if self._host_allowed(match.group(0)):
                return match.group(0)
            self.warnings.append("llm_link_removed")
            return ""

        def marker(match: re.Match[str]) -> str:
            n = int(match.group(1))
            if n in self.valid:
                self.cited = True
                return match.group(0)
            self.warnings.append(f"invalid_citation: [{n}]")
            return ""

        text = _IMAGE.sub(image, text)
        text = _HTML_IMAGE.sub(image, text)
        text = _LINK.sub(link, text)
        text = _BARE_URL.sub(bare, text)
        return MARKER.sub(marker, text)

    @staticmethod
    def _safe_cut(text: str) -> int:
        """Length of the longest prefix that ends at whitespace with nothing open."""
        depth = {"[": 0, "(": 0, "<": 0}
        closing = {"]": "[", ")": "(", ">": "<"}
        cut = 0
        for i, ch in enumerate(text):
            if ch in depth:
                depth[ch] += 1
            elif ch in closing and depth[closing[ch]] > 0:
                depth[closing[ch]] -= 1
            elif ch.isspace() and not any(depth.values()):
                cut = i + 1
        return cut

    def feed(self, delta: str) -> str:
        """Take a piece of model output; return what may be shown now ('' if none)."""
        self._held += delta
        cut = self._safe_cut(self._held)
        if cut == 0:
            return ""
        piece = self.clean(self._held[:cut])
        self._held = self._held[cut:]
        self._released.append(piece)
        if not self.cited:
            return ""
        out = "".join(self._released)
        self._released = []
        return out

    def finish(self) -> str:
        """What is left to show at the end of the stream."""
        if self._held:
            self._released.append(self.clean(self._held))
            self._held = ""
        out = "".join(self._released)
        self._released = []
        return out


class LLMAnswerer:
    """Writes answers with an LLM; falls back to ``extractive`` (see the module doc)."""

    def __init__(
        self,
        llm: Any,
        extractive: ExtractiveAnswerer,
        embed_query: Callable[[str], np.ndarray],
        settings: Settings,
    ) -> None:
        self.llm = llm
        self.extractive = extractive
        self.embed_query = embed_query
        self.settings = settings
        hosts = {h.lower() for h in settings.llm_link_hosts}
        if settings.public_url:
            hosts.add((urlparse(settings.public_url).hostname or "").lower())
        self.allowed_hosts = hosts - {""}

    def messages(self, question: str, search: SearchResult, lang: str) -> list[Any]:
        from llama_index.core.llms import ChatMessage, MessageRole

        system = prompt("answer_system.txt").format(language=LANGUAGES.get(lang, "English"))
        user = prompt("answer_user.txt").format(
            passages=fence(search.passages, secrets.token_hex(6)), question=question
        )
        return [
            ChatMessage(role=MessageRole.SYSTEM, content=system),
            ChatMessage(role=MessageRole.USER, content=user),
        ]

    @staticmethod
    def _fallback(extractive: Draft, warning: str) -> Draft:
        """The extractive answer (already made as the gate), marked as a fallback."""
        return replace(
            extractive, mode="extractive-fallback", warnings=[warning, *extractive.warnings]
        )

    def _stream(self, messages: list[Any], cancelled: threading.Event | None) -> Iterator[str]:
        """The model's text deltas; AnswerCancelled at the next one once ``cancelled``
        is set. The stream is closed either way, which closes the HTTP response: the
        provider sees the request end and stops generating."""
        chunks = self.llm.stream_chat(messages)
        try:
            for chunk in chunks:
                _check(cancelled)
                if chunk.delta:
                    yield chunk.delta
        finally:
            chunks.close()
            _close_opened()

    def answer(
        self,
        question: str,
        search: SearchResult,
        lang: str,
        on_delta: Delta | None = None,
        cancelled: threading.Event | None = None,
    ) -> Draft:
        gate = self.extractive.answer(question, search, lang)
        if gate.abstained:
            return gate  # nothing retrieved supports it: no reason to ask the model
        _check(cancelled)
        valid = set(range(1, len(search.passages) + 1))
        sanitizer = Sanitizer(valid, self.allowed_hosts)
        shown: list[str] = []
        raw: list[str] = []

        def show(piece: str) -> None:
            if piece:
                shown.append(piece)
                if on_delta is not None:
                    on_delta(piece)

        try:
            for delta in self._stream(self.messages(question, search, lang), cancelled):
                raw.append(delta)
                show(sanitizer.feed(delta))
        except AnswerCancelled:
            raise
        except Exception as exc:  # any failure of the endpoint: answer without it
            log.warning("LLM call failed (%s: %s); answering extractively", type(exc).__name__, exc)
            if not shown:
                return self._fallback(gate, "llm_unavailable")
            # part of a checked answer was already shown: finish with what it holds
            sanitizer.warnings.append("llm_interrupted")
        tail = sanitizer.finish()
        if "".join(raw).strip() == NO_ANSWER:
            return Draft(message("abstain", lang), [], True, mode="llm", support=gate.support)
        if not sanitizer.cited:
            return self._fallback(gate, "llm_no_valid_citation")
        show(tail)
        text = "".join(shown)
        citations = self.citations(text, search)
        return Draft(
            text, citations, False, mode="llm", warnings=sanitizer.warnings, support=gate.support
        )

    def passage_citations(self, search: SearchResult) -> list[Citation]:
        """The passages given to the model, numbered as it sees them."""
        return [
            self.extractive.citation_for(
                n, s.passage, s.passage.start_char, s.passage.end_char, s.score
            )
            for n, s in enumerate(search.passages, start=1)
        ]

    def citations(self, text: str, search: SearchResult) -> list[Citation]:
        """One citation per passage number used: the passage's sentence closest to the
        claim (the answer sentence holding the marker), so a citation is a sentence
        span, not a whole chunk. Numbers stay those the model saw."""
        index = self.extractive.index
        used = sorted({int(n) for n in MARKER.findall(text)})
        claims = _claims(text)
        out: list[Citation] = []
        for n in used:
            passage = search.passages[n - 1].passage
            claim = " ".join(c for c in claims if f"[{n}]" in c) or text
            vector = self.embed_query(MARKER.sub("", claim))
            rows = [index.sentence_rows[(passage.doc_id, *span)] for span in passage.sentences]
            scores = index.sentence_vectors[rows] @ vector
            best = int(np.argmax(scores))
            start, end = passage.sentences[best]
            out.append(self.extractive.citation_for(n, passage, start, end, float(scores[best])))
        return out


def _check(cancelled: threading.Event | None) -> None:
    if cancelled is not None and cancelled.is_set():
        raise AnswerCancelled("the client went away; its answer was abandoned")


_CLAIM_END = re.compile(r"(?<=[.!?。！？؟])\s+|\n+")


def _claims(text: str) -> list[str]:
    return [c for c in _CLAIM_END.split(text) if c.strip()]
