from __future__ import annotations

import logging
import time

import httpx
import pytest

from rag.config import Settings
from tests.api.conftest import LiveServer, serve

KEY = "user-key-0123456789"
ADMIN = "admin-key-9876543210"


def with_server(settings: Settings, **overrides: object) -> LiveServer:
    return serve(settings.model_copy(update=overrides))


def test_api_keys_guard_every_v1_route_and_never_leak(
    indexed: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = with_server(
        indexed,
        api_keys=Settings(api_keys=KEY).api_keys,
        admin_key=Settings(admin_key=ADMIN).admin_key,
        auth_failures_per_minute=0,  # 12 failures here; the limit has tests of its own
    )
    try:
        with server.client() as client:
            for method, path in [
                ("POST", "/v1/chat"),
                ("GET", "/v1/sources"),
                ("GET", "/v1/models"),
                ("POST", "/v1/chat/completions"),
                ("GET", "/v1/index"),
                ("GET", "/v1/conversations/abc"),
            ]:
                none = client.request(method, path, json={"message": "x"})
                wrong = client.request(
                    method, path, json={"message": "x"}, headers={"Authorization": "Bearer nope"}
                )
                assert none.status_code == wrong.status_code == 401, path
                assert none.headers["content-type"] == "application/problem+json"
                assert none.headers["www-authenticate"] == "Bearer"
            assert client.get("/healthz").status_code == 200
            ok = client.post(
                "/v1/chat",
                json={"message": "Which chip did DeepSeek use?"},
                headers={"Authorization": f"Bearer {KEY}"},
            )
            assert ok.status_code == 200
            user = client.post("/v1/index", headers={"Authorization": f"Bearer {KEY}"})
            assert user.status_code == 403
            admin = client.post("/v1/index", headers={"Authorization": f"Bearer {ADMIN}"})
            assert admin.status_code == 202, admin.text
            bodies = none.text + wrong.text + ok.text + user.text + admin.text
    finally:
        server.app.state.rag.index_job.wait(60)
        server.stop()
    assert KEY not in bodies and ADMIN not in bodies
    assert KEY not in caplog.text and ADMIN not in caplog.text
    assert KEY not in repr(server.app.state.rag.settings)


def test_reindex_over_http_is_refused_with_keys_but_no_admin_key(indexed: Settings) -> None:
    server = with_server(indexed, api_keys=Settings(api_keys=KEY).api_keys)
    try:
        with server.client(headers={"Authorization": f"Bearer {KEY}"}) as client:
            response = client.post("/v1/index")
    finally:
        server.stop()
    assert response.status_code == 403 and "RAG_ADMIN_KEY" in response.json()["detail"]


def test_rate_limit_answers_429_with_retry_after(indexed: Settings) -> None:
    server = with_server(indexed, rate_limit_per_minute=3)
    try:
        with server.client() as client:
            codes = [client.get("/v1/sources").status_code for _ in range(4)]
            limited = client.get("/v1/sources")
            health = client.get("/healthz")
    finally:
        server.stop()
    assert codes == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"] == "application/problem+json"
    assert "3 requests a minute" in limited.json()["detail"]
    assert health.status_code == 200


def test_cors_is_off_unless_an_allowlist_is_set(indexed: Settings) -> None:
    preflight = {
        "Origin": "https://chat.example.org",
        "Access-Control-Request-Method": "POST",
    }
    closed = with_server(indexed)
    try:
        with closed.client() as client:
            off = client.options("/v1/chat", headers=preflight)
    finally:
        closed.stop()
    opened = with_server(indexed, cors_origins=["https://chat.example.org"])
    try:
        with opened.client() as client:
            on = client.options("/v1/chat", headers=preflight)
            other = client.options(
                "/v1/chat", headers={**preflight, "Origin": "https://evil.example"}
            )
    finally:
        opened.stop()
    assert "access-control-allow-origin" not in off.headers
    assert on.headers["access-control-allow-origin"] == "https://chat.example.org"
    assert "access-control-allow-origin" not in other.headers


def test_service_without_index_is_not_ready_until_one_is_built_over_http(
    settings: Settings,
) -> None:
    server = serve(settings.model_copy(update={"abstain_threshold": -1.0}))
    try:
        with server.client() as client:
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.headers["content-type"] == "application/problem+json"
            chat = client.post("/v1/chat", json={"message": "Which chip did DeepSeek use?"})
            assert chat.status_code == 503 and "rag index" in chat.json()["detail"]
            started = client.post("/v1/index")
            assert started.status_code == 202
            assert started.json()["build"]["state"] in {"running", "succeeded"}
            status = _wait_for_build(client)
            assert status["build"]["state"] == "succeeded", status
            assert status["version"] and status["passages"] > 0
            assert client.get("/readyz").status_code == 200
            chat = client.post("/v1/chat", json={"message": "Which chip did DeepSeek use?"})
            assert chat.status_code == 200 and chat.json()["citations"]
    finally:
        server.stop()


def test_reindex_switches_version_without_restart(live: LiveServer, indexed: Settings) -> None:
    (indexed.corpus_dir / "tea.md").write_text(
        "Longjing tea grows near West Lake.", encoding="utf-8"
    )
    with live.client() as client:
        before = client.get("/v1/index").json()["version"]
        assert client.post("/v1/index").status_code == 202
        again = client.post("/v1/index")
        assert again.status_code in {202, 409}
        status = _wait_for_build(client)
        assert status["version"] != before
        assert status["build"]["report"]["added_documents"] == ["tea.md"]
        answer = client.post("/v1/chat", json={"message": "Where does Longjing tea grow?"}).json()
    assert answer["citations"][0]["source"] == "tea.md"


def _wait_for_build(client: httpx.Client) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status: dict[str, object] = client.get("/v1/index").json()
        if status["build"]["state"] != "running":  # type: ignore[index]
            return status
        time.sleep(0.05)
    raise AssertionError("the index build did not finish")
