"""LLM mode through the HTTP service, with a fake OpenAI-compatible LLM on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from httpx_sse import connect_sse
from openai import OpenAI

from rag.config import Settings
from tests.api.conftest import LiveServer, serve
from tests.fake_llm import FakeLLM, Reply, passage_number

QUESTION = "Which chip did DeepSeek use, the H800?"


@pytest.fixture
def llm_live(indexed: Settings, fake_llm: FakeLLM) -> Iterator[LiveServer]:
    server = serve(
        indexed.model_copy(
            update={"llm_base_url": fake_llm.base_url, "llm_model": "fake", "llm_timeout": 1.0}
        )
    )
    yield server
    server.stop()


def test_sse_streams_the_llm_answer_in_order(llm_live: LiveServer, fake_llm: FakeLLM) -> None:
    fake_llm.script = lambda r: Reply(
        f"DeepSeek used the H800 chip [{passage_number(r, 'H800')}].\n\n"
        "It is a chip under export controls.\n\nMore chips followed.",
        piece=4,
    )  # released a paragraph at a time
    with (
        llm_live.client() as client,
        connect_sse(
            client, "POST", "/v1/chat", json={"message": QUESTION, "stream": True}
        ) as source,
    ):
        events = [(e.event, json.loads(e.data)) for e in source.iter_sse()]
    names = [n for n, _ in events]
    assert names[0] == "citations" and names[-1] == "done" and set(names[1:-1]) == {"delta"}
    done = events[-1][1]
    assert done["mode"] == "llm" and len(names) > 4
    assert "".join(d["text"] for n, d in events if n == "delta") == done["answer"]
    assert all(c["url"].startswith("/v1/sources/") for c in events[0][1] + done["citations"])


def test_llm_failure_is_an_extractive_answer_and_a_metric(
    llm_live: LiveServer, fake_llm: FakeLLM
) -> None:
    fake_llm.script = lambda r: Reply(status=500)
    with llm_live.client() as client:
        response = client.post("/v1/chat", json={"message": QUESTION})
        metrics = client.get("/metrics").text
    assert response.status_code == 200
    answer = response.json()
    assert answer["mode"] == "extractive-fallback" and "llm_unavailable" in answer["warnings"]
    assert "rag_llm_failures_total 1.0" in metrics


def test_openai_route_streams_the_llm_answer_with_citations(
    llm_live: LiveServer, fake_llm: FakeLLM
) -> None:
    fake_llm.script = lambda r: Reply(f"The H800 [{passage_number(r, 'H800')}].")
    client = OpenAI(base_url=llm_live.url + "/v1", api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="rag-citations", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    citations = (chunks[-1].model_extra or {})["citations"]
    [citation] = citations
    assert text.startswith(f"The H800 [{citation['n']}].")
    assert f"Sources:\n[{citation['n']}] notes\\.md, line 3" in text  # no link to notes.md


def test_past_capacity_requests_get_503_at_once(indexed: Settings, fake_llm: FakeLLM) -> None:
    """Slow answers (an LLM taking 1.5 s) fill the service; the next request is told
    so at once instead of waiting."""
    import threading
    import time

    import httpx

    fake_llm.script = lambda r: Reply(f"H800 [{passage_number(r, 'H800')}].", delay=1.5)
    server = serve(
        indexed.model_copy(
            update={
                "llm_base_url": fake_llm.base_url,
                "llm_model": "fake",
                "llm_timeout": 10.0,
                "max_inflight": 2,
            }
        )
    )
    codes: list[int] = []

    def slow() -> None:
        codes.append(
            httpx.post(server.url + "/v1/chat", json={"message": QUESTION}, timeout=30).status_code
        )

    try:
        workers = [threading.Thread(target=slow) for _ in range(2)]
        for w in workers:
            w.start()
        time.sleep(0.5)
        started = time.monotonic()
        refused = httpx.post(server.url + "/v1/chat", json={"message": QUESTION}, timeout=30)
        elapsed = time.monotonic() - started
        health = httpx.get(server.url + "/healthz", timeout=5)
        for w in workers:
            w.join()
    finally:
        server.stop()
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/problem+json"
    assert "at capacity (2 requests" in refused.json()["detail"]
    assert elapsed < 1.0  # not queued behind the slow answers
    assert health.status_code == 200 and codes == [200, 200]


def test_a_system_message_instructs_the_llm_after_the_rules(
    llm_live: LiveServer, fake_llm: FakeLLM
) -> None:
    """A system message reaches the LLM's system prompt, after the service's rules;
    it does not change what is retrieved; no system message, no caller section."""
    fake_llm.script = lambda r: Reply(f"The H800 [{passage_number(r, 'H800')}].")
    client = OpenAI(base_url=llm_live.url + "/v1", api_key="unused", max_retries=0)

    def ask(*system: str) -> tuple[str, list[tuple[str, int]]]:
        messages: list[Any] = [{"role": "system", "content": s} for s in system]
        messages.append({"role": "user", "content": QUESTION})
        completion = client.chat.completions.create(model="rag-citations", messages=messages)
        prompt = fake_llm.requests[-1]["messages"][0]
        assert prompt["role"] == "system"
        cited = [
            (c["source"], c["start_char"]) for c in (completion.model_extra or {})["citations"]
        ]
        return prompt["content"], cited

    instructed, cited = ask("Answer like a pirate.", "Use British spelling.")
    plain, cited_plain = ask()
    assert "caller_instructions" not in plain
    rules = instructed.index("Support every claim")
    assert instructed.index("Answer like a pirate.\n\nUse British spelling.") > rules
    assert cited == cited_plain
