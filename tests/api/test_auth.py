"""Keys: failed authentications are rate limited per client address (forwarded headers
count only from trusted proxies); /metrics and the docs need a key when keys are set
unless opened; the admin key is for the admin routes unless a setting says otherwise."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rag.config import Settings
from tests.api.conftest import LiveServer, serve

pytestmark = pytest.mark.slow

KEY = "user-key-0123456789"
ADMIN = "admin-key-9876543210"
QUESTION = {"message": "Which chip did DeepSeek use, the H800?"}


def keyed(indexed: Settings, **overrides: object) -> LiveServer:
    values: dict[str, object] = {
        "api_keys": Settings(api_keys=KEY).api_keys,
        "admin_key": Settings(admin_key=ADMIN).admin_key,
        "auth_failures_per_minute": 5,
        **overrides,
    }
    return serve(indexed.model_copy(update=values))


@pytest.fixture
def server(indexed: Settings) -> Iterator[LiveServer]:
    live = keyed(indexed)
    yield live
    live.stop()


def from_address(server: LiveServer, address: str, **kwargs: object) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.x.y.z is loopback)."""
    transport = httpx.HTTPTransport(local_address=address)
    return server.client(transport=transport, **kwargs)  # type: ignore[arg-type]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_failed_authentications_are_limited_per_address(server: LiveServer) -> None:
    with from_address(server, "127.0.0.1") as client:
        codes = [
            client.get("/v1/sources", headers=bearer(f"guess-{i}")).status_code for i in range(6)
        ]
        assert codes == [401] * 5 + [429]
        limited = client.get("/v1/sources", headers=bearer(KEY))
        assert limited.status_code == 429  # even the right key: guessing gains nothing
        assert int(limited.headers["retry-after"]) >= 1
        assert "failed authentications" in limited.json()["detail"]
        assert client.get("/v1/sources").status_code == 429  # no key at all, likewise
        assert client.get("/healthz").status_code == 200
    with from_address(server, "127.0.0.2") as other:
        assert other.get("/v1/sources", headers=bearer(KEY)).status_code == 200


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(indexed: Settings) -> None:
    direct = keyed(indexed)
    try:
        with from_address(direct, "127.0.0.1") as client:
            codes = [
                client.get(
                    "/v1/sources",
                    headers={**bearer(f"guess-{i}"), "X-Forwarded-For": f"198.51.100.{i}"},
                ).status_code
                for i in range(6)
            ]
        assert codes == [401] * 5 + [429]  # one bucket: the socket's address
    finally:
        direct.stop()
    proxied = keyed(indexed, trusted_proxies=["127.0.0.1"])
    try:
        with from_address(proxied, "127.0.0.1") as proxy:
            behind = {"X-Forwarded-For": "203.0.113.5"}
            codes = [
                proxy.get("/v1/sources", headers={**bearer(f"guess-{i}"), **behind}).status_code
                for i in range(6)
            ]
            assert codes == [401] * 5 + [429]  # the client behind the proxy
            other = {"X-Forwarded-For": "203.0.113.6", **bearer(KEY)}
            assert proxy.get("/v1/sources", headers=other).status_code == 200
        with from_address(proxied, "127.0.0.2") as untrusted:
            # not a trusted proxy: its X-Forwarded-For is ignored, it is itself
            spoofed = {"X-Forwarded-For": "203.0.113.5", **bearer(KEY)}
            assert untrusted.get("/v1/sources", headers=spoofed).status_code == 200
    finally:
        proxied.stop()


@pytest.mark.parametrize(
    "path", ["/metrics", "/docs", "/openapi.json", "/redoc", "/vendor/swagger-ui.css"]
)
def test_metrics_and_docs_need_a_key_when_keys_are_set(server: LiveServer, path: str) -> None:
    with from_address(server, "127.0.0.3") as client:
        none = client.get(path)
        assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer"
        assert client.get(path, headers=bearer(KEY)).status_code == 200
        assert client.get(path, headers=bearer(ADMIN)).status_code == 200


def test_open_endpoints_open_metrics_and_docs(indexed: Settings) -> None:
    live = keyed(indexed, open_endpoints=["metrics", "docs"])
    try:
        with live.client() as client:
            for path in ("/metrics", "/docs", "/redoc", "/openapi.json", "/vendor/swagger-ui.css"):
                assert client.get(path).status_code == 200, path
            assert client.get("/v1/sources").status_code == 401  # /v1 stays keyed
            assert client.post("/v1/feedback", json={}).status_code == 401
    finally:
        live.stop()


def test_the_web_page_stays_open_when_keys_are_set(server: LiveServer) -> None:
    """The page asks for the key itself and sends it with its /v1 requests."""
    with from_address(server, "127.0.0.4") as client:
        for path in ("/", "/static/app.js", "/static/app.css", "/static/icon.svg"):
            assert client.get(path).status_code == 200, path
        assert client.get("/v1/sources").status_code == 401
        assert client.post("/v1/feedback", json={}).status_code == 401


def test_without_keys_metrics_and_docs_are_open(live: LiveServer) -> None:
    with live.client() as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/openapi.json").status_code == 200


def test_the_admin_key_is_for_admin_routes_only_by_default(server: LiveServer) -> None:
    with server.client(headers=bearer(ADMIN)) as admin:
        refused = admin.post("/v1/chat", json=QUESTION)
        assert refused.status_code == 403
        assert "RAG_ADMIN_KEY_AS_API_KEY" in refused.json()["detail"]
        assert admin.get("/v1/index").status_code == 200
        assert admin.post("/v1/index").status_code == 202
    server.app.state.rag.index_job.wait(60)
    with server.client(headers=bearer(KEY)) as user:
        assert user.post("/v1/chat", json=QUESTION).status_code == 200
        assert user.post("/v1/index").status_code == 403


def test_the_admin_key_may_ask_when_the_setting_says_so(indexed: Settings) -> None:
    live = keyed(indexed, admin_key_as_api_key=True)
    try:
        with live.client(headers=bearer(ADMIN)) as admin:
            assert admin.post("/v1/chat", json=QUESTION).status_code == 200
    finally:
        live.stop()


def test_admin_key_guesses_count_as_failures_on_a_service_without_keys(
    indexed: Settings,
) -> None:
    live = serve(
        indexed.model_copy(
            update={"admin_key": Settings(admin_key=ADMIN).admin_key, "auth_failures_per_minute": 3}
        )
    )
    try:
        with live.client() as client:
            codes = [
                client.post("/v1/index", headers=bearer(f"guess-{i}")).status_code for i in range(4)
            ]
            assert client.post("/v1/chat", json=QUESTION).status_code == 200  # open service
    finally:
        live.stop()
    assert codes == [403, 403, 403, 429]
