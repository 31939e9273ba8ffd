"""A client that leaves cancels its answer: SSE clients of /v1/chat and of
/v1/chat/completions that disconnect after the first event make the service close
its LLM streams (the fake LLM sees each request end), and an unrelated question is
then answered by the LLM."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from rag.config import Settings
from tests.api.conftest import LiveServer, serve
from tests.fake_llm import FakeLLM, Reply, passage_number

pytestmark = pytest.mark.slow

SLOW = "Which chip did DeepSeek use, the H800?"
OTHER = "Where is the harbour of Hangzhou?"
CLIENTS = 20


@pytest.fixture
def llm_live(indexed: Settings, fake_llm: FakeLLM) -> Iterator[LiveServer]:
    def script(request: dict[str, Any]) -> Reply:
        if "harbour" in request["messages"][-1]["content"].rsplit("Question:", 1)[-1]:
            return Reply(f"The harbour is famous [{passage_number(request, 'harbour')}].")
        # a model that takes 100 s to finish its answer
        n = passage_number(request, "H800")
        return Reply(f"DeepSeek used the H800 [{n}]. " + "More words. " * 240, pace=0.25)

    fake_llm.script = script
    server = serve(
        indexed.model_copy(
            update={"llm_base_url": fake_llm.base_url, "llm_model": "fake", "llm_timeout": 10.0}
        )
    )
    yield server
    server.stop()


def leave_after_first_event(server: LiveServer, path: str, body: dict[str, Any]) -> bytes:
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream("POST", path, json=body) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            if chunk.strip():
                return chunk  # leaving the with-blocks closes the connection
    raise AssertionError("no event came")


def wait_until(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat", {"message": SLOW, "stream": True}),
        (
            "/v1/chat/completions",
            {
                "model": "rag-citations",
                "stream": True,
                "messages": [{"role": "user", "content": SLOW}],
            },
        ),
    ],
)
def test_clients_that_leave_close_their_llm_streams(
    llm_live: LiveServer, fake_llm: FakeLLM, path: str, body: dict[str, Any]
) -> None:
    threads = [
        threading.Thread(target=leave_after_first_event, args=(llm_live, path, body))
        for _ in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # every answer ends (no request holds a pipeline) and every stream the service
    # opened is closed, long before the model would finish (100 s each); none ran to
    # its end
    service = llm_live.app.state.rag.service()
    wait_until(lambda: service.busy == 0 and fake_llm.open_streams == 0, seconds=60)
    assert "complete" not in fake_llm.streams
    assert len(fake_llm.requests) <= CLIENTS
    with llm_live.client() as client:
        answer = client.post("/v1/chat", json={"message": OTHER})
    assert answer.status_code == 200 and answer.json()["mode"] == "llm", answer.json()
    assert fake_llm.streams.count("complete") == 1 and fake_llm.open_streams == 0
