"""Request and response bodies of the HTTP API (the Answer JSON is the engine's own)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.types import Answer, Citation

CONVERSATION_ID = r"^[A-Za-z0-9._:-]{1,128}$"


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(
        # documented, and enforced by the engine with a message that says what is wrong
        json_schema_extra={"minLength": 1, "pattern": r"\S"},
        description="The question; a follow-up when conversation_id is given. At most "
        "RAG_MAX_QUESTION_CHARS characters (422 names the limit)",
    )
    conversation_id: str | None = Field(
        default=None,
        pattern=CONVERSATION_ID,
        description="Continue one of your conversations: an id this service returned "
        "to you (any other id is 404, as if it did not exist). Omit it to start one",
    )
    top_k: int | None = Field(default=None, ge=1, le=50, description="Passages to retrieve")
    include_retrieved: bool = Field(
        default=False,
        description="Add the retrieved passages (source, offsets, text, score) to the "
        "answer: what `rag eval --against` needs to score retrieval",
    )
    stream: bool = Field(
        default=False,
        description="Server-sent events: citations, delta..., done (also with "
        "Accept: text/event-stream)",
    )


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str | None = Field(
        default=None, pattern=CONVERSATION_ID, description="The answer's conversation"
    )
    question: str = Field(
        min_length=1,
        json_schema_extra={"pattern": r"\S"},
        description="The question as asked (at most RAG_MAX_QUESTION_CHARS characters)",
    )
    answer: Answer = Field(description="The Answer JSON being rated, as the service gave it")
    rating: Literal["up", "down"]
    reason: str | None = Field(default=None, max_length=2000, description="Why, in a few words")


class FeedbackReceipt(BaseModel):
    id: int
    """Counts from 1."""
    created: float
    """Unix seconds."""


class RetrievedPassage(BaseModel):
    source: str
    start_char: int
    end_char: int
    text: str
    score: float


class ChatResponse(Answer):
    """The Answer JSON; ``retrieved`` only when the request asked for it."""

    retrieved: list[RetrievedPassage] | None = None


class Turn(BaseModel):
    n: int
    question: str
    standalone_question: str
    answer: Answer
    created: float


class Conversation(BaseModel):
    conversation_id: str
    turns: list[Turn]


class Source(BaseModel):
    source: str
    title: str
    lang: str
    passages: int
    sha256: str


class SourceSpan(BaseModel):
    source: str
    title: str
    lang: str
    start_char: int
    end_char: int
    start_line: int
    end_line: int
    text: str
    """The file's text at [start_char:end_char] (``view`` raw), or what a reader sees of
    it (``view`` display)."""
    before: str
    """Up to ``context`` characters before the span (in the same view)."""
    after: str
    """Up to ``context`` characters after it (in the same view)."""
    sha: str
    """The permalink hash of the file's text at [start_char:end_char] (first 16 hex
    digits of its UTF-8 SHA-256)."""
    moved: bool = False
    """True when a permalink's passage was found away from the link's offsets (the file
    was edited since): ``start_char`` and ``end_char`` say where it is now."""
    view: Literal["raw", "display"] = "raw"
    """``raw``: ``text``, ``before`` and ``after`` are the file's text; ``display``: the
    document as a reader sees it (an HTML or Markdown file without its markup)."""


class IndexStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: str | None
    build: dict[str, Any]


class Health(BaseModel):
    status: str
    index_version: str | None = None
    problem: str | None = None
    """Ready, but a newer published version could not be opened (a damaged index or
    CURRENT): the loaded version keeps serving, and this says what is wrong."""


# OpenAI Chat Completions (the subset chat front ends use; unknown fields are ignored)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if self.content is None:
            return ""
        return " ".join(p.text for p in self.content if p.type == "text" and p.text)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False
    """A last chunk with ``usage`` and no choices before ``data: [DONE]``."""


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(description="The model GET /v1/models lists; any other is 404")
    messages: list[ChatMessage] = Field(
        min_length=1,
        description="The last one is the question (a user message); earlier user "
        "messages are the conversation; system and developer messages instruct the LLM",
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(
        None,
        description="How many choices to make: one (an answer quotes the documents; a "
        "second would be the same answer). Unset, null or 1; any other n is refused "
        "(422), not silently answered with one choice",
    )

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int | None) -> int | None:
        if n is not None and n != 1:
            raise ValueError(f"n must be 1 (this service gives one choice per answer), got {n}")
        return n


class UrlCitation(BaseModel):
    url: str
    """The citation's permalink (absolute)."""
    title: str
    start_index: int
    """Where the ``[n]`` marker starts in the content (characters)."""
    end_index: int
    """Where it ends, exclusive: ``content[start_index:end_index]`` is ``[n]``."""


class UrlCitationAnnotation(BaseModel):
    """OpenAI's ``url_citation`` message annotation, as its web-search answers have."""

    type: Literal["url_citation"] = "url_citation"
    url_citation: UrlCitation


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """An error as OpenAI's API gives it (only for an unknown ``model``; every other
    error of the service is problem+json)."""

    error: OpenAIErrorBody


class CompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    annotations: list[UrlCitationAnnotation] = []
    """One per citation marker of ``content``."""


class CompletionChoice(BaseModel):
    index: int = 0
    message: CompletionMessage
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Completion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    citations: list[Citation]
    """The same citations as the [n] markers and the Sources list of the content."""
    abstained: bool
    warnings: list[str] = []


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]
