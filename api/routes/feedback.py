"""``POST /v1/feedback``: a thumbs up or down on an answer, with an optional reason,
kept with the question, the answer and its citations (``rag.eval.feedback``), from which
``rag feedback export`` writes eval-set lines."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from api.deps import Owner, Service, State, authorize
from api.problems import ApiProblem, responses
from api.schemas import FeedbackReceipt, FeedbackRequest
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
        if text is None or text[c.start_char : c.end_char] != c.quote or c.start_char < 0:
            raise ApiProblem(
                422,
                f"citation [{c.n}]: the quote is not the text of '{c.source}' at characters "
                f"{c.start_char}-{c.end_char}; rate answers as the service gave them",
            )


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackReceipt,
    responses=responses(401, 413, 422, 429, 503),
)
async def give_feedback(
    body: FeedbackRequest,
    service: Service,
    owner: Owner,
    store: Store,
) -> FeedbackReceipt:
    """Rate an answer: ``up`` or ``down``, with an optional reason. The rating is
    owned as the caller's conversations are (its key, its browser session, or the
    local owner)."""
    question = validate_question(body.question, service.settings.max_question_chars)
    await run_in_threadpool(check_citations, service, body.answer)
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
