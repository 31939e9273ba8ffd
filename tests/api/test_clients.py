"""Clients other than the ``openai`` package, unchanged, against the service under
uvicorn on loopback: LangChain's ``ChatOpenAI`` and the ``llm`` command line tool
configured for an OpenAI-compatible model. Each shows the answer with its citations:
the ``[n]`` markers and the Sources list, whose links are the service's absolute
permalinks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_openai import ChatOpenAI

from rag.index.chunking import count_tokens
from rag.index.corpus import read_source_text
from tests.api.conftest import LiveServer

QUESTION = "Which chip did DeepSeek use, the H800?"
LINK = re.compile(r"^\[(\d+)\] .*<(http://127\.0\.0\.1:\d+/v1/sources/[^>]+)>$", re.M)


def cited_links(content: str, live: LiveServer) -> dict[int, str]:
    """The Sources list's permalinks by marker number, each checked: it opens the cited
    span of the file (what a user clicking it sees), and its marker is in the answer."""
    answer, _, sources = content.partition("\n\nSources:\n")
    links = {int(n): url for n, url in LINK.findall(sources)}
    assert links, content
    corpus = live.app.state.rag.settings.corpus_dir
    with live.client() as client:
        for n, url in links.items():
            assert url.startswith(live.url + "/v1/sources/")
            assert f"[{n}]" in answer
            span = client.get(url.removeprefix(live.url)).json()
            text = read_source_text(corpus, span["source"])
            assert span["text"] == text[span["start_char"] : span["end_char"]]
            assert not span["moved"]
    return links


def test_langchain_chat_openai_shows_citations(live: LiveServer) -> None:
    chat = ChatOpenAI(
        model="rag-citations",
        base_url=live.url + "/v1",
        api_key="unused",  # type: ignore[arg-type]
        max_retries=0,
        stream_usage=True,  # stream_options.include_usage (off by default for other hosts)
    )
    reply = chat.invoke([("system", "Be brief."), ("human", QUESTION)])
    assert isinstance(reply, AIMessage) and isinstance(reply.content, str)
    links = cited_links(reply.content, live)
    # the token counts the service sent (cl100k_base), as LangChain reports them
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == count_tokens(reply.content)
    assert reply.usage_metadata["input_tokens"] == count_tokens("Be brief.") + count_tokens(
        QUESTION
    )
    # streamed: the same answer, and the usage chunk
    chunks = list(chat.stream([("human", QUESTION)]))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    streamed = "".join(str(c.content) for c in chunks)
    assert cited_links(streamed, live) == links
    total = sum(chunks[1:], chunks[0])
    assert isinstance(total, AIMessageChunk) and total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] == count_tokens(streamed)
    print(f"\nChatOpenAI answered:\n{reply.content}")


@pytest.fixture
def llm_cli(live: LiveServer, tmp_path: Path) -> Callable[..., str]:
    """Runs ``llm`` with a user folder of its own (LLM_USER_PATH) whose
    extra-openai-models.yaml names the service as the OpenAI-compatible model ``rag``;
    returns its standard output."""
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: rag\n  model_name: rag-citations\n  api_base: {live.url}/v1\n",
        encoding="utf-8",
    )
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path), "OPENAI_API_KEY": ""}

    def run(*args: str) -> str:
        command = [str(Path(sys.executable).with_name("llm")), *args]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def test_llm_cli_shows_citations(live: LiveServer, llm_cli: Callable[..., str]) -> None:
    streamed = llm_cli("-m", "rag", QUESTION)
    links = cited_links(streamed.rstrip("\n"), live)
    plain = llm_cli("-m", "rag", "--no-stream", "-s", "Be brief.", QUESTION)
    assert plain == streamed and cited_links(plain.rstrip("\n"), live) == links
    # what llm logged of the exchange: the answer, the service's token counts, and
    # the annotations of the response, each at its marker
    [logged, *_] = json.loads(llm_cli("logs", "-n", "1", "--json"))
    content = logged["response"]
    assert content == plain.rstrip("\n") and logged["system"] == "Be brief."
    assert logged["output_tokens"] == count_tokens(content)
    assert logged["input_tokens"] == count_tokens("Be brief.") + count_tokens(QUESTION)
    annotations = logged["response_json"]["choices"][0]["message"]["annotations"]
    assert annotations
    for a in annotations:
        cited = a["url_citation"]
        n = int(content[cited["start_index"] : cited["end_index"]].strip("[]"))
        assert cited["url"] == links[n]
    print(f"\nllm answered:\n{streamed}")
