"""The data every part of the engine shares: documents, passages, scores, citations,
answers, the one interface of an answerer (and the exceptions by which it gives up or
stops), and the warning codes. Dataclasses, pydantic models, Protocols and an enum: nothing
here reads or writes anything.

Offsets are in characters (Python ``str`` indices) into a source file's text as
``open(path, encoding="utf-8").read()`` returns it; spans are half-open
``[start, end)``; lines are 1-based.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field

Span = tuple[int, int]
"""``(start, end)`` character offsets, half-open."""

MINOR_KINDS: frozenset[str] = frozenset({"heading", "question", "table_header", "code"})
"""Kinds of sentence that say nothing by themselves: quoted only when no other sentence
is (a heading can match a question better than any sentence below it, saying nothing)."""

Terms = tuple[np.ndarray, np.ndarray]
"""A text's latent terms (rag/index/latent.py): ids (int32) and weights (float32)."""


@dataclass(frozen=True)
class Sentence:
    """One sentence of a document (or heading, list item, table row, code block), as
    rag/text/segment.py cuts it."""

    start: int
    end: int
    """``[start, end)`` of its raw text in the file, trimmed of white space."""
    kind: str
    """``statement``, ``question``, ``heading``, ``list_item``, ``table_header``,
    ``table_row`` or ``code`` (``rag.text.segment.Kind``): decided by the document's
    structure, never by length."""
    content: str
    """What a reader is shown and what is embedded and searched: markup dropped,
    entities decoded, lines joined, NFC; a table row with its header
    (``Plan: Family | Monthly fee (EUR): 29``)."""


@dataclass(frozen=True)
class SourceDocument:
    """One file of the corpus, read (rag/index/corpus.py)."""

    doc_id: str
    """Path relative to the corpus folder, with forward slashes: the citation ``source``."""
    path: Path
    text: str
    """The file's exact text (UTF-8, universal newlines): what offsets index into."""
    sha256: str
    """Hex digest of the file's bytes."""
    lang: str
    """ISO 639-1 code of its language, or ``und`` (rag/text/language.py)."""
    title: str
    kind: str = "text"
    """``text``, ``markdown``, ``html`` or ``pdf``."""

    def passage_id(self, start: int, end: int) -> str:
        """The id of this document's passage ``[start, end)``:
        ``<16 hex of sha256(doc_id NUL sha256)>:<start>-<end>``.

        Unique per document (two files with the same bytes get different ids) and
        stable while the file is unchanged (re-indexing keeps the ids, so the vector
        store receives nothing); a rename or an edit gives new ids, so the build
        deletes the old passages and adds the new ones (their vectors from the
        embedding cache, which is keyed by text)."""
        key = hashlib.sha256(f"{self.doc_id}\0{self.sha256}".encode()).hexdigest()[:16]
        return f"{key}:{start}-{end}"


@dataclass(frozen=True)
class Passage:
    """A run of whole sentences of one document (rag/index/chunking.py)."""

    passage_id: str
    """``SourceDocument.passage_id(start, end)``: unique across documents, stable
    while the file is unchanged."""
    doc_id: str
    start_char: int
    end_char: int
    start_line: int
    end_line: int
    text: str
    """Equals the source text at ``[start_char:end_char]``."""
    lang: str
    sentences: tuple[Sentence, ...]
    """The passage's sentences, in order (absolute offsets)."""
    content: str
    """What is embedded and searched: its sentences' ``content``, joined by spaces."""


@dataclass(frozen=True)
class ScoredSentence:
    """One sentence of a passage, scored for a question (rag/query/sentences.py)."""

    start: int
    end: int
    row: int
    """Row of the sentence in the index's sentence vectors."""
    text: str
    """Its raw text in the file (the citation's ``quote``)."""
    evidence: float
    """Cosine similarity plus lexical evidence (what abstention is calibrated on)."""
    score: float
    """``evidence`` plus the latent-terms similarity, less the language's share
    (``ScoringParams.sentence_language_centering``): what orders sentences."""
    kind: str
    """``Sentence.kind``."""
    content: str
    """``Sentence.content``: what a reader is shown."""

    @property
    def minor(self) -> bool:
        """Of a ``MINOR_KINDS`` kind: ranked after every statement."""
        return self.kind in MINOR_KINDS


@dataclass(frozen=True)
class ScoredPassage:
    """A retrieved passage with the scores that ranked it (rag/query/retriever.py)."""

    passage: Passage
    score: float
    """Fused score (higher is better); comparable only within one search."""
    dense: float | None
    """Cosine similarity to the question (less its language share when centring is
    on), when the dense ranking found the passage."""
    lexical: float | None
    """BM25 score, when the lexical ranking found the passage."""
    latent: float | None = None
    """Latent-terms score (rag/index/latent.py), when that ranking found the passage."""


@dataclass
class SearchResult:
    """What one retrieval found for a question: the passages best first, and what the
    answer step reuses (the question's vector, terms and scored sentences)."""

    question: str
    query_vector: np.ndarray
    """The question's embedding (float32, unit length for the bundled model)."""
    passages: list[ScoredPassage]
    """At most ``top_k`` passages, best first."""
    timings_ms: dict[str, float] = field(default_factory=dict)
    """``embed`` (the question's embedding, 0-ish when cached) and ``retrieve``
    (everything after it), in milliseconds."""
    query_terms: Terms | None = None
    """The question's latent terms, when the latent ranking is on."""
    sentences: dict[str, list[ScoredSentence]] = field(default_factory=dict)
    """The scored sentences of the reranked passages, by passage id (the answerer
    reuses them)."""
    lang: str | None = None
    """The question's language, when the caller knew it
    (``ScoringParams.same_language_latent``)."""
    query_tokens: tuple[str, ...] = ()
    """The question's search tokens (``rag.text.segment.tokens(question,
    forms="query")``), computed once per question."""


class Citation(BaseModel):
    """A span of a source file that supports an answer: data built from a passage,
    never text a model made up."""

    n: int
    """The number of its ``[n]`` marker in the answer text."""
    source: str
    """Path relative to the corpus folder."""
    title: str
    start_char: int
    end_char: int
    start_line: int
    end_line: int
    quote: str
    """Equals the source file's text at ``[start_char:end_char]``."""
    lang: str
    score: float
    text: str | None = None
    """What a reader is shown of the quote: HTML entities decoded, tags and Markdown
    markup dropped, lines joined, a table row with its header."""
    url: str | None = None
    """Where the HTTP service shows this span (``/v1/sources/...``); set by the API."""


class Answer(BaseModel):
    """The Answer JSON of ARCHITECTURE.md: what every interface returns."""

    answer: str
    citations: list[Citation]
    abstained: bool
    mode: str = "extractive"
    """``extractive``, ``llm`` or ``extractive-fallback`` (an LLM was configured but
    its answer could not be used)."""
    warnings: list[str] = Field(default_factory=list)
    """Codes of ``WarningCode``, alone or as ``"code: detail"``."""
    conversation_id: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    """``embed``, ``retrieve``, ``answer`` and ``total``, in milliseconds."""


@dataclass
class Draft:
    """An answerer's answer before ``verify()`` (rag/query/citations.py) checks it."""

    text: str
    citations: list[Citation]
    abstained: bool
    mode: str = "extractive"
    warnings: list[str] = field(default_factory=list)
    support: float = 0.0
    """Support score of the best sentence (what abstention compares)."""


class Answerer(Protocol):
    """Turns retrieved passages into a draft answer with citations."""

    def answer(
        self,
        question: str,
        search: SearchResult,
        lang: str,
        on_delta: Callable[[str], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> Draft:
        """Answer from the retrieved passages, in language ``lang`` (ISO 639-1);
        ``on_delta`` receives pieces of the answer text as they are ready (an LLM's
        stream), when the answerer streams. Raises ``AnswerUnusable`` when it cannot
        give an answer the service may show (the pipeline then answers extractively),
        ``AnswerCancelled`` at its next piece once ``cancelled`` is set."""
        ...


class AnswerUnusable(Exception):
    """An answerer could not give a usable answer (an LLM that failed, or that cited
    nothing valid); ``warning`` says why, and the pipeline falls back to the
    extractive answer with that warning."""

    def __init__(self, warning: str) -> None:
        super().__init__(warning)
        self.warning = warning


class AnswerCancelled(Exception):
    """The caller went away (``cancelled`` was set: the HTTP client disconnected), so
    the answerer stopped: its LLM stream is closed, and nothing is answered, stored or
    fallen back to. Control flow between the answering thread and the edge that
    abandoned it, never shown to anyone."""


class WarningCode(StrEnum):
    """Every warning the engine puts in ``Answer.warnings``."""

    LLM_UNAVAILABLE = "llm_unavailable"
    """The LLM endpoint failed, was unreachable or too slow: the answer is extractive."""
    LLM_NO_VALID_CITATION = "llm_no_valid_citation"
    """The LLM's answer cited no passage it was given: the answer is extractive."""
    LLM_INTERRUPTED = "llm_interrupted"
    """The LLM's stream broke after part of a checked answer was shown."""
    LLM_IMAGE_REMOVED = "llm_image_removed"
    """An image was removed from the LLM's answer."""
    LLM_LINK_REMOVED = "llm_link_removed"
    """A link to a host outside the allowlist was removed from the LLM's answer."""
    LLM_HTML_REMOVED = "llm_html_removed"
    """Raw HTML was removed from the LLM's answer (rag/query/sanitize.py)."""
    LLM_SOURCES_REMOVED = "llm_sources_removed"
    """A "Sources:" list the LLM wrote itself, imitating the service's, was removed."""
    LLM_ANSWER_TRUNCATED = "llm_answer_truncated"
    """The LLM's answer passed ``llm_max_answer_chars`` and was cut there."""
    INVALID_CITATION = "invalid_citation"
    """The LLM wrote a marker ``[n]`` that names no passage it was given (detail: it)."""
    CITATION_MISMATCH = "citation_mismatch"
    """A citation's quote is no longer its file's text at its offsets (detail: file)."""
    UNRESOLVED_MARKER = "unresolved_marker"
    """A marker ``[n]`` names no citation, and was removed (detail: the marker)."""
    UNKNOWN_TERM = "unknown_term"
    """The question names a model or product no passage contains (detail: the name)."""
    NO_QUANTITY = "no_quantity"
    """The question asks for a quantity and no retrieved sentence states one."""
    CONVERSATION_NOT_SAVED = "conversation_not_saved"
    """The turn could not be stored (a full disk, a broken database): the answer is
    returned, but a follow-up will not know it."""


def warning(code: WarningCode, detail: str | None = None) -> str:
    """The wire form of a warning: ``code``, or ``"code: detail"``."""
    return code.value if detail is None else f"{code.value}: {detail}"
