from __future__ import annotations

import json

import httpx
from httpx_sse import connect_sse

from rag.index.corpus import read_source_text
from tests.api.conftest import LiveServer

QUESTION = "Which chip did DeepSeek use, the H800?"


def test_chat_answers_with_verified_citations_that_link_to_the_viewer(live: LiveServer) -> None:
    settings = live.app.state.rag.settings
    with live.client() as client:
        response = client.post("/v1/chat", json={"message": QUESTION})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert not answer["abstained"] and answer["mode"] == "extractive"
        assert answer["citations"] and answer["conversation_id"]
        assert {"retrieve", "answer", "total"} <= set(answer["timings_ms"])
        for c in answer["citations"]:
            text = read_source_text(settings.corpus_dir, c["source"])
            assert text[c["start_char"] : c["end_char"]] == c["quote"]
            assert f"[{c['n']}]" in answer["answer"]
            span = client.get(c["url"])
            assert span.status_code == 200, span.text
            body = span.json()
            assert body["text"] == c["quote"]
            assert (body["start_line"], body["end_line"]) == (c["start_line"], c["end_line"])
            start, end = c["start_char"], c["end_char"]
            assert body["before"] == text[max(0, start - 300) : start]  # default context
            assert body["after"] == text[end : end + 300]


def test_top_k_bounds_and_unknown_fields_are_422_problems(live: LiveServer) -> None:
    with live.client() as client:
        for body in (
            {"message": QUESTION, "top_k": 0},
            {"message": QUESTION, "colour": "red"},
            {"message": QUESTION, "conversation_id": "../../x"},
            {},
        ):
            response = client.post("/v1/chat", json=body)
            assert response.status_code == 422, body
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["status"] == 422 and problem["errors"], problem


def test_stream_sends_citations_then_deltas_then_done(live: LiveServer) -> None:
    with (
        live.client() as client,
        connect_sse(
            client, "POST", "/v1/chat", json={"message": QUESTION, "stream": True}
        ) as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = [(e.event, json.loads(e.data)) for e in source.iter_sse()]
    names = [name for name, _ in events]
    assert names[0] == "citations" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"} and len(names) >= 3
    done = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "delta") == done["answer"]
    assert events[0][1] == done["citations"] and done["citations"]


def test_accept_header_alone_asks_for_a_stream(live: LiveServer) -> None:
    with live.client() as client:
        response = client.post(
            "/v1/chat", json={"message": QUESTION}, headers={"Accept": "text/event-stream"}
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("event: citations\n")


def test_conversation_keeps_turns_and_can_be_deleted(live: LiveServer) -> None:
    with live.client() as client:
        first = client.post("/v1/chat", json={"message": QUESTION}).json()
        cid = first["conversation_id"]
        client.post(
            "/v1/chat", json={"message": "And the export controls?", "conversation_id": cid}
        )
        turns = client.get(f"/v1/conversations/{cid}").json()["turns"]
        assert [t["question"] for t in turns] == [QUESTION, "And the export controls?"]
        assert turns[1]["standalone_question"] == "DeepSeek H800. And the export controls?"
        assert turns[0]["answer"]["answer"] == first["answer"]
        assert client.delete(f"/v1/conversations/{cid}").status_code == 204
        missing = client.get(f"/v1/conversations/{cid}")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert client.delete(f"/v1/conversations/{cid}").status_code == 404


def test_question_limits_are_named(live: LiveServer) -> None:
    with live.client() as client:
        long = client.post("/v1/chat", json={"message": "x" * 2001})
        empty = client.post("/v1/chat", json={"message": "   "})
    assert long.status_code == 422
    assert "over the limit of 2000" in long.json()["detail"]
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]


def test_oversized_body_is_413_before_any_route_reads_it(live: LiveServer) -> None:
    limit = live.app.state.rag.settings.max_body_bytes
    with live.client() as client:
        response = client.post(
            "/v1/chat",
            content=json.dumps({"message": "x" * (limit + 10)}),
            headers={"Content-Type": "application/json"},
        )

        def chunks():  # no Content-Length: the body is counted as it arrives
            yield b'{"message": "'
            for _ in range(limit // 1000 + 2):
                yield b"y" * 1000
            yield b'"}'

        streamed = client.post(
            "/v1/chat", content=chunks(), headers={"Content-Type": "application/json"}
        )
    for r in (response, streamed):
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/problem+json"
        assert f"{limit} bytes" in r.json()["detail"]


def test_unknown_route_and_method_are_problems(live: LiveServer) -> None:
    with live.client() as client:
        missing = client.get("/v1/nothing-here")
        wrong = client.put("/v1/chat", json={})
    assert missing.status_code == 404 and wrong.status_code == 405
    for r in (missing, wrong):
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == r.status_code


def test_metrics_count_requests_by_route_and_report_the_index(live: LiveServer) -> None:
    with live.client() as client:
        client.post("/v1/chat", json={"message": QUESTION})
        client.get("/v1/sources/no-such-file.txt")
        text = client.get("/metrics").text
    assert 'rag_http_requests_total{method="POST",route="/v1/chat",status="200"} 1.0' in text
    assert 'route="/v1/sources/{source:path}",status="404"' in text
    assert "no-such-file" not in text
    passages = live.app.state.rag.service().pipeline.index.manifest["counts"]["passages"]
    assert f"rag_index_passages {float(passages)}" in text
    assert 'rag_stage_duration_seconds_count{stage="retrieve"} 1.0' in text


def test_healthz_and_readyz(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["index_version"]


def test_questions_and_histories_are_limited_in_tokens(live: LiveServer) -> None:
    cjk = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(2000))
    earlier = [{"role": "user", "content": "What did DeepSeek V3 cost? " * 20}] * 30
    with live.client() as client:
        for body in ({"message": cjk}, {"message": cjk, "stream": True}):
            refused = client.post("/v1/chat", json=body)
            assert refused.status_code == 422
            assert "tokens long" in refused.json()["detail"]
            assert "over the limit of 256" in refused.json()["detail"]
        for stream in (False, True):
            history = client.post(
                "/v1/chat/completions",
                json={
                    "model": "rag-citations",
                    "stream": stream,
                    "messages": [*earlier, {"role": "user", "content": "And the chips?"}],
                },
            )
            assert history.status_code == 422
            detail = history.json()["detail"]
            assert "tokens long together" in detail and "over the limit of 4096" in detail
