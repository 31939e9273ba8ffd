"""Request limits: the body (size 413, time 408, text 422), a token-bucket rate limit
(429) and the in-flight cap (503)."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response


class BodyLimitMiddleware:
    """Reads a request's body before any route does, and refuses it with a problem:

    - 413 when it is over ``max_bytes`` (by Content-Length when there is one, else by
      counting what arrives);
    - 408 when it has not all arrived ``timeout`` seconds after the headers (a client
      that declares 100 bytes and sends 10 cannot hold a worker); the connection is
      closed;
    - 422 when a JSON body holds text that cannot be encoded (``unencodable``), so no
      route ever sees it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS", "DELETE"}:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, 413, self._too_large())
            return
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                detail = (
                    f"the request body did not arrive within {self.timeout:g} s ({size} bytes came)"
                )
                await self._refuse(scope, receive, send, 408, detail, close=True)
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, 413, self._too_large(), close=True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if b"json" in headers.get(b"content-type", b""):
            problem = unencodable(body)
            if problem is not None:
                where, detail = problem
                errors = [{"loc": ["body", *where], "msg": detail, "type": "unicode"}]
                response = problem_response(422, detail, scope.get("path"), errors=errors)
                await response(scope, receive, send)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"the request body is over the limit of {self.max_bytes} bytes"

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        detail: str,
        close: bool = False,
    ) -> None:
        headers = {"Connection": "close"} if close else None
        response = problem_response(status, detail, scope.get("path"), headers=headers)
        await response(scope, receive, send)


def unencodable(body: bytes) -> tuple[list[str | int], str] | None:
    """The first string of a JSON body (a value or a key, at any depth) that is not
    text: a lone surrogate (``"\\ud800"`` parses to one, and UTF-8 cannot encode it)
    or U+0000 (C libraries, the embedding model's among them, end a string there).
    Returns where it is (a path of keys and indexes) and a message naming the
    character, or None when every string is text or the body is not JSON at all (the
    route's own validation then answers)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    except RecursionError:  # nested deeper than the parser's stack: never a question
        return [], "the body: JSON nested too deeply to read; send the documented shape"
    stack: list[tuple[list[str | int], object]] = [([], data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            problem = _not_text(value)
            if problem is not None:
                shown = ".".join(str(w) for w in where) or "the body"
                return where, f"{shown}: {problem}"
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = _not_text(key)
                if problem is not None:
                    shown = ".".join(str(w) for w in where) or "the body"
                    return where, f"a key of {shown}: {problem}"
                stack.append(([*where, key], item))
        elif isinstance(value, list):
            stack.extend(([*where, i], item) for i, item in enumerate(value))
    return None


def _not_text(value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = value[exc.start]
        return (
            f"U+{ord(char):04X} at character {exc.start} is a lone surrogate, not text "
            "(an escape like \\ud800 must pair with a low surrogate); send valid Unicode"
        )
    nul = value.find("\x00")
    if nul >= 0:
        return f"U+0000 at character {nul} is not allowed in text"
    return None


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests a minute, bursts up to the
    same number. ``per_minute == 0`` turns it off."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._clock = time.monotonic
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Take one token for ``client``; None when allowed, else seconds to wait."""
        if self.per_minute == 0:
            return None
        now = self._clock()
        with self._lock:
            tokens = self._tokens(client, now)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                if len(self._buckets) > 10000:
                    self._forget_full(now)
                return None
            self._buckets[client] = (tokens, now)
        return self._wait(tokens)

    def blocked(self, client: str) -> int | None:
        """Seconds until ``client`` has a token again, without taking one; None when
        it has one (or the limit is off)."""
        if self.per_minute == 0:
            return None
        with self._lock:
            tokens = self._tokens(client, self._clock())
        return None if tokens >= 1.0 else self._wait(tokens)

    def _tokens(self, client: str, now: float) -> float:
        """The tokens ``client`` has at ``now`` (its bucket refilled since it last
        changed)."""
        tokens, last = self._buckets.get(client, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - last) * self.per_minute / 60.0)

    def _wait(self, tokens: float) -> int:
        """Whole seconds until a bucket holding ``tokens`` has one."""
        return max(1, math.ceil((1.0 - tokens) / (self.per_minute / 60.0)))

    def _forget_full(self, now: float) -> None:
        """Drop clients whose bucket has refilled: they are as good as new."""
        for client in list(self._buckets):
            if self._tokens(client, now) >= self.per_minute:
                del self._buckets[client]


class ConcurrencyLimitMiddleware:
    """Past ``max_inflight`` requests being answered on /v1 at once, answer 503 with
    Retry-After at once instead of queueing until clients time out."""

    def __init__(self, app: ASGIApp, max_inflight: int) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.max_inflight:
            response = problem_response(
                503,
                f"the service is at capacity ({self.max_inflight} requests in progress); "
                "retry shortly",
                scope.get("path"),
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        self.inflight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
