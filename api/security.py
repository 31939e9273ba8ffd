"""Security headers on every response, and the web page's browser session cookie.

Every response gets a strict Content-Security-Policy (only this origin: no inline
script or style, no framing), ``X-Content-Type-Options: nosniff`` and a
``Referrer-Policy``. A route that needs another policy sets its own header, which is
then left alone (``/redoc``: ReDoc writes its styles at run time).
"""

from __future__ import annotations

import hashlib
import re
import secrets

from fastapi import Request, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""The Content-Security-Policy of every response (``data:`` images: Swagger UI's icons)."""

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class SecurityHeadersMiddleware:
    """Adds ``HEADERS`` to every HTTP response that does not set them itself (a pure
    ASGI middleware: streamed responses pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


SESSION_COOKIE = "rag_session"
"""The browser session cookie: 128 random bits as 32 hex digits."""
_SESSION_VALUE = re.compile(r"[0-9a-f]{32}")


def session_cookie(request: Request) -> str | None:
    """The request's session cookie when it is well formed, else None."""
    value = request.cookies.get(SESSION_COOKIE)
    return value if value is not None and _SESSION_VALUE.fullmatch(value) else None


def session_owner(cookie: str) -> str:
    """The owner id a session cookie stands for: ``browser:`` and 32 hex digits of its
    SHA-256, so what is stored with a conversation is never the cookie itself."""
    return "browser:" + hashlib.sha256(cookie.encode("ascii")).hexdigest()[:32]


def start_session(request: Request, response: Response, secure: bool) -> None:
    """Give the browser a session cookie (HttpOnly, SameSite=Strict, Path=/, 128 random
    bits) when it has no valid one; ``secure`` adds the Secure attribute (HTTPS)."""
    if session_cookie(request) is not None:
        return
    response.set_cookie(
        SESSION_COOKIE,
        secrets.token_hex(16),
        httponly=True,
        samesite="strict",
        path="/",
        secure=secure,
    )
