"""``POST /v1/feedback``: a thumbs up or down on an answer, with an optional reason,
kept with the question, the answer and its citations (``rag.eval.feedback``), from which
``rag feedback export`` writes eval-set lines."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from api.deps import Owner, Service, State, authorize
from api.problems import ApiProblem, responses
from api.schemas import FeedbackReceipt, FeedbackRequest
from rag.errors import ConversationNotFoundError
from rag.eval.feedback import FeedbackStore, store_path
from rag.query.chat import ChatService
from rag.query.pipeline import validate_question
from rag.types import Answer

router = APIRouter(prefix="/v1", tags=["feedback"], dependencies=[Depends(authorize)])

_opening = threading.Lock()


def get_store(request: Request, state: State) -> FeedbackStore:
    """The app's feedback store, opened on first use."""
    store: FeedbackStore | None = getattr(request.app.state, "feedback", None)
    if store is None:
        with _opening:
            store = getattr(request.app.state, "feedback", None)
            if store is None:
                store = FeedbackStore(store_path(state.settings.data_dir))
                request.app.state.feedback = store
    return store


Store = Annotated[FeedbackStore, Depends(get_store)]


def close(app: FastAPI) -> None:
    store: FeedbackStore | None = getattr(app.state, "feedback", None)
    if store is not None:
        store.close()


def check_citations(service: ChatService, answer: Answer) -> None:
    """Every citation of a rated answer must be what the service cites: a file of the
    index, unchanged since it was indexed (by content hash), whose text at the
    citation's offsets is its quote (422 names the first that is not), so that
    exported eval lines point at real passages."""
    corpus = service.settings.corpus_dir.resolve()
    documents = service.pipeline.index.manifest["documents"]
    for c in answer.citations:
        # the manifest first: a name it lacks is never joined onto a path
        if c.source not in documents or not (corpus / c.source).resolve().is_relative_to(corpus):
            raise ApiProblem(422, f"citation [{c.n}]: no source '{c.source}' in the index")
        text = service.sources.get(c.source, documents[c.source]["sha256"])
        within = text is not None and 0 <= c.start_char <= c.end_char <= len(text)
        if text is None or not within or text[c.start_char : c.end_char] != c.quote:
            raise ApiProblem(
                422,
                f"citation [{c.n}]: the quote is not the text of '{c.source}' at characters "
                f"{c.start_char}-{c.end_char}; rate answers as the service gave them",
            )


def _spans(answer: dict[str, Any]) -> list[tuple[object, object, object]]:
    return [(c["source"], c["start_char"], c["end_char"]) for c in answer.get("citations", [])]


def check_conversation(
    service: ChatService, conversation_id: str, owner: str, answer: Answer
) -> None:
    """A rating that names a conversation rates one of its answers: the conversation
    must be the caller's (ConversationNotFoundError, 404, exactly as a missing one
    otherwise), and the rated answer one it gave, by text and cited spans (422 when
    not), so that nobody rates, and exports as eval data, answers never given."""
    turns = service.conversations.turns(conversation_id, owner)
    if not turns:
        raise ConversationNotFoundError(conversation_id)
    given = _spans(answer.model_dump())
    for turn in turns:
        stored = turn["answer"]
        if (
            isinstance(stored, dict)
            and stored.get("answer") == answer.answer
            and _spans(stored) == given
        ):
            return
    raise ApiProblem(
        422,
        f"the rated answer is not an answer of conversation {conversation_id}; rate answers "
        "as the service gave them",
    )


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackReceipt,
    responses=responses(401, 404, 413, 422, 429, 503),
)
async def give_feedback(
    body: FeedbackRequest,
    service: Service,
    owner: Owner,
    store: Store,
) -> FeedbackReceipt:
    """Rate an answer: ``up`` or ``down``, with an optional reason. The rating is
    owned as the caller's conversations are (its key, its browser session, or the
    local owner); with a ``conversation_id``, the conversation must be the caller's
    (else 404) and the answer one it gave (else 422)."""
    question = validate_question(body.question, service.settings.max_question_chars)
    await run_in_threadpool(check_citations, service, body.answer)
    if body.conversation_id is not None:
        await run_in_threadpool(
            check_conversation, service, body.conversation_id, owner, body.answer
        )
    item = await run_in_threadpool(
        store.add,
        question,
        body.answer,
        body.rating,
        body.reason,
        body.conversation_id,
        owner,
    )
    return FeedbackReceipt(id=item.id, created=item.created)
