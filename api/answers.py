"""What the chat routes share: answering in a worker thread, citation URLs, metrics,
and cutting an answer into stream pieces."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool

from api.state import AppState
from rag.answer import Answer
from rag.chat import ChatService
from rag.citations import Citation

_PIECE = re.compile(r"\S+\s*|\s+")
PIECE_CHARS = 48


def source_url(base: str | None, citation: Citation) -> str:
    path = (
        f"/v1/sources/{quote(citation.source)}?start={citation.start_char}&end={citation.end_char}"
    )
    return (base.rstrip("/") + path) if base else path


async def answer(
    state: AppState,
    service: ChatService,
    message: str,
    conversation_id: str | None = None,
    top_k: int | None = None,
    history: list[str] | None = None,
) -> Answer:
    """Answer in a worker thread (embedding and search block), with citation URLs."""
    turn = await run_in_threadpool(service.respond, message, conversation_id, top_k, history)
    result = turn.answer
    state.metrics.observe_answer(result.timings_ms, result.mode, result.abstained)
    base = state.settings.public_url
    cited = [c.model_copy(update={"url": source_url(base, c)}) for c in result.citations]
    return result.model_copy(update={"citations": cited})


def pieces(text: str, size: int = PIECE_CHARS) -> Iterator[str]:
    """The text in pieces of whole words, about ``size`` characters each; joined
    they give the text back exactly."""
    buffer = ""
    for match in _PIECE.finditer(text):
        buffer += match.group()
        if len(buffer) >= size:
            yield buffer
            buffer = ""
    if buffer:
        yield buffer


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
        text = " ".join(c.quote.split())
        if len(text) > quote_chars:
            text = text[: quote_chars - 1] + "…"
        where = (
            f"line {c.start_line}"
            if c.start_line == c.end_line
            else f"lines {c.start_line}-{c.end_line}"
        )
        link = f" <{c.url}>" if c.url else ""
        lines.append(f'[{c.n}] {c.source}, {where}: "{text}"{link}')
    return "\n".join(lines)
