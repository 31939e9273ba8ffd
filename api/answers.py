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

from api.permalinks import quote_hash
from api.state import AppState
from rag.errors import RagError
from rag.query.chat import ChatService
from rag.query.citations import citation_line
from rag.query.conversation import LOCAL_OWNER
from rag.query.pipeline import pieces
from rag.query.sanitize import plain_markdown
from rag.types import Answer, AnswerCancelled, Citation, SearchResult

log = logging.getLogger("api")


def source_url(base: str | None, citation: Citation) -> str:
    """The source viewer at the cited span, as a permalink: ``sha`` is the quote's
    content hash (``api.permalinks``), so the link finds the passage after a re-index
    moved it and says when it changed. Absolute when ``base`` (RAG_PUBLIC_URL) is set."""
    path = (
        f"/v1/sources/{quote(citation.source)}?start={citation.start_char}"
        f"&end={citation.end_char}&sha={quote_hash(citation.quote)}"
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
    instructions: str | None = None,
) -> tuple[Answer, SearchResult]:
    """Answer in a worker thread (embedding and search block), with citation URLs,
    and what retrieval found. ``instructions`` go to the LLM (``ChatService.respond``)."""
    respond = partial(service.respond, history=history, owner=owner, instructions=instructions)
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
    instructions: str | None = None,
) -> AsyncIterator[Event]:
    """``("citations", [Citation])``, ``("delta", str)``... as the engine produces
    them, then ``("done", Answer)``, or ``("error", Problem dict)`` if answering fails
    after the stream began. Bad questions fail before the first event, as a problem.
    When the stream is closed before the end (the client went away), the answering
    thread is told to stop: it closes the LLM's stream at its next delta."""
    # tokenising up to the history limit is CPU work: not on the event loop
    await run_in_threadpool(service.validate, message, history)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    cancelled = threading.Event()

    def listener(kind: str, payload: object) -> None:
        if not cancelled.is_set():
            loop.call_soon_threadsafe(queue.put_nowait, (kind, payload))

    respond = partial(
        service.respond,
        history=history,
        listener=listener,
        owner=owner,
        cancelled=cancelled,
        instructions=instructions,
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
    """The "Sources" list appended to OpenAI-compatible content, as Markdown: file names
    and quotes escaped so they render as the file's text (no link, image or HTML of
    the corpus), each line ending with the service's own link to the source viewer
    (absolute, as the OpenAI-compatible route makes them, as an autolink)."""
    if not citations:
        return ""
    lines = ["", "", "Sources:"]
    for c in citations:
        link = f" <{c.url}>" if c.url else ""
        name = plain_markdown(c.source)
        lines.append(citation_line(c, quote_chars, name=name, escape=plain_markdown) + link)
    return "\n".join(lines)


def rendered_answer(answer: Answer) -> str:
    """The answer text as Markdown for chat front ends: an LLM's answer has already
    been filtered to Markdown (rag/sanitize.py); any other (quotes copied from the
    corpus, a fixed message) is escaped so it renders as its text, markers kept."""
    if answer.mode == "llm" and not answer.abstained:
        return answer.answer
    return plain_markdown(answer.answer, markers={c.n for c in answer.citations})


async def rendered(events: AsyncIterator[Event], llm_streams: bool) -> AsyncIterator[Event]:
    """``events`` with the answer text as ``rendered_answer`` gives it. With an LLM
    (``llm_streams``) the passages come first and the model's filtered text follows as
    it streams (rag/chat.py ``respond``); text after a second "citations" event, or
    from a service without an LLM, is the finished answer sent in pieces: it is held
    and sent escaped, in pieces, before "done"."""
    citations_seen = 0
    held = False
    async for kind, payload in events:
        if kind == "citations":
            citations_seen += 1
        if kind == "delta" and not (llm_streams and citations_seen == 1):
            held = True
            continue
        if kind == "done" and held:
            for piece in pieces(rendered_answer(payload)):
                yield "delta", piece
        yield kind, payload
