"""Slow and oversized clients against a real uvicorn on loopback, configured as `rag
serve` configures it (api/server.py), with raw sockets: slow uploads without a key take
no place of keyed work, a slow keyed upload is cut after RAG_BODY_TIMEOUT, headers are
bounded in size and in time."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import httpx
import pytest

from rag.config import Settings
from tests.api.conftest import LiveServer, serve

pytestmark = pytest.mark.slow

KEY = "slow-client-key-0123"
QUESTION = b'{"message": "Which chip did DeepSeek use, the H800?"}'


@pytest.fixture
def keyed(indexed: Settings) -> Iterator[LiveServer]:
    server = serve(
        indexed.model_copy(
            update={
                "api_keys": Settings(api_keys=KEY).api_keys,
                "body_timeout": 1.0,
                "header_timeout": 1.0,
                "auth_failures_per_minute": 0,  # these sockets are many; the limit is elsewhere
                "rate_limit_per_minute": 0,
            }
        )
    )
    yield server
    server.stop()


def port_of(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port_of(server)), timeout=15)
    return sock


def slow_upload(server: LiveServer, key: str | None) -> socket.socket:
    """Headers declaring a 100-byte body, then 10 bytes of it; no more."""
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (
        "POST /v1/chat HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: 100\r\n{auth}\r\n"
    )
    sock = connect(server)
    sock.sendall(head.encode() + b'{"message"')
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def test_slow_uploads_without_a_key_take_no_place_of_keyed_work(keyed: LiveServer) -> None:
    limit = keyed.app.state.rag.settings.max_inflight
    sockets = [slow_upload(keyed, key=None) for _ in range(limit + 16)]
    try:
        with keyed.client(
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        ) as client:
            codes = [client.post("/v1/chat", content=QUESTION).status_code for _ in range(8)]
        assert codes == [200] * 8
        # each was refused at once, from its headers, and its connection closed
        for sock in sockets[:5]:
            reply = read_all(sock)
            assert reply.startswith(b"HTTP/1.1 401"), reply[:80]
    finally:
        for sock in sockets:
            sock.close()


def test_a_slow_keyed_upload_is_cut_after_the_body_timeout(keyed: LiveServer) -> None:
    sockets = [
        slow_upload(keyed, key=KEY) for _ in range(keyed.app.state.rag.settings.max_inflight + 4)
    ]
    try:
        with keyed.client(
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        ) as client:
            # while they dawdle, keyed work goes on: a slow body holds no place
            assert client.post("/v1/chat", content=QUESTION).status_code == 200
        for sock in sockets:
            reply = read_all(sock)  # the server closes it after the 408
            assert reply.startswith(b"HTTP/1.1 408"), reply[:80]
            assert b"did not arrive within 1 s" in reply
    finally:
        for sock in sockets:
            sock.close()


def test_an_oversized_header_is_refused(keyed: LiveServer) -> None:
    sock = connect(keyed)
    try:
        head = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: "
        # the server may close the connection while we are still sending
        with contextlib.suppress(OSError):
            sock.sendall(head + b"a" * (32 * 1024 * 1024) + b"\r\n\r\n")
        reply = read_all(sock)
    finally:
        sock.close()
    assert not reply.startswith(b"HTTP/1.1 200"), reply[:80]
    assert reply == b"" or reply.startswith(b"HTTP/1.1 400"), reply[:80]
    assert httpx.get(keyed.url + "/healthz").status_code == 200


def test_a_header_just_under_the_limit_is_served(keyed: LiveServer) -> None:
    big = "a" * (keyed.app.state.rag.settings.max_header_bytes - 1024)
    assert httpx.get(keyed.url + "/healthz", headers={"X-Big": big}).status_code == 200


def test_headers_that_do_not_arrive_in_time_close_the_connection(keyed: LiveServer) -> None:
    partial = connect(keyed)
    idle = connect(keyed)
    try:
        partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")  # and never the end
        assert read_all(partial).startswith(b"HTTP/1.1 408")
        assert read_all(idle) == b""  # connected, sent nothing: closed without a word
    finally:
        partial.close()
        idle.close()


def test_a_kept_alive_connection_gets_a_deadline_for_its_next_head(keyed: LiveServer) -> None:
    sock = connect(keyed)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # a byte now and then would not help
        assert read_all(sock).startswith(b"HTTP/1.1 408")
    finally:
        sock.close()
