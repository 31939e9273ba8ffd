"""What the chat routes share: answering in a worker thread, streaming the engine's
events, citation URLs, metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from functools import partial
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool

from api.state import AppState
from rag.answer import Answer
from rag.chat import LOCAL_OWNER, ChatService
from rag.citations import Citation, citation_line
from rag.errors import AnswerCancelled, RagError
from rag.retriever import SearchResult

log = logging.getLogger("api")


def source_url(base: str | None, citation: Citation) -> str:
    path = (
        f"/v1/sources/{quote(citation.source)}?start={citation.start_char}&end={citation.end_char}"
    )
    return (base.rstrip("/") + path) if base else path


def with_urls(state: AppState, citations: list[Citation]) -> list[Citation]:
    base = state.settings.public_url
    return [c.model_copy(update={"url": source_url(base, c)}) for c in citations]


async def answer_turn(
    state: AppState,
    service: ChatService,
    message: str,
    conversation_id: str | None = None,
    top_k: int | None = None,
    history: list[str] | None = None,
    owner: str = LOCAL_OWNER,
) -> tuple[Answer, SearchResult]:
    """Answer in a worker thread (embedding and search block), with citation URLs,
    and what retrieval found."""
    respond = partial(service.respond, history=history, owner=owner)
    turn = await run_in_threadpool(respond, message, conversation_id, top_k)
    return _finish(state, turn.answer), turn.search


def _finish(state: AppState, result: Answer) -> Answer:
    state.metrics.observe_answer(result.timings_ms, result.mode, result.abstained, result.warnings)
    return result.model_copy(update={"citations": with_urls(state, result.citations)})


Event = tuple[str, Any]


async def chain(first: Event, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
    """``first`` (awaited by the route, so a bad question still fails as a problem
    before the response starts), then the rest of the events."""
    yield first
    async for event in events:
        yield event


async def stream(
    state: AppState,
    service: ChatService,
    message: str,
    conversation_id: str | None = None,
    top_k: int | None = None,
    history: list[str] | None = None,
    owner: str = LOCAL_OWNER,
) -> AsyncIterator[Event]:
    """``("citations", [Citation])``, ``("delta", str)``... as the engine produces
    them, then ``("done", Answer)``, or ``("error", Problem dict)`` if answering fails
    after the stream began. Bad questions fail before the first event, as a problem.
    When the stream is closed before the end (the client went away), the answering
    thread is told to stop: it closes the LLM's stream at its next delta."""
    service.validate(message, history)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    cancelled = threading.Event()

    def listener(kind: str, payload: object) -> None:
        if not cancelled.is_set():
            loop.call_soon_threadsafe(queue.put_nowait, (kind, payload))

    respond = partial(
        service.respond, history=history, listener=listener, owner=owner, cancelled=cancelled
    )
    work = asyncio.ensure_future(run_in_threadpool(respond, message, conversation_id, top_k))
    work.add_done_callback(_abandoned)
    getter: asyncio.Future[Event] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():  # answering finished: drain what is left, then stop
                getter.cancel()
                if queue.empty():
                    break
                continue
            kind, payload = getter.result()
            yield kind, (with_urls(state, payload) if kind == "citations" else payload)
    finally:
        if getter is not None:
            getter.cancel()
        if not work.done():
            cancelled.set()  # the client went away: stop answering for no one
    try:
        turn = work.result()
    except Exception as exc:
        log.exception("answering failed during a stream")
        detail = str(exc) if isinstance(exc, RagError) else "internal error"
        yield "error", {"title": "Internal Server Error", "status": 500, "detail": detail}
        return
    yield "done", _finish(state, turn.answer)


def _abandoned(work: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of an answer nobody awaits any more (its client left)."""
    if not work.cancelled() and isinstance(work.exception(), AnswerCancelled):
        log.info("an answer was abandoned: its client went away")


def sse(event: str | None, data: object) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in payload.split("\n")) + "\n"


def sources_block(citations: list[Citation], quote_chars: int = 200) -> str:
    """The "Sources" list appended to OpenAI-compatible content."""
    if not citations:
        return ""
    lines = ["", "", "Sources:"]
    for c in citations:
        link = f" <{c.url}>" if c.url else ""
        lines.append(citation_line(c, quote_chars) + link)
    return "\n".join(lines)
