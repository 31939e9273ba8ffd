"""The HTTP service on the seeds corpus with the real model (indexed once per session)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from openai import OpenAI

from rag.config import Settings
from tests.api.conftest import LiveServer, free_port, serve
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeds_live(seeds_settings: Settings) -> Iterator[LiveServer]:
    server = serve(seeds_settings)
    yield server
    server.stop()


def test_follow_up_in_a_conversation_retrieves_the_v3_cost(seeds_live: LiveServer) -> None:
    with seeds_live.client() as client:
        first = client.post("/v1/chat", json={"message": "What was DeepSeek V3?"}).json()
        follow = client.post(
            "/v1/chat",
            json={
                "message": "And how much did it cost?",
                "conversation_id": first["conversation_id"],
            },
        ).json()
        turns = client.get(f"/v1/conversations/{first['conversation_id']}").json()["turns"]
    assert any("6 ملايين دولار" in c["quote"] for c in follow["citations"]), follow
    assert turns[1]["standalone_question"] == "DeepSeek V3. And how much did it cost?"


def test_openai_client_gets_the_arabic_citation_for_an_english_question(
    seeds_live: LiveServer,
) -> None:
    client = OpenAI(base_url=seeds_live.url + "/v1", api_key="unused", max_retries=0)
    completion = client.chat.completions.create(
        model="rag-citations",
        messages=[
            {"role": "user", "content": "How much did the final training run of DeepSeek V3 cost?"}
        ],
    )
    citations = (completion.model_extra or {})["citations"]
    content = completion.choices[0].message.content or ""
    arabic = [
        c
        for c in citations
        if c["source"] == "004_1dc07bb43c1f175e.txt" and "6 ملايين دولار" in c["quote"]
    ]
    assert arabic, citations
    assert f"[{arabic[0]['n']}]" in content  # the answer's marker names that citation


def test_unanswerable_questions_abstain_over_http(seeds_live: LiveServer) -> None:
    """Off-topic questions whose support lies well under the threshold (0.039 and
    0.022 under it): the HTTP answer says so in the question's language, citing
    nothing. (tests/rag/test_integration.py covers abstention over more languages.)"""
    questions = {
        "How do I repair a flat bicycle tyre?": "The corpus does not answer",
        "Bagaimana cara membaiki tayar basikal yang pancit?": "Korpus ini tidak menjawab",
    }
    with seeds_live.client() as client:
        for question, says in questions.items():
            answer = client.post("/v1/chat", json={"message": question}).json()
            assert answer["abstained"] and answer["citations"] == [], answer
            assert answer["answer"].startswith(says)


def test_rag_serve_indexes_when_needed_and_answers(seeds_settings: Settings) -> None:
    """`rag serve` from the command line: brings the index up to date, then serves."""
    port = free_port()
    env = {
        **os.environ,
        "RAG_CORPUS_DIR": str(seeds_settings.corpus_dir),
        "RAG_INDEX_DIR": str(seeds_settings.index_dir),
        "RAG_CACHE_DIR": str(seeds_settings.cache_dir),
        "RAG_DATA_DIR": str(seeds_settings.data_dir),
    }
    rag = os.path.join(os.path.dirname(sys.executable), "rag")
    process = subprocess.Popen(
        [rag, "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                time.sleep(0.2)
        assert ready is not None and ready.status_code == 200
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat",
            json={"message": "Siapakah pengasas DeepSeek?"},
            timeout=60,
        ).json()
        assert answer["citations"] and not answer["abstained"]
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "unchanged" in output and "serving on http://127.0.0.1" in output
