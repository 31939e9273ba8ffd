"""Who is calling, decided from the headers before any body is read.

``AuthMiddleware`` guards every ``/v1`` route (the feedback route among them), and
with API keys set also ``/metrics`` and the API docs (``/docs``, ``/redoc``, their
assets under ``/vendor``, ``/openapi.json``) unless ``RAG_OPEN_ENDPOINTS`` lists them.
The web page (``/`` and ``/static``) is always open: it asks for the key itself and
sends it with its ``/v1`` requests. It runs before the body is read and before the
in-flight counter, so a client without a valid key costs one header check and never
takes a place of keyed work:

1. an address past ``RAG_AUTH_FAILURES_PER_MINUTE`` failed authentications gets 429
   (whatever key it sends, so keys cannot be guessed faster than that);
2. a missing or wrong key gets 401 and counts as a failure;
3. the admin key works on the admin routes, ``GET /v1/index``, /metrics and the docs,
   elsewhere only with ``RAG_ADMIN_KEY_AS_API_KEY`` (403 otherwise);
4. the caller's requests a minute (``RAG_RATE_LIMIT_PER_MINUTE``): 429 past them.

The caller (``request.state.caller``) is ``key:`` and an HMAC of the key (never the
key), or ``addr:`` and the client address on a service without keys. The client
address is the socket's peer unless ``RAG_TRUSTED_PROXIES`` trusts the proxy that
connected (uvicorn's ProxyHeadersMiddleware then applies X-Forwarded-For first).
Refusals of a request that carries a body close the connection, so an unread body
cannot keep it open.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import RateLimiter
from api.problems import problem_response
from rag.config import Settings

ADMIN_ROUTES = {("POST", "/v1/index")}
"""Routes that need the admin key (when one is set)."""
OPS_ROUTES = {("GET", "/v1/index")}
"""Routes both the admin key and the API keys may use."""
DOCS_PATHS = {"/docs", "/redoc", "/openapi.json"}
"""The API docs' pages and schema (api/routes/web.py)."""
DOCS_ASSETS = "/vendor/"
"""Where Swagger UI's and ReDoc's scripts and styles are served from."""


def identity(key: str) -> str:
    """A caller's stable identity for a key: ``key:`` + 32 hex digits of an HMAC of
    the key (what rate limits and conversation ownership are keyed by; the key itself
    is never stored)."""
    return "key:" + hmac.new(b"rag-citations caller", key.encode(), hashlib.sha256).hexdigest()[:32]


def matches(given: str, keys: list[SecretStr]) -> bool:
    """Whether ``given`` is one of ``keys``, compared with every key in constant time."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.get_secret_value().encode())
    return found


def bearer(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, if any."""
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class AuthMiddleware:
    """See the module doc."""

    def __init__(
        self, app: ASGIApp, settings: Settings, limiter: RateLimiter, failures: RateLimiter
    ) -> None:
        self.app = app
        self.settings = settings
        self.limiter = limiter
        self.failures = failures

    def guarded(self, path: str) -> bool:
        """Whether a request for ``path`` needs a key (see the module doc)."""
        if path.startswith("/v1/"):
            return True
        if not self.settings.api_keys:
            return False
        if path == "/metrics":
            return "metrics" not in self.settings.open_endpoints
        docs = path in DOCS_PATHS or path.startswith(DOCS_ASSETS)
        return docs and "docs" not in self.settings.open_endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is not None:
            status, detail, headers = refusal
            if _has_body(scope):
                headers["Connection"] = "close"
            await problem_response(status, detail, scope["path"], headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> tuple[int, str, dict[str, str]] | None:
        """None when the request may go on (``scope["state"]["caller"]`` set), else
        the refusal: status, detail, headers."""
        settings = self.settings
        address = client_address(scope)
        given = bearer(scope)
        route = (scope["method"], scope["path"])
        if not settings.api_keys:
            caller = "addr:" + address
        else:
            wait = self.failures.blocked(address)
            if wait is not None:
                return too_many_failures(settings, wait)
            admin = settings.admin_key
            is_admin = given is not None and admin is not None and matches(given, [admin])
            if given is None or not (is_admin or matches(given, settings.api_keys)):
                self.failures.retry_after(address)  # one failure spent
                detail = (
                    "this service needs an API key: Authorization: Bearer KEY"
                    if given is None
                    else "the API key is not valid"
                )
                return 401, detail, {"WWW-Authenticate": "Bearer"}
            if (
                is_admin
                and not settings.admin_key_as_api_key
                and route not in ADMIN_ROUTES | OPS_ROUTES
                and scope["path"].startswith("/v1/")
            ):
                return (
                    403,
                    "the admin key is for the admin routes; ask with an API key "
                    "(or set RAG_ADMIN_KEY_AS_API_KEY=true)",
                    {},
                )
            assert given is not None
            caller = identity(given)
        wait = self.limiter.retry_after(caller)
        if wait is not None:
            return _too_many(
                f"rate limit of {settings.rate_limit_per_minute} requests a minute exceeded",
                wait,
            )
        scope.setdefault("state", {})["caller"] = caller
        return None


def too_many_failures(settings: Settings, wait: int) -> tuple[int, str, dict[str, str]]:
    """The refusal of an address past ``auth_failures_per_minute`` failed
    authentications, ``wait`` seconds before it may try again."""
    return _too_many(
        "too many failed authentications from this address "
        f"(limit {settings.auth_failures_per_minute} a minute)",
        wait,
    )


def _too_many(why: str, wait: int) -> tuple[int, str, dict[str, str]]:
    """The 429 refusal: ``why``, and when to retry (also as ``Retry-After``)."""
    return 429, f"{why}; retry in {wait} s", {"Retry-After": str(wait)}


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers") or []:
        if name == b"content-length" and value.strip() not in (b"", b"0"):
            return True
        if name == b"transfer-encoding":
            return True
    return False
