"""``/v1/chat/completions`` and ``/v1/models``, compatible with OpenAI's Chat
Completions API so the official clients and chat front ends work unchanged.

Citations travel three ways: as ``[n]`` markers plus a "Sources" list in the message
content (what a plain chat UI shows); as OpenAI's own ``message.annotations`` of type
``url_citation`` (what clients that render OpenAI's web-search answers show), one per
marker, pointing at it; and as a structured ``citations`` field on the response (on
the last chunk when streaming). Citation URLs are absolute: ``RAG_PUBLIC_URL`` as the
base when it is set, else the URL the request came to.

A ``system`` (or ``developer``) message is the caller's instruction to the LLM that
writes the answer: its text goes after the service's own rules, which come first
(answer only from the passages, cite them). It never reaches retrieval, and without
an LLM (the extractive answerer quotes the passages) it changes nothing.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from api import answers
from api.deps import Owner, Service, State, authorize
from api.problems import ApiProblem, responses
from api.schemas import (
    Completion,
    CompletionChoice,
    CompletionMessage,
    CompletionRequest,
    Model,
    ModelList,
    OpenAIError,
    OpenAIErrorBody,
    UrlCitation,
    UrlCitationAnnotation,
    Usage,
)
from rag.index.chunking import count_tokens
from rag.types import Answer, Citation

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(authorize)])

STREAM_DOC = {
    "description": "A chat.completion, or with stream: chat.completion.chunk events "
    "ending with `data: [DONE]`; the chunk after the content carries `annotations` in "
    "its delta, the last choice chunk `citations`; with `stream_options.include_usage` "
    "a final chunk with `usage` and no choices comes before `[DONE]`",
    "content": {
        "text/event-stream": {
            "schema": {
                "description": "One event: a chat.completion.chunk as JSON, or [DONE]",
                "type": "object",
                "required": ["data"],
                "properties": {"event": {"const": "message"}, "data": {"type": "string"}},
            }
        }
    },
}

MODEL_NOT_FOUND = {
    "model": OpenAIError,
    "description": "The model does not exist (OpenAI's error body, `code: model_not_found`)",
}

# a citation marker of the content; an escaped one (``\[1]``: text of the corpus) is not
_MARKER = re.compile(r"(?<!\\)\[(\d{1,3})\]")


@router.get("/models", response_model=ModelList, responses=responses(401, 429, 503))
async def models(state: State) -> ModelList:
    """The one model this service offers: retrieval with cited answers."""
    return ModelList(
        data=[Model(id=state.settings.model_name, created=0, owned_by="rag-citations")]
    )


def _question_and_history(body: CompletionRequest) -> tuple[str, list[str], str | None]:
    """The question (the last message, a user's), the earlier user messages, and the
    caller's instructions (the ``system`` and ``developer`` messages, joined)."""
    users = [m.text() for m in body.messages if m.role == "user"]
    if body.messages[-1].role != "user" or not users:
        raise ApiProblem(422, "the last message must be a user message with the question")
    system = [m.text() for m in body.messages if m.role in ("system", "developer")]
    instructions = "\n\n".join(t.strip() for t in system if t.strip()) or None
    return users[-1], users[:-1], instructions


def usage(body: CompletionRequest, content: str) -> Usage:
    """Token counts in tiktoken's cl100k_base (the passage budget's tokenizer, which
    ships with llama-index, so no download): ``prompt_tokens`` counts the text of
    every message the client sent (no per-message overhead: this service has no chat
    template), ``completion_tokens`` the content returned (answer and Sources list).
    Not the LLM's own bill: its prompt also holds the passages, and it may count
    with another tokenizer."""
    prompt = sum(count_tokens(m.text()) for m in body.messages)
    completion = count_tokens(content)
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def url_annotations(
    text: str, citations: list[Citation], offset: int = 0
) -> list[UrlCitationAnnotation]:
    """OpenAI ``url_citation`` annotations, one per ``[n]`` marker of ``text`` that
    names one of ``citations``, in the order of the text. ``start_index`` is where
    the marker starts and ``end_index`` where it ends (exclusive, so
    ``content[start_index:end_index]`` is ``[n]``), in characters (Unicode code
    points, as Python indexes a str), plus ``offset`` (where ``text`` starts in the
    content). ``url`` is the citation's permalink, ``title`` its document's title
    (its file name when it has none)."""
    by_n = {c.n: c for c in citations}
    out = []
    for found in _MARKER.finditer(text):
        c = by_n.get(int(found.group(1)))
        if c is None or c.url is None:
            continue
        note = UrlCitationAnnotation(
            url_citation=UrlCitation(
                url=c.url,
                title=c.title or c.source,
                start_index=offset + found.start(),
                end_index=offset + found.end(),
            )
        )
        out.append(note)
    return out


def _base_url(state: State, request: Request) -> str:
    """Where citation URLs point: RAG_PUBLIC_URL, else the URL this request came to
    (its scheme and host as uvicorn saw them, forwarded headers only from trusted
    proxies)."""
    return state.settings.public_url or str(request.base_url)


def _absolute(citations: list[Citation], base: str) -> list[Citation]:
    """The citations with their source-viewer permalinks absolute, under ``base``."""
    return [c.model_copy(update={"url": answers.source_url(base, c)}) for c in citations]


@router.post(
    "/chat/completions",
    response_model=Completion,
    responses={200: STREAM_DOC, 404: MODEL_NOT_FOUND, **responses(401, 413, 422, 429, 503)},
)
async def completions(
    body: CompletionRequest, request: Request, state: State, service: Service, owner: Owner
) -> Response:
    """Answer the last user message; earlier user messages are the conversation, a
    ``system`` message instructs the LLM (module doc). ``model`` must be the one
    ``GET /v1/models`` lists: any other is a 404 as OpenAI gives it."""
    model = state.settings.model_name
    if body.model != model:
        error = OpenAIError(
            error=OpenAIErrorBody(
                message=f"The model `{body.model}` does not exist; this service offers "
                f"`{model}` (GET /v1/models)",
                type="invalid_request_error",
                param="model",
                code="model_not_found",
            )
        )
        return JSONResponse(error.model_dump(), status_code=404)
    question, history, instructions = _question_and_history(body)
    completion_id = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())
    base = _base_url(state, request)
    if body.stream:
        events = answers.stream(
            state, service, question, history=history, owner=owner, instructions=instructions
        )
        first = await anext(events)  # a bad question fails here, as a problem+json response
        # the answer text as Markdown a chat front end may render (quotes escaped)
        events = answers.rendered(answers.chain(first, events), service.llm is not None)
        first = await anext(events)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _chunks(body, completion_id, created, model, base, include_usage, first, events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    result, _ = await answers.answer_turn(
        state, service, question, history=history, owner=owner, instructions=instructions
    )
    citations = _absolute(result.citations, base)
    text = answers.rendered_answer(result)
    content = text + answers.sources_block(citations)
    completion = Completion(
        id=completion_id,
        created=created,
        model=model,
        choices=[
            CompletionChoice(
                message=CompletionMessage(
                    content=content,
                    annotations=url_annotations(text, citations),
                )
            )
        ],
        usage=usage(body, content),
        citations=citations,
        abstained=result.abstained,
        warnings=result.warnings,
    )
    return Response(completion.model_dump_json(), media_type="application/json")


async def _chunks(
    body: CompletionRequest,
    completion_id: str,
    created: int,
    model: str,
    base: str,
    include_usage: bool,
    first: answers.Event,
    events: AsyncIterator[answers.Event],
) -> AsyncIterator[str]:
    """Answer text as it comes, then the Sources list, then a chunk whose delta has
    the annotations of the markers sent (indexes into the whole content), then a last
    choice chunk that carries the structured citations (the checked ones of the final
    answer); with ``include_usage``, every chunk has ``usage: null`` and a final one
    has the usage and no choices, as OpenAI sends them."""
    extra_usage: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return answers.sse(
            None,
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
                **extra_usage,
            },
        )

    yield chunk({"role": "assistant", "content": ""})
    result: Answer | None = None
    error: dict[str, Any] | None = None
    sent: list[str] = []
    async for kind, payload in answers.chain(first, events):
        if kind == "delta":
            sent.append(payload)
            yield chunk({"content": payload})
        elif kind == "done":
            result = payload
        elif kind == "error":
            error = payload
    text = "".join(sent)
    content = text
    if result is None:
        yield chunk({}, "stop", error=error)
    else:
        citations = _absolute(result.citations, base)
        sources = answers.sources_block(citations)
        if sources:
            content += sources
            yield chunk({"content": sources})
        notes = url_annotations(text, citations)
        if notes:
            yield chunk({"annotations": [a.model_dump() for a in notes]})
        yield chunk(
            {},
            "stop",
            citations=[c.model_dump() for c in citations],
            abstained=result.abstained,
            warnings=result.warnings,
        )
    if include_usage:
        yield answers.sse(
            None,
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage(body, content).model_dump(),
            },
        )
    yield answers.sse(None, "[DONE]")
