"""Every error leaves the service as RFC 9457 ``application/problem+json``.

Engine errors (``rag.errors``) map to a status by class; validation errors list what
was wrong; anything unexpected is logged with its traceback and answered with a
plain 500 that reveals nothing of the code.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag import errors

log = logging.getLogger("api")

MEDIA_TYPE = "application/problem+json"

STATUS_OF: dict[type[errors.RagError], int] = {
    errors.QuestionError: 422,
    errors.ConversationNotFoundError: 404,
    errors.IndexMissingError: 503,
    errors.IndexMismatchError: 503,
    errors.IndexCorruptError: 503,
    errors.StoreUnavailableError: 503,
    errors.DiskFullError: 507,
    errors.IndexLockedError: 409,
    errors.ConfigError: 500,
    errors.CorpusError: 500,
    errors.CitationError: 500,
}


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    """For 422: each invalid field with where it is and what is wrong."""


class ApiProblem(Exception):
    """Raised by routes and dependencies; becomes a problem+json response."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def problem_response(
    status: int,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, instance=instance)
    if errors is not None:
        body.errors = errors
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route can give."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def _status_of(exc: errors.RagError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


class UnexpectedErrorMiddleware:
    """The innermost middleware: an exception no handler took becomes a logged 500
    problem here, before it reaches Starlette's outermost error middleware, which
    re-raises it and makes uvicorn close the connection (a client's next request on
    that kept-alive connection then fails). After the response began nothing can be
    sent: it is re-raised and the connection closes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if started:
                raise
            await unexpected(scope["method"], scope["path"])(scope, receive, send)


def unexpected(method: str, path: str) -> JSONResponse:
    """The 500 problem of an exception nobody expected, logged with its traceback
    (call it from the ``except`` block); the body reveals nothing of the code."""
    log.exception("unexpected error on %s %s", method, path)
    return problem_response(500, "internal error; the service log has the details", path)


def install(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(exc.status, exc.detail, request.url.path, exc.headers)

    async def on_rag_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.RagError)
        status = _status_of(exc)
        if status >= 500:
            log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc)
        return problem_response(status, str(exc), request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, detail, request.url.path, headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        found = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in found)
        return problem_response(422, detail or "invalid request", request.url.path, errors=found)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # what a middleware outside UnexpectedErrorMiddleware raised; the connection
        # is then closed by uvicorn
        return unexpected(request.method, request.url.path)

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(errors.RagError, on_rag_error)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)
