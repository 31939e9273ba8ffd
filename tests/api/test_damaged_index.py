"""A damaged index is a 503 that names the file, not a 500."""

from __future__ import annotations

import httpx

from rag.config import Settings
from rag.index.build import build
from tests.api.conftest import serve


def test_a_damaged_index_is_a_503_naming_the_file(settings: Settings) -> None:
    version = build(settings).version
    (settings.index_dir / "versions" / version / "sentences.npy").write_bytes(b"garbled")
    server = serve(settings)
    try:
        chat = httpx.post(server.url + "/v1/chat", json={"message": "Which chip?"}, timeout=30)
        assert chat.status_code == 503
        assert chat.headers["content-type"].startswith("application/problem+json")
        assert "sentences.npy" in chat.json()["detail"]
        assert "rag index --rebuild" in chat.json()["detail"]
        ready = httpx.get(server.url + "/readyz", timeout=30)
        assert ready.status_code == 503 and "sentences.npy" in ready.json()["detail"]
    finally:
        server.stop()
