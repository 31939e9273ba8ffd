"""Real uvicorn servers on free loopback ports for tests (the service, and fakes of
outside services that speak their real protocol)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    app: Any
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_asgi(app: Any, config: Callable[..., uvicorn.Config] | None = None) -> LiveServer:
    """Start ``app`` under uvicorn in a thread; returns once it listens. ``config``
    builds the uvicorn Config from the app and keyword arguments (host, port, ...);
    default: uvicorn's own."""
    port = free_port()
    make = config or (lambda app, **kw: uvicorn.Config(app, **kw))
    server = uvicorn.Server(
        make(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return LiveServer(app, f"http://127.0.0.1:{port}", server, thread)
