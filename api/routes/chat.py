"""``POST /v1/chat`` (JSON or server-sent events) and the conversations it keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api import answers
from api.deps import Owner, Service, State, authorize
from api.problems import ApiProblem, responses
from api.schemas import (
    CONVERSATION_ID,
    ChatRequest,
    ChatResponse,
    Conversation,
    RetrievedPassage,
    Turn,
)

router = APIRouter(prefix="/v1", tags=["chat"], dependencies=[Depends(authorize)])

ConversationId = Path(pattern=CONVERSATION_ID)

STREAM_DOC = {
    "description": "The Answer JSON, or with stream: server-sent events `citations` "
    '(the citations list), `delta` ({"text": ...}, pieces of the answer) and `done` '
    "(the final Answer JSON)",
    "content": {
        "text/event-stream": {
            "schema": {
                "description": "One event; data is JSON",
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"enum": ["citations", "delta", "done", "error"]},
                    "data": {"type": "string"},
                },
            }
        }
    },
}


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses={200: STREAM_DOC, **responses(401, 404, 408, 413, 422, 429, 503)},
)
async def chat(
    body: ChatRequest, request: Request, state: State, service: Service, owner: Owner
) -> Response:
    """Answer a question with citations; a follow-up when ``conversation_id`` is given
    (one of the caller's conversations: any other id is 404, as if it did not exist)."""
    if body.conversation_id is not None and not await run_in_threadpool(
        service.conversations.exists, body.conversation_id, owner
    ):
        raise ApiProblem(404, f"no conversation '{body.conversation_id}'")
    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if not wants_stream:
        result, search = await answers.answer_turn(
            state, service, body.message, body.conversation_id, body.top_k, owner=owner
        )
        if not body.include_retrieved:
            return Response(result.model_dump_json(), media_type="application/json")
        retrieved = [
            RetrievedPassage(
                source=s.passage.doc_id,
                start_char=s.passage.start_char,
                end_char=s.passage.end_char,
                text=s.passage.text,
                score=round(s.score, 4),
            )
            for s in search.passages
        ]
        full = ChatResponse(**result.model_dump(), retrieved=retrieved)
        return Response(full.model_dump_json(), media_type="application/json")
    events = answers.stream(
        state, service, body.message, body.conversation_id, body.top_k, owner=owner
    )
    first = await anext(events)  # a bad question fails here, as a problem+json response
    return StreamingResponse(
        _sse(first, events), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


async def _sse(first: answers.Event, events: AsyncIterator[answers.Event]) -> AsyncIterator[str]:
    async for kind, payload in answers.chain(first, events):
        if kind == "citations":
            yield answers.sse(kind, [c.model_dump() for c in payload])
        elif kind == "delta":
            yield answers.sse(kind, {"text": payload})
        elif kind == "done":
            yield answers.sse(kind, payload.model_dump())
        else:
            yield answers.sse(kind, payload)


@router.get(
    "/conversations/{conversation_id}",
    response_model=Conversation,
    responses=responses(401, 404, 429, 503),
)
async def get_conversation(
    state: State, service: Service, owner: Owner, conversation_id: str = ConversationId
) -> Conversation:
    """The turns of one of the caller's conversations, oldest first (citations with
    their viewer URLs); any other id is 404, as if it did not exist."""
    turns = await run_in_threadpool(service.conversations.turns, conversation_id, owner)
    if not turns:
        raise ApiProblem(404, f"no conversation '{conversation_id}'")
    shown = []
    for t in turns:
        turn = Turn.model_validate(t)
        citations = answers.with_urls(state, turn.answer.citations)
        shown.append(
            turn.model_copy(
                update={"answer": turn.answer.model_copy(update={"citations": citations})}
            )
        )
    return Conversation(conversation_id=conversation_id, turns=shown)


@router.delete(
    "/conversations/{conversation_id}",
    status_code=204,
    response_class=Response,
    responses=responses(401, 404, 429, 503),
)
async def delete_conversation(
    service: Service, owner: Owner, conversation_id: str = ConversationId
) -> Response:
    """Forget one of the caller's conversations."""
    removed = await run_in_threadpool(service.conversations.delete, conversation_id, owner)
    if not removed:
        raise ApiProblem(404, f"no conversation '{conversation_id}'")
    return Response(status_code=204)
