"""A fake Slack Web API on loopback: the methods the bot calls, answered as Slack
does, each call recorded; scripted failures (429 with Retry-After, 500) on demand.
It also takes the posts a slash command makes to its ``response_url``."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.servers import LiveServer, serve_asgi

BOT_USER = "UBOT"


@dataclass
class FakeSlack:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)
    """Method -> statuses to answer with before succeeding (429 carries Retry-After: 1)."""
    server: LiveServer | None = None
    _ts: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def api_url(self) -> str:
        assert self.server is not None
        return self.server.url + "/api/"

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/api/{method}")
        async def api(method: str, request: Request) -> JSONResponse:
            raw = (await request.body()).decode()
            if request.headers.get("content-type", "").startswith("application/json"):
                params: dict[str, Any] = json.loads(raw or "{}")
            else:
                params = {k: v[0] for k, v in parse_qs(raw).items()}
            pending = self.failures.get(method)
            if pending:
                status = pending.pop(0)
                self.calls.append((f"{method}!{status}", params))
                headers = {"Retry-After": "1"} if status == 429 else {}
                error = "ratelimited" if status == 429 else "internal_error"
                return JSONResponse({"ok": False, "error": error}, status, headers=headers)
            self.calls.append((method, params))
            if method == "auth.test":
                return JSONResponse(
                    {"ok": True, "user_id": BOT_USER, "bot_id": "BBOT", "team_id": "T1"}
                )
            if method == "chat.postMessage":
                ts = f"{int(time.time())}.{next(self._ts):06d}"
                return JSONResponse({"ok": True, "channel": params.get("channel"), "ts": ts})
            return JSONResponse({"ok": True, "ts": params.get("ts")})

        @app.post("/response/{hook}")
        async def response_url(hook: str, request: Request) -> JSONResponse:
            self.calls.append((f"response:{hook}", json.loads(await request.body())))
            return JSONResponse({"ok": True})

        return app

    def named(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def start(self) -> FakeSlack:
        self.server = serve_asgi(self.app())
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
