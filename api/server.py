"""How ``rag serve`` runs the app under uvicorn: bounded headers, bounded time.

- HTTP/1.1 by h11 (not httptools, which takes headers of any size): the request line
  and headers are capped at ``RAG_MAX_HEADER_BYTES`` (400 and the connection closed
  past it; a 32 MB header is refused after its first 32 KB);
- ``RAG_HEADER_TIMEOUT``: a connection that has not sent a whole request head that
  long after connecting, or after its previous response, gets 408 and is closed
  (uvicorn itself waits forever for the first request, and restarts its keep-alive
  timer on every byte, so a client sending one byte a second would hold a socket);
- ``RAG_KEEP_ALIVE_TIMEOUT``: idle kept-alive connections are closed;
- forwarded headers (X-Forwarded-For, -Proto) are honoured only from
  ``RAG_TRUSTED_PROXIES`` (uvicorn trusts loopback by default, which lets any local
  client pick its rate-limit bucket);
- the body's time and size are the app's (``api.limits.BodyLimitMiddleware``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from rag.config import Settings

REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 37\r\n\r\nthe request headers did not arrive.\r\n"
)


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        deadline = getattr(self, "_head_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._head_deadline = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the head is in: the body has a deadline of its own

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's head

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still being written (pipelining); not idle
        if self.conn.trailing_data[0]:  # part of a head came: say why it is dropped
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of ``rag serve`` (the tests serve through it too)."""
    protocol = type(
        "BoundedH11Protocol", (BoundedH11Protocol,), {"header_timeout": settings.header_timeout}
    )
    values: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": protocol,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
        "log_level": "info",
        "lifespan": "on",
    }
    values.update(overrides)
    return uvicorn.Config(app, **values)
