"""``/v1/chat/completions`` and ``/v1/models``, compatible with OpenAI's Chat
Completions API so the official clients and chat front ends work unchanged.

Citations travel twice: as ``[n]`` markers plus a "Sources" list in the message
content (what a plain chat UI shows), and as a structured ``citations`` field on the
response, or on the last chunk when streaming.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import StreamingResponse

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
    Usage,
)
from rag.types import Answer

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(authorize)])

STREAM_DOC = {
    "description": "A chat.completion, or with stream: chat.completion.chunk events "
    "ending with `data: [DONE]`; the last chunk carries `citations`",
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


@router.get("/models", response_model=ModelList, responses=responses(401, 429, 503))
async def models(state: State) -> ModelList:
    """The one model this service offers: retrieval with cited answers."""
    return ModelList(
        data=[Model(id=state.settings.model_name, created=0, owned_by="rag-citations")]
    )


def _question_and_history(body: CompletionRequest) -> tuple[str, list[str]]:
    users = [m.text() for m in body.messages if m.role == "user"]
    if body.messages[-1].role != "user" or not users:
        raise ApiProblem(422, "the last message must be a user message with the question")
    return users[-1], users[:-1]


def _words(text: str) -> int:
    return len(text.split())


@router.post(
    "/chat/completions",
    response_model=Completion,
    responses={200: STREAM_DOC, **responses(401, 413, 422, 429, 503)},
)
async def completions(
    body: CompletionRequest, state: State, service: Service, owner: Owner
) -> Response:
    """Answer the last user message; earlier user messages are the conversation."""
    question, history = _question_and_history(body)
    completion_id = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())
    model = state.settings.model_name
    if body.stream:
        events = answers.stream(state, service, question, history=history, owner=owner)
        first = await anext(events)  # a bad question fails here, as a problem+json response
        # the answer text as Markdown a chat front end may render (quotes escaped)
        events = answers.rendered(answers.chain(first, events), service.llm is not None)
        first = await anext(events)
        return StreamingResponse(
            _chunks(completion_id, created, model, first, events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    result, _ = await answers.answer_turn(state, service, question, history=history, owner=owner)
    content = answers.rendered_answer(result) + answers.sources_block(result.citations)
    prompt_words = sum(_words(m.text()) for m in body.messages)
    completion = Completion(
        id=completion_id,
        created=created,
        model=model,
        choices=[CompletionChoice(message=CompletionMessage(content=content))],
        usage=Usage(
            prompt_tokens=prompt_words,
            completion_tokens=_words(content),
            total_tokens=prompt_words + _words(content),
        ),
        citations=result.citations,
        abstained=result.abstained,
        warnings=result.warnings,
    )
    return Response(completion.model_dump_json(), media_type="application/json")


async def _chunks(
    completion_id: str,
    created: int,
    model: str,
    first: answers.Event,
    events: AsyncIterator[answers.Event],
) -> AsyncIterator[str]:
    """Answer text as it comes, then the Sources list, then a last chunk that carries
    the structured citations (the checked ones of the final answer)."""

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
            },
        )

    yield chunk({"role": "assistant", "content": ""})
    result: Answer | None = None
    error: dict[str, Any] | None = None
    async for kind, payload in answers.chain(first, events):
        if kind == "delta":
            yield chunk({"content": payload})
        elif kind == "done":
            result = payload
        elif kind == "error":
            error = payload
    if result is None:
        yield chunk({}, "stop", error=error)
    else:
        sources = answers.sources_block(result.citations)
        if sources:
            yield chunk({"content": sources})
        yield chunk(
            {},
            "stop",
            citations=[c.model_dump() for c in result.citations],
            abstained=result.abstained,
            warnings=result.warnings,
        )
    yield answers.sse(None, "[DONE]")
