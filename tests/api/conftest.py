"""Real uvicorn servers on free loopback ports, for the HTTP tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.app import create_app
from api.server import uvicorn_config
from rag.config import Settings
from rag.index.build import build
from tests.servers import LiveServer, free_port, serve_asgi

__all__ = ["LiveServer", "free_port", "serve"]


def serve(settings: Settings) -> LiveServer:
    """The service built by ``create_app(settings)``, under uvicorn on loopback as
    ``rag serve`` runs it (api/server.py: h11 with bounded headers, forwarded headers
    only from trusted proxies)."""
    return serve_asgi(create_app(settings), lambda app, **kw: uvicorn_config(app, settings, **kw))


@pytest.fixture
def indexed(settings: Settings) -> Settings:
    """The small test corpus indexed with the deterministic fake embedding (which
    never reaches the real model's abstention threshold, so that is off)."""
    build(settings)
    return settings.model_copy(update={"abstain_threshold": -1.0})


@pytest.fixture
def live(indexed: Settings) -> Iterator[LiveServer]:
    server = serve(indexed)
    yield server
    server.stop()
