"""The FastAPI app: built by ``create_app(settings)``, routes in ``api/routes``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from api import problems
from api.auth import AuthMiddleware
from api.limits import BodyLimitMiddleware, ConcurrencyLimitMiddleware
from api.metrics import MetricsMiddleware
from api.problems import UnexpectedErrorMiddleware
from api.routes import chat, feedback, openai_compat, ops, sources, web
from api.security import SecurityHeadersMiddleware
from api.state import AppState
from rag.config import Settings

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings()
    state = AppState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.try_load()
        yield
        state.close()
        feedback.close(app)

    app = FastAPI(
        title="rag-citations",
        version="0.1.0",
        summary="Questions over a folder of articles; every answer cites exact sentences.",
        lifespan=lifespan,
        # served from installed files by api/routes/web.py: no CDN
        docs_url=None,
        redoc_url=None,
    )
    app.state.rag = state
    problems.install(app)

    for router in (
        chat.router,
        feedback.router,
        openai_compat.router,
        sources.router,
        ops.index,
        ops.probes,
    ):
        app.include_router(router)
    web.mount(app)
    if settings.slack_bot_token and settings.slack_signing_secret:
        _mount_slack(app, state)

    # the last added runs first: security headers, metrics, CORS (preflights carry no
    # key), the key check from the headers (api/auth.py), the body (size, time, text),
    # the in-flight count, then the routes with unexpected errors caught innermost
    app.add_middleware(UnexpectedErrorMiddleware)
    if settings.max_inflight:
        app.add_middleware(ConcurrencyLimitMiddleware, max_inflight=settings.max_inflight)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout
    )
    app.add_middleware(
        AuthMiddleware, settings=settings, limiter=state.limiter, failures=state.auth_failures
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
        )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def _mount_slack(app: FastAPI, state: AppState) -> None:
    """``POST /slack/events``: the Slack Events API (Bolt verifies the signature)."""
    from slack_bolt.adapter.fastapi import SlackRequestHandler

    from api.slack import SlackBot

    bot = SlackBot(state)
    handler = SlackRequestHandler(bot.app)
    app.state.slack = bot

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)
