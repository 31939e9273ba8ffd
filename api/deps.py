"""The dependencies routes declare, as ``Annotated`` aliases, in one place."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from api.problems import ApiProblem
from api.security import session_cookie, session_owner
from api.state import AppState
from rag.query.chat import ChatService

_bearer = HTTPBearer(auto_error=False, description="One of RAG_API_KEYS, when set")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.rag
    return state


State = Annotated[AppState, Depends(get_state)]


def browser_session(request: Request) -> str | None:
    """Who the web page's caller is when the service has no API keys: the owner id of
    the browser session (``browser:`` + 32 hex digits, a hash of the ``rag_session``
    cookie that ``GET /`` sets; see ``api.security``). None when API keys are set (the
    key identifies the caller then) or the request carries no valid session cookie
    (an HTTP client other than the page)."""
    state: AppState = request.app.state.rag
    if state.settings.api_keys:
        return None
    cookie = session_cookie(request)
    return session_owner(cookie) if cookie is not None else None


def get_service(state: State) -> ChatService:
    return state.service()


Service = Annotated[ChatService, Depends(get_service)]


def _matches(given: str, keys: list[SecretStr]) -> bool:
    # compare with every key in constant time, so timing tells nothing
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.get_secret_value().encode())
    return found


def authorize(request: Request, state: State, credentials: Credentials) -> str:
    """Check the API key when keys are configured, then the rate limit of the caller
    (its key, or its address without keys). Returns who the caller is."""
    keys = state.settings.api_keys
    given = credentials.credentials if credentials is not None else None
    if keys:
        if given is None:
            raise ApiProblem(
                401,
                "this service needs an API key: Authorization: Bearer KEY",
                {"WWW-Authenticate": "Bearer"},
            )
        admin = state.settings.admin_key
        if not _matches(given, keys + ([admin] if admin is not None else [])):
            raise ApiProblem(401, "the API key is not valid", {"WWW-Authenticate": "Bearer"})
        caller = "key:" + hmac.new(b"rate", given.encode(), "sha256").hexdigest()[:16]
    else:
        caller = "addr:" + (request.client.host if request.client else "unknown")
    wait = state.limiter.retry_after(caller)
    if wait is not None:
        raise ApiProblem(
            429,
            f"rate limit of {state.settings.rate_limit_per_minute} requests a minute "
            f"exceeded; retry in {wait} s",
            {"Retry-After": str(wait)},
        )
    return caller


Caller = Annotated[str, Depends(authorize)]


def require_admin(state: State, credentials: Credentials, caller: Caller) -> None:
    """``POST /v1/index`` needs the admin key; with no admin key configured it is open
    only on a service without API keys (a local, single-user service)."""
    admin = state.settings.admin_key
    if admin is None:
        if state.settings.api_keys:
            raise ApiProblem(403, "re-indexing over HTTP is off: RAG_ADMIN_KEY is not set")
        return
    given = credentials.credentials if credentials is not None else ""
    if not _matches(given, [admin]):
        raise ApiProblem(403, "re-indexing needs the admin key")


Admin = Annotated[None, Depends(require_admin)]
