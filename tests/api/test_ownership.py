"""A conversation belongs to its caller: with RAG_API_KEYS=keyA,keyB, key B can
neither read, continue nor delete key A's conversation, and gets the same 404 as for
an id that does not exist; Slack conversations cannot be reached through /v1."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rag.config import Settings
from tests.api.conftest import LiveServer, serve

pytestmark = pytest.mark.slow

KEY_A = "key-a-0123456789"
KEY_B = "key-b-9876543210"
QUESTION = "Which chip did DeepSeek use, the H800?"


@pytest.fixture
def keyed(indexed: Settings) -> Iterator[LiveServer]:
    server = serve(
        indexed.model_copy(update={"api_keys": Settings(api_keys=[KEY_A, KEY_B]).api_keys})
    )
    yield server
    server.stop()


def client_of(server: LiveServer, key: str) -> httpx.Client:
    return server.client(headers={"Authorization": f"Bearer {key}"})


def same_problem(one: httpx.Response, other: httpx.Response) -> None:
    assert one.status_code == other.status_code == 404
    assert one.content == other.content
    assert one.headers["content-type"] == other.headers["content-type"]
    assert one.headers["content-length"] == other.headers["content-length"]


def test_another_key_can_neither_read_continue_nor_delete(keyed: LiveServer) -> None:
    with client_of(keyed, KEY_A) as a, client_of(keyed, KEY_B) as b:
        first = a.post("/v1/chat", json={"message": QUESTION})
        cid = first.json()["conversation_id"]
        assert (
            a.post(
                "/v1/chat", json={"message": "And export controls?", "conversation_id": cid}
            ).status_code
            == 200
        )
        path = f"/v1/conversations/{cid}"

        read = b.get(path)
        append = b.post("/v1/chat", json={"message": "Tell me more", "conversation_id": cid})
        streamed = b.post(
            "/v1/chat", json={"message": "Tell me more", "conversation_id": cid, "stream": True}
        )
        delete = b.delete(path)
        mine = a.get(path)
        assert mine.status_code == 200 and len(mine.json()["turns"]) == 2  # untouched

        # now the id exists no more: B's answers must be byte for byte what they were
        assert a.delete(path).status_code == 204
        same_problem(read, b.get(path))
        same_problem(
            append, b.post("/v1/chat", json={"message": "Tell me more", "conversation_id": cid})
        )
        same_problem(
            streamed,
            b.post(
                "/v1/chat", json={"message": "Tell me more", "conversation_id": cid, "stream": True}
            ),
        )
        same_problem(delete, b.delete(path))
        # and A's own missing conversation looks the same too
        same_problem(read, a.get(path))


def test_an_unknown_id_is_not_silently_a_new_conversation(keyed: LiveServer) -> None:
    with client_of(keyed, KEY_A) as a:
        made_up = a.post("/v1/chat", json={"message": QUESTION, "conversation_id": "chosen-by-me"})
        assert made_up.status_code == 404
        assert a.get("/v1/conversations/chosen-by-me").status_code == 404
        fresh = a.post("/v1/chat", json={"message": QUESTION}).json()["conversation_id"]
        assert len(fresh) == 32 and int(fresh, 16) >= 0  # random, never guessable


def test_slack_conversations_are_invisible_through_v1(keyed: LiveServer) -> None:
    service = keyed.app.state.rag.service()
    slack_ids = ["slack:C7:ask:U7", "slack:C7:1700000000.000100", "slack:D1:dm"]
    for cid in slack_ids:
        service.respond(QUESTION, cid, owner=cid)  # as api/slack.py answers a thread
    with client_of(keyed, KEY_A) as a:
        for cid in slack_ids:
            assert a.get(f"/v1/conversations/{cid}").status_code == 404
            assert (
                a.post("/v1/chat", json={"message": "More?", "conversation_id": cid}).status_code
                == 404
            )
            assert a.delete(f"/v1/conversations/{cid}").status_code == 404
    for cid in slack_ids:  # nothing of them was touched
        assert len(service.conversations.turns(cid, cid)) == 1


def test_the_openai_route_goes_through_the_same_keys(keyed: LiveServer) -> None:
    body = {"model": "rag-citations", "messages": [{"role": "user", "content": QUESTION}]}
    with client_of(keyed, KEY_B) as b:
        assert b.post("/v1/chat/completions", json=body).status_code == 200
    with keyed.client() as anonymous:
        assert anonymous.post("/v1/chat/completions", json=body).status_code == 401


def test_without_keys_every_caller_is_the_local_owner(live: LiveServer) -> None:
    with live.client() as one, live.client() as two:
        cid = one.post("/v1/chat", json={"message": QUESTION}).json()["conversation_id"]
        follow = two.post(
            "/v1/chat", json={"message": "And export controls?", "conversation_id": cid}
        )
        assert follow.status_code == 200
        assert len(one.get(f"/v1/conversations/{cid}").json()["turns"]) == 2
    service = live.app.state.rag.service()
    assert len(service.conversations.turns(cid, "local")) == 2  # the command line's owner
