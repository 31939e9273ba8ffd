"""``POST /v1/feedback``: ratings of the service's own answers are stored; anything
else is refused with a problem that names it (api/routes/feedback.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import SecretStr

from api.auth import identity
from rag.config import Settings
from rag.eval.feedback import FeedbackStore, eval_items, store_path
from rag.query.conversation import LOCAL_OWNER
from tests.api.conftest import LiveServer, serve


def ask(live: LiveServer, question: str) -> dict[str, Any]:
    with live.client() as client:
        response = client.post("/v1/chat", json={"message": question})
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def stored(settings: Settings) -> FeedbackStore:
    return FeedbackStore(store_path(settings.data_dir))


def test_a_rating_is_stored_with_its_answer(live: LiveServer, indexed: Settings) -> None:
    answer = ask(live, "Which chip did DeepSeek use?")
    body = {
        "conversation_id": answer["conversation_id"],
        "question": "Which chip did DeepSeek use?",
        "answer": answer,
        "rating": "up",
        "reason": "quotes the exact sentence",
    }
    with live.client() as client:
        first = client.post("/v1/feedback", json=body)
        second = client.post("/v1/feedback", json={**body, "rating": "down", "reason": None})
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"] + 1
    store = stored(indexed)
    rows = store.all()
    store.close()
    assert [r.rating for r in rows] == ["up", "down"]
    assert rows[0].answer.citations[0].quote == answer["citations"][0]["quote"]
    assert rows[0].conversation_id == answer["conversation_id"]
    assert rows[0].reason == "quotes the exact sentence"
    assert rows[0].owner == LOCAL_OWNER  # no key, no cookie: owned like the conversations


def test_the_page_s_session_owns_its_ratings(live: LiveServer, indexed: Settings) -> None:
    answer = ask(live, "Which chip did DeepSeek use?")
    with live.client() as client:
        client.get("/")  # the page: the session cookie
        client.post(
            "/v1/feedback", json={"question": "Which chip?", "answer": answer, "rating": "up"}
        )
    store = stored(indexed)
    owner = store.all()[-1].owner
    store.close()
    assert owner is not None and owner.startswith("browser:")


def test_an_exported_rating_points_at_the_cited_passage(
    live: LiveServer, indexed: Settings
) -> None:
    answer = ask(live, "Which chip did DeepSeek use?")
    with live.client() as client:
        client.post(
            "/v1/feedback",
            json={"question": "Which chip did DeepSeek use?", "answer": answer, "rating": "up"},
        )
    store = stored(indexed)
    (line,) = eval_items(store.all())
    store.close()
    cited = answer["citations"][0]
    assert line["expected_sources"][0] == cited["source"]
    assert re.search(line["expected_evidence"], cited["quote"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"quote": "The H900 chip was made up."}, "the quote is not the text of"),
        ({"source": "../../pyproject.toml"}, "no source '../../pyproject.toml' in the index"),
        ({"source": "not-indexed.txt"}, "no source 'not-indexed.txt'"),
        ({"start_char": 10**6, "end_char": 10**6 + 5}, "the quote is not the text of"),
    ],
)
def test_an_answer_the_service_did_not_give_is_refused(
    live: LiveServer, indexed: Settings, change: dict[str, Any], expected: str
) -> None:
    answer = ask(live, "Which chip did DeepSeek use?")
    answer["citations"][0].update(change)
    with live.client() as client:
        response = client.post(
            "/v1/feedback", json={"question": "Which chip?", "answer": answer, "rating": "up"}
        )
    assert response.status_code == 422
    assert expected in response.json()["detail"] and "citation [1]" in response.json()["detail"]
    assert not store_path(indexed.data_dir).exists() or stored(indexed).all() == []


def test_a_nul_in_a_cited_source_is_refused_before_the_route(
    live: LiveServer, indexed: Settings
) -> None:
    """Refused with the other text that is not text (api/limits.py), never joined onto
    a path (Path.resolve raised on it: a 500)."""
    answer = ask(live, "Which chip did DeepSeek use?")
    answer["citations"][0]["source"] = "notes\u0000.md"
    with live.client() as client:
        response = client.post(
            "/v1/feedback", json={"question": "Which chip?", "answer": answer, "rating": "up"}
        )
    assert response.status_code == 422
    assert "answer.citations.0.source: U+0000" in response.json()["detail"]
    assert not store_path(indexed.data_dir).exists() or stored(indexed).all() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": "sideways"}, "rating"),
        ({"question": ""}, "question"),
        ({"question": "   "}, "empty"),
        ({"question": "x" * 2001}, "over the limit of 2000"),
        ({"reason": "x" * 2001}, "reason"),
        ({"extra": 1}, "extra"),
        ({"answer": {"answer": "no citations field"}}, "answer"),
    ],
)
def test_bad_ratings_are_422_naming_the_problem(
    live: LiveServer, body: dict[str, Any], field: str
) -> None:
    answer = ask(live, "Which chip did DeepSeek use?")
    good = {"question": "Which chip?", "answer": answer, "rating": "up"}
    with live.client() as client:
        response = client.post("/v1/feedback", json={**good, **body})
    assert response.status_code == 422
    assert field in response.json()["detail"]


def test_feedback_needs_the_key_when_keys_are_set(indexed: Settings) -> None:
    server = serve(indexed.model_copy(update={"api_keys": [SecretStr("k1")]}))
    try:
        with server.client() as client:
            answer = client.post(
                "/v1/chat",
                json={"message": "Which chip?"},
                headers={"Authorization": "Bearer k1"},
            ).json()
            body = {"question": "Which chip?", "answer": answer, "rating": "up"}
            assert client.post("/v1/feedback", json=body).status_code == 401
            ok = client.post("/v1/feedback", json=body, headers={"Authorization": "Bearer k1"})
            assert ok.status_code == 201
    finally:
        server.stop()
    store = stored(indexed)
    owner = store.all()[-1].owner
    store.close()
    assert owner == identity("k1")  # the key's identity, as its conversations'


def test_a_rating_of_another_s_conversation_or_of_an_answer_it_never_gave_is_refused(
    indexed: Settings,
) -> None:
    server = serve(indexed.model_copy(update={"api_keys": [SecretStr("ka"), SecretStr("kb")]}))
    a, b = ({"Authorization": f"Bearer {k}"} for k in ("ka", "kb"))
    try:
        with server.client() as client:
            answer = client.post("/v1/chat", json={"message": "Which chip?"}, headers=a).json()
            cid = answer["conversation_id"]
            body = {"conversation_id": cid, "question": "Which chip?", "rating": "up"}
            # another key: the conversation does not exist for it
            other = client.post("/v1/feedback", json={**body, "answer": answer}, headers=b)
            assert other.status_code == 404
            # its owner, with an answer the conversation never gave
            made_up = {**answer, "answer": "Nobody knows.", "citations": []}
            forged = client.post("/v1/feedback", json={**body, "answer": made_up}, headers=a)
            assert forged.status_code == 422
            assert "not an answer of conversation" in forged.json()["detail"]
            ok = client.post("/v1/feedback", json={**body, "answer": answer}, headers=a)
            assert ok.status_code == 201
    finally:
        server.stop()
    store = stored(indexed)
    rows = store.all()
    store.close()
    assert [r.owner for r in rows if r.conversation_id == cid] == [identity("ka")]


def test_a_negative_end_that_slices_to_the_quote_is_refused(
    live: LiveServer, indexed: Settings
) -> None:
    """Python slices from the end with negative offsets: ``text[s - n : e - n]`` is the
    quote, but those are no offsets of the file."""
    answer = ask(live, "Which chip did DeepSeek use?")
    cited = answer["citations"][0]
    n = len((indexed.corpus_dir / cited["source"]).read_text(encoding="utf-8"))
    cited.update(end_char=cited["end_char"] - n)
    assert cited["end_char"] < 0
    with live.client() as client:
        response = client.post(
            "/v1/feedback", json={"question": "Which chip?", "answer": answer, "rating": "up"}
        )
    assert response.status_code == 422
    assert "the quote is not the text of" in response.json()["detail"]
