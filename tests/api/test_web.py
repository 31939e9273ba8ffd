"""The web page and the API docs over HTTP: served from this origin only, under a
strict Content-Security-Policy, with the browser session cookie (api/routes/web.py,
api/security.py). What a browser does with them is in test_web_page.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.requests import Request

from api.app import create_app
from api.deps import browser_session
from api.routes.web import STATIC
from api.security import SESSION_COOKIE, session_owner
from rag.config import Settings
from tests.api.conftest import LiveServer, serve


class Refs(HTMLParser):
    """What an HTML page loads or links to, and any inline script, style or handler."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "action", "spec-url"):
            if values.get(name):
                self.urls.append(values[name] or "")
        if tag == "style" or "style" in values:
            self.inline.append(f"<{tag}> style")
        self.inline.extend(f"<{tag} {name}>" for name in values if name.startswith("on"))
        self._in_script = tag == "script" and not values.get("src")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("inline <script>")


def refs(html: str) -> Refs:
    parser = Refs()
    parser.feed(html)
    return parser


def same_origin_path(url: str) -> bool:
    """A path on this origin, or a fragment of this page."""
    return url.startswith("#") or (url.startswith("/") and not url.startswith("//"))


def test_security_headers_on_the_page_the_api_and_errors(live: LiveServer) -> None:
    with live.client() as client:
        responses = [
            client.get("/"),
            client.get("/static/app.js"),
            client.get("/v1/sources"),
            client.get("/v1/sources/no-such-file.txt"),
            client.get("/no-such-page"),
        ]
    for response in responses:
        csp = response.headers["content-security-policy"]
        for directive in (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ):
            assert directive in csp, (response.url, directive)
        assert "unsafe" not in csp and "http" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_the_page_and_its_assets_come_from_this_origin_only(live: LiveServer) -> None:
    with live.client() as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        found = refs(page.text)
        assert found.inline == []
        assert found.urls and all(same_origin_path(u) for u in found.urls), found.urls
        # the module graph: every import of every script, fetched
        seen: set[str] = set()
        queue = [u for u in found.urls if u.endswith(".js")]
        while queue:
            url = queue.pop()
            if url in seen:
                continue
            seen.add(url)
            script = client.get(url)
            assert script.status_code == 200, url
            assert script.headers["content-type"].startswith("text/javascript"), url
            for name in re.findall(r"""^import[^'"]*['"]([^'"]+)['"]""", script.text, re.M):
                assert name.startswith("./"), (url, name)
                queue.append(url.rsplit("/", 1)[0] + name[1:])
        for url in found.urls:
            if not url.startswith("#"):
                assert client.get(url).status_code == 200, url
    assert {"/static/app.js", "/static/api.js", "/static/render.js", "/static/viewer.js"} <= seen


def test_no_asset_written_here_names_another_origin() -> None:
    for path in sorted(STATIC.iterdir()):
        text = path.read_text(encoding="utf-8")
        # the SVG namespace is a name, not a request
        urls = [u for u in re.findall(r"\w+://[^\s\"'<>)]+", text) if "www.w3.org" not in u]
        assert urls == [], (path.name, urls)
        if path.suffix == ".html":
            assert refs(text).inline == [], path.name
        if path.suffix == ".js":
            assert "innerHTML" not in text and "insertAdjacentHTML" not in text, path.name
            assert "localStorage" not in text or path.name == "store.js", path.name


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_work_offline(live: LiveServer, page: str) -> None:
    with live.client() as client:
        html = client.get(page)
        assert html.status_code == 200
        found = refs(html.text)
        assert found.inline == []
        assert found.urls and all(same_origin_path(u) for u in found.urls), found.urls
        for url in found.urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100, url
        assert client.get("/openapi.json").json()["openapi"].startswith("3.")
    csp = html.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "http" not in csp


def test_the_redoc_script_shows_no_logo_from_a_cdn(live: LiveServer) -> None:
    with live.client() as client:
        script = client.get("/vendor/redoc.standalone.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert "cdn.redoc.ly" not in script.text
    assert "Redoc" in script.text


def test_swagger_ui_is_told_not_to_call_the_public_validator() -> None:
    assert "validatorUrl: null" in (STATIC / "docs.js").read_text(encoding="utf-8")


def _cookie_header(response: httpx.Response) -> str | None:
    values = [v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE)]
    return values[0] if values else None


def test_the_page_gives_a_browser_a_session_cookie_once(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as client:
        first = client.get("/")
        header = _cookie_header(first)
        assert header is not None
        value = header.split(";")[0].split("=", 1)[1]
        assert re.fullmatch(r"[0-9a-f]{32}", value)
        attributes = {a.strip().lower() for a in header.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= attributes
        assert "secure" not in attributes  # plain http on loopback
        again = client.get("/")  # the client sends the cookie back
        assert _cookie_header(again) is None
    with httpx.Client(base_url=live.url) as other:
        other_value = _cookie_header(other.get("/")) or ""
    assert value not in other_value
    with httpx.Client(base_url=live.url, cookies={SESSION_COOKIE: "not-a-session"}) as bad:
        assert _cookie_header(bad.get("/")) is not None  # a malformed one is replaced


def test_no_session_cookie_when_api_keys_identify_callers(indexed: Settings) -> None:
    server = serve(indexed.model_copy(update={"api_keys": [SecretStr("k1")]}))
    try:
        with server.client() as client:
            page = client.get("/")
        assert page.status_code == 200 and _cookie_header(page) is None
    finally:
        server.stop()


def _request(settings: Settings, cookie: str | None) -> Request:
    app = create_app(settings)
    headers = [(b"cookie", f"{SESSION_COOKIE}={cookie}".encode())] if cookie else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "app": app})


def test_browser_session_is_a_hash_of_the_cookie(settings: Settings) -> None:
    cookie = "0123456789abcdef0123456789abcdef"
    owner = browser_session(_request(settings, cookie))
    assert owner == session_owner(cookie)
    assert owner is not None and owner.startswith("browser:") and cookie not in owner
    assert browser_session(_request(settings, None)) is None
    assert browser_session(_request(settings, "../../etc")) is None
    keyed = settings.model_copy(update={"api_keys": [SecretStr("k1")]})
    assert browser_session(_request(keyed, cookie)) is None


def test_the_html_source_view_runs_under_the_same_policy(live: LiveServer) -> None:
    with live.client() as client:
        page = client.get("/v1/sources/page.html", headers={"Accept": "text/html"})
    assert refs(page.text).inline == []
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_head_of_the_page_answers(live: LiveServer) -> None:
    with live.client() as client:
        assert client.head("/").status_code == 200


def test_static_files_cannot_reach_outside_their_folder(live: LiveServer) -> None:
    with live.client() as client:
        for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/vendor/../core.py"):
            assert client.get(path).status_code == 404, path
    assert Path(STATIC / "index.html").exists()


def test_a_browser_session_sees_only_its_own_conversations(live: LiveServer) -> None:
    """Two browsers (cookie jars) of one keyless service: B cannot read, continue or
    delete A's conversation (404, as one that never existed); A still can."""
    with live.client() as a, live.client() as b:
        a.get("/")
        b.get("/")  # each gets its own session cookie
        first = a.post("/v1/chat", json={"message": "Which chip did DeepSeek use?"})
        cid = first.json()["conversation_id"]
        assert b.get(f"/v1/conversations/{cid}").status_code == 404
        follow = b.post("/v1/chat", json={"message": "And then?", "conversation_id": cid})
        assert follow.status_code == 404
        assert b.delete(f"/v1/conversations/{cid}").status_code == 404
        mine = a.get(f"/v1/conversations/{cid}")
        assert mine.status_code == 200
        assert len(mine.json()["turns"]) == 1
