"""Text that cannot be encoded (a lone surrogate escape such as ``"\\ud800"``, U+0000)
in any JSON string of any route is a 422 naming the problem, and the kept-alive
connection serves the next request."""

from __future__ import annotations

import json
import socket

import pytest

from tests.api.conftest import LiveServer

pytestmark = pytest.mark.slow

CHAT = '{{"message": "Who founded DeepSeek? {bad}"}}'
BODIES = {
    # route, raw JSON (escapes as a client would send them), where the problem is
    "high surrogate in the question": ("/v1/chat", CHAT.format(bad="\\ud800"), "message"),
    "low surrogate in the question": ("/v1/chat", CHAT.format(bad="\\udfff"), "message"),
    "reversed pair": ("/v1/chat", CHAT.format(bad="\\udc00\\ud800"), "message"),
    "NUL in the question": ("/v1/chat", CHAT.format(bad="\\u0000"), "message"),
    "surrogate in a conversation id": (
        "/v1/chat",
        '{"message": "Who founded DeepSeek?", "conversation_id": "ab\\ud83d"}',
        "conversation_id",
    ),
    "surrogate in an OpenAI message": (
        "/v1/chat/completions",
        '{"model": "rag-citations", "messages": [{"role": "user", "content": "Hi"}, '
        '{"role": "user", "content": "Who founded DeepSeek? \\ud800"}]}',
        "messages.1.content",
    ),
    "surrogate in a content part": (
        "/v1/chat/completions",
        '{"model": "rag-citations", "messages": [{"role": "user", "content": '
        '[{"type": "text", "text": "\\udbff?"}]}]}',
        "messages.0.content.0.text",
    ),
    "surrogate in an unknown field's key": (
        "/v1/chat/completions",
        '{"model": "rag-citations", "\\ud800x": 1, '
        '"messages": [{"role": "user", "content": "Hi"}]}',
        "a key of the body",
    ),
}


def exchange(sock: socket.socket, path: str, body: bytes) -> tuple[int, bytes]:
    """One request on a kept-alive connection: the status and the body."""
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        rest += chunk
    return int(head.split(b" ")[1]), rest[:length]


@pytest.mark.parametrize("name", BODIES)
def test_unencodable_text_is_422_and_the_connection_stays_usable(
    live: LiveServer, name: str
) -> None:
    path, raw, where = BODIES[name]
    port = int(live.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for _ in range(3):
            status, body = exchange(sock, path, raw.encode())
            assert status == 422, body
            problem = json.loads(body)
            assert where in problem["detail"]
            assert "surrogate" in problem["detail"] or "U+0000" in problem["detail"]
            good = json.dumps({"message": "Who founded DeepSeek?"}).encode()
            status, body = exchange(sock, "/v1/chat", good)
            assert status == 200, body


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/completions"])
def test_json_nested_too_deeply_is_422_and_the_connection_stays_usable(
    live: LiveServer, path: str
) -> None:
    deep = ("[" * 5000 + "]" * 5000).encode()  # far under the body limit
    raw = b'{"message": "Who founded DeepSeek?", "x": ' + deep + b"}"
    port = int(live.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        status, body = exchange(sock, path, raw)
        assert status == 422, body
        assert "nested too deeply" in json.loads(body)["detail"]
        good = json.dumps({"message": "Who founded DeepSeek?"}).encode()
        status, body = exchange(sock, "/v1/chat", good)
        assert status == 200, body
