"""Real uvicorn servers on free loopback ports, for the HTTP tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from rag.config import Settings
from rag.indexer import build


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    app: FastAPI
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(settings: Settings) -> LiveServer:
    """Start ``create_app(settings)`` under uvicorn in a thread; returns once it listens."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return LiveServer(app, f"http://127.0.0.1:{port}", server, thread)


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
