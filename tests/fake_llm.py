"""A fake OpenAI-compatible LLM server: ``POST /v1/chat/completions`` with and without
streaming, answering from a script and recording every request. Started on loopback
by the tests, so the real llama-index client and its HTTP stack are exercised."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.servers import LiveServer, serve_asgi


@dataclass
class Reply:
    text: str = ""
    status: int = 200
    delay: float = 0.0
    """Seconds to wait before answering (to trip the client's timeout)."""
    piece: int = 7
    """Characters per streamed chunk."""
    pace: float = 0.0
    """Seconds between streamed chunks (a slow model)."""


Script = Callable[[dict[str, Any]], Reply]


def passage_number(request: dict[str, Any], needle: str) -> int:
    """The number the prompt gave to the passage that contains ``needle``."""
    user = request["messages"][-1]["content"]
    for match in re.finditer(r"BEGIN PASSAGE \[(\d+)\][^\n]*\n(.*?)\n----- END", user, re.S):
        if needle in match.group(2):
            return int(match.group(1))
    raise AssertionError(f"no passage with {needle!r} in the prompt")


@dataclass
class FakeLLM:
    script: Script = field(default=lambda request: Reply("NO_ANSWER"))
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: LiveServer | None = None
    streams: list[str] = field(default_factory=list)
    """How each streamed reply ended: "complete", or "abandoned" (the client left)."""
    started: int = 0
    """Streamed replies begun."""

    @property
    def open_streams(self) -> int:
        """Streamed replies being sent right now (a client that closes its request
        ends its stream: the server sees the disconnect)."""
        return self.started - len(self.streams)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.url + "/v1"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            reply = self.script(body)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.status != 200:
                return JSONResponse(
                    {"error": {"message": "scripted failure", "type": "server_error"}},
                    status_code=reply.status,
                )
            if body.get("stream"):
                return StreamingResponse(self._chunks(body, reply), media_type="text/event-stream")
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            )

        return app

    async def _chunks(self, body: dict[str, Any], reply: Reply) -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(data)}\n\n"

        ending = "abandoned"
        self.started += 1
        try:
            yield chunk({"role": "assistant", "content": ""})
            for i in range(0, len(reply.text), reply.piece):
                yield chunk({"content": reply.text[i : i + reply.piece]})
                await asyncio.sleep(reply.pace)
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"
            ending = "complete"
        finally:
            self.streams.append(ending)

    def start(self) -> FakeLLM:
        self.server = serve_asgi(self.app())
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
