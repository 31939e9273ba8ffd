"""The official ``openai`` client, unchanged, against the service on loopback."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openai import NotFoundError, OpenAI, UnprocessableEntityError

from rag.config import Settings
from rag.index.chunking import count_tokens
from rag.index.corpus import read_source_text
from rag.query.sanitize import plain_markdown
from tests.api.conftest import LiveServer, serve

QUESTION = "Which chip did DeepSeek use, the H800?"


def client_for(live: LiveServer) -> OpenAI:
    return OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0)


def test_models_lists_the_service(live: LiveServer) -> None:
    models = client_for(live).models.list()
    assert [m.id for m in models.data] == ["rag-citations"]


def test_completion_carries_markers_sources_and_structured_citations(live: LiveServer) -> None:
    settings = live.app.state.rag.settings
    completion = client_for(live).chat.completions.create(
        model="rag-citations",
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": QUESTION},
        ],
    )
    content = completion.choices[0].message.content or ""
    citations = (completion.model_extra or {})["citations"]
    assert citations and completion.choices[0].finish_reason == "stop"
    answer, _, sources = content.partition("\n\nSources:\n")
    for c in citations:
        assert f"[{c['n']}]" in answer
        assert f"[{c['n']}] {plain_markdown(c['source'])}, line" in sources  # escaped
        text = read_source_text(settings.corpus_dir, c["source"])
        assert text[c["start_char"] : c["end_char"]] == c["quote"]
        assert c["url"].startswith(live.url + "/v1/sources/")


def test_streamed_completion_ends_with_citations(live: LiveServer) -> None:
    stream = client_for(live).chat.completions.create(
        model="rag-citations", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    citations = (last.model_extra or {})["citations"]
    assert citations and all(f"[{c['n']}]" in text for c in citations)
    assert "\n\nSources:\n[1] " in text
    # the same answer as without streaming
    plain = client_for(live).chat.completions.create(
        model="rag-citations", messages=[{"role": "user", "content": QUESTION}]
    )
    assert plain.choices[0].message.content == text


def test_history_makes_a_follow_up(live: LiveServer) -> None:
    """A follow-up with the conversation in ``messages`` is answered like the
    condensed standalone question, not like the bare follow-up."""
    client = client_for(live)

    def cited(messages: list[dict[str, object]]) -> list[tuple[str, int]]:
        completion = client.chat.completions.create(model="rag-citations", messages=messages)  # type: ignore[arg-type]
        return [(c["source"], c["start_char"]) for c in (completion.model_extra or {})["citations"]]

    follow_up = [{"type": "text", "text": "Tell me more"}]
    with_history = cited(
        [
            {"role": "user", "content": "Which chip did DeepSeek use, the H800?"},
            {"role": "assistant", "content": "The H800 [1]"},
            {"role": "user", "content": follow_up},
        ]
    )
    alone = cited([{"role": "user", "content": follow_up}])
    standalone = cited([{"role": "user", "content": "DeepSeek H800. Tell me more"}])
    assert with_history == standalone and with_history != alone


def test_last_message_must_be_the_users(live: LiveServer) -> None:
    with pytest.raises(UnprocessableEntityError) as caught:
        client_for(live).chat.completions.create(
            model="rag-citations", messages=[{"role": "assistant", "content": "hi"}]
        )
    assert "last message must be a user message" in caught.value.body["detail"]  # type: ignore[index]


def test_more_than_one_choice_is_refused_not_silently_one(live: LiveServer) -> None:
    for n in (3, 0):
        with pytest.raises(UnprocessableEntityError) as caught:
            client_for(live).chat.completions.create(
                model="rag-citations", messages=[{"role": "user", "content": QUESTION}], n=n
            )
        assert f"n must be 1 (this service gives one choice per answer), got {n}" in str(
            caught.value.body
        )
    one = client_for(live).chat.completions.create(
        model="rag-citations", messages=[{"role": "user", "content": QUESTION}], n=1
    )
    assert len(one.choices) == 1
    # OpenAI's schema allows an explicit null (the default, one choice)
    body = {
        "model": "rag-citations",
        "n": None,
        "messages": [{"role": "user", "content": QUESTION}],
    }
    with live.client() as http:
        posted = http.post("/v1/chat/completions", json=body)
    assert posted.status_code == 200 and len(posted.json()["choices"]) == 1


def marker_annotations(content: str, annotations: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(the content at each annotation's indexes, its URL)."""
    return [
        (
            content[a["url_citation"]["start_index"] : a["url_citation"]["end_index"]],
            a["url_citation"]["url"],
        )
        for a in annotations
    ]


def test_annotations_point_at_each_marker_with_an_absolute_url(live: LiveServer) -> None:
    completion = client_for(live).chat.completions.create(
        model="rag-citations", messages=[{"role": "user", "content": QUESTION}]
    )
    message = completion.choices[0].message
    content = message.content or ""
    citations = {c["n"]: c for c in (completion.model_extra or {})["citations"]}
    answer = content.partition("\n\nSources:\n")[0]
    annotations = [a.model_dump() for a in message.annotations or []]
    assert annotations and all(a["type"] == "url_citation" for a in annotations)
    # one per marker of the answer, in order, none in the Sources list
    assert len(annotations) == len(re.findall(r"(?<!\\)\[\d+\]", answer))
    assert all(a["url_citation"]["end_index"] <= len(answer) for a in annotations)
    for (marked, url), a in zip(marker_annotations(content, annotations), annotations, strict=True):
        n = int(marked.strip("[]"))
        assert marked == f"[{n}]" and url == citations[n]["url"]
        assert a["url_citation"]["title"] == citations[n]["title"]
    # absolute, from the URL the request came to (no RAG_PUBLIC_URL here)
    assert all(c["url"].startswith(live.url + "/v1/sources/") for c in citations.values())
    assert f"<{next(iter(citations.values()))['url']}>" in content  # the Sources list's link


def test_streamed_annotations_and_usage_chunk(live: LiveServer) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": QUESTION},
    ]
    chunks = list(
        client_for(live).chat.completions.create(
            model="rag-citations",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    deltas = [(c.choices[0].delta.model_extra or {}) for c in chunks if c.choices]
    [annotations] = [d["annotations"] for d in deltas if "annotations" in d]
    citations = {c["n"]: c for c in (chunks[-2].model_extra or {})["citations"]}
    assert annotations
    for marked, url in marker_annotations(content, annotations):
        assert url == citations[int(marked.strip("[]"))]["url"]
    # the usage chunk: last before [DONE], no choices, real token counts
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert last.usage.completion_tokens == count_tokens(content)
    assert last.usage.prompt_tokens == count_tokens("Be brief.") + count_tokens(QUESTION)
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    # the same as without streaming; without include_usage, no usage chunk
    plain = client_for(live).chat.completions.create(model="rag-citations", messages=messages)
    assert plain.usage is not None and plain.usage.model_dump() == last.usage.model_dump()
    bare = list(
        client_for(live).chat.completions.create(
            model="rag-citations", messages=messages, stream=True
        )
    )
    assert all(c.choices and c.usage is None for c in bare)


def test_public_url_is_the_base_of_citation_urls(indexed: Settings) -> None:
    server = serve(indexed.model_copy(update={"public_url": "https://rag.example.org/"}))
    try:
        completion = client_for(server).chat.completions.create(
            model="rag-citations", messages=[{"role": "user", "content": QUESTION}]
        )
    finally:
        server.stop()
    urls = [a.url_citation.url for a in completion.choices[0].message.annotations or []]
    urls += [c["url"] for c in (completion.model_extra or {})["citations"]]
    assert urls and all(u.startswith("https://rag.example.org/v1/sources/") for u in urls)


def test_unknown_model_is_openais_404(live: LiveServer) -> None:
    with pytest.raises(NotFoundError) as caught:
        client_for(live).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert error["type"] == "invalid_request_error" and "`gpt-4o`" in error["message"]
