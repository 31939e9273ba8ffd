"""The dependencies routes declare, as ``Annotated`` aliases, in one place."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from api.auth import bearer, client_address, matches, too_many_failures
from api.problems import ApiProblem
from api.security import session_cookie, session_owner
from api.state import AppState
from rag.query.chat import ChatService
from rag.query.conversation import LOCAL_OWNER

# documents the scheme in OpenAPI; the key itself is checked by api.auth.AuthMiddleware
_bearer = HTTPBearer(auto_error=False, description="One of RAG_API_KEYS, when set")


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


def authorize(request: Request, _: Annotated[object, Depends(_bearer)]) -> str:
    """Who the caller is, as api.auth.AuthMiddleware established it from the headers
    (the key was checked and the rate limit taken before the body was read)."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, str):
        raise ApiProblem(401, "this route needs an API key", {"WWW-Authenticate": "Bearer"})
    return caller


Caller = Annotated[str, Depends(authorize)]


def conversation_owner(request: Request, caller: Caller) -> str:
    """Who owns the conversations (and the ratings) this request reads and writes:
    the API key's identity (``key:`` + an HMAC of the key) when keys are set; without
    keys, the browser session's owner id when the web page's cookie is there
    (``browser_session``), else everyone on the service is one owner, ``local`` (the
    command line's too). Slack threads are owned by their own ``slack:`` ids, which no
    HTTP caller can have."""
    if caller.startswith("key:"):
        return caller
    return browser_session(request) or LOCAL_OWNER


Owner = Annotated[str, Depends(conversation_owner)]


def require_admin(request: Request, state: State, caller: Caller) -> None:
    """``POST /v1/index`` needs the admin key; with no admin key configured it is open
    only on a service without API keys (a local, single-user service)."""
    admin = state.settings.admin_key
    if admin is None:
        if state.settings.api_keys:
            raise ApiProblem(403, "re-indexing over HTTP is off: RAG_ADMIN_KEY is not set")
        return
    if not matches(bearer(request.scope) or "", [admin]):
        address = client_address(request.scope)
        wait = state.auth_failures.blocked(address)
        if wait is not None:  # admin key guesses count as failed authentications too
            raise ApiProblem(*too_many_failures(state.settings, wait))
        state.auth_failures.retry_after(address)
        raise ApiProblem(403, "re-indexing needs the admin key")


Admin = Annotated[None, Depends(require_admin)]
