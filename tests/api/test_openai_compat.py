"""The official ``openai`` client, unchanged, against the service on loopback."""

from __future__ import annotations

import pytest
from openai import OpenAI, UnprocessableEntityError

from rag.index.corpus import read_source_text
from rag.query.sanitize import plain_markdown
from tests.api.conftest import LiveServer

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
        assert c["url"].startswith("/v1/sources/")


def test_streamed_completion_ends_with_citations(live: LiveServer) -> None:
    stream = client_for(live).chat.completions.create(
        model="anything", messages=[{"role": "user", "content": QUESTION}], stream=True
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
        model="anything", messages=[{"role": "user", "content": QUESTION}]
    )
    assert plain.choices[0].message.content == text


def test_history_makes_a_follow_up(live: LiveServer) -> None:
    """A follow-up with the conversation in ``messages`` is answered like the
    condensed standalone question, not like the bare follow-up."""
    client = client_for(live)

    def cited(messages: list[dict[str, object]]) -> list[tuple[str, int]]:
        completion = client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
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
