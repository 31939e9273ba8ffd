from __future__ import annotations

import http.client
import os
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index.build import build
from rag.index.corpus import read_source_text
from tests.api.conftest import LiveServer, serve


def raw_get(server: LiveServer, path: str) -> tuple[int, str, str]:
    """GET exactly this path: http.client neither normalises ``..`` nor re-encodes."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read().decode()
    finally:
        conn.close()


def test_sources_lists_the_indexed_documents(live: LiveServer) -> None:
    with live.client() as client:
        rows = client.get("/v1/sources").json()
    assert sorted(r["source"] for r in rows) == [
        "001_2da8963e52795fca.txt",
        "003_a5e772a95f951957.txt",
        "notes.md",
        "page.html",
    ]
    notes = next(r for r in rows if r["source"] == "notes.md")
    assert notes["title"] == "Notes on chips" and notes["passages"] >= 1
    assert len(notes["sha256"]) == 64


def test_span_with_context_and_line_numbers(live: LiveServer, indexed: Settings) -> None:
    text = read_source_text(indexed.corpus_dir, "notes.md")
    start = text.index("The H800")
    end = text.index(".", start) + 1
    with live.client() as client:
        body = client.get(
            "/v1/sources/notes.md", params={"start": start, "end": end, "context": 5}
        ).json()
        whole = client.get("/v1/sources/notes.md").json()
    assert body["text"] == "The H800 chip was used by DeepSeek."
    assert (body["start_line"], body["end_line"]) == (3, 3)
    assert body["before"] == text[start - 5 : start] and body["after"] == text[end : end + 5]
    assert whole["text"] == text and whole["start_char"] == 0


def test_bad_span_bounds_are_422(live: LiveServer) -> None:
    with live.client() as client:
        backwards = client.get("/v1/sources/notes.md", params={"start": 10, "end": 5})
        beyond = client.get("/v1/sources/notes.md", params={"end": 10**6})
        negative = client.get("/v1/sources/notes.md", params={"start": -1})
    assert backwards.status_code == beyond.status_code == negative.status_code == 422
    assert "start <= end <=" in backwards.json()["detail"]


def test_html_view_shows_the_document_as_a_reader_sees_it(live: LiveServer) -> None:
    with live.client() as client:
        page = client.get("/v1/sources/page.html", headers={"Accept": "text/html"})
        raw = client.get(
            "/v1/sources/page.html", params={"view": "raw"}, headers={"Accept": "text/html"}
        )
    assert page.headers["content-type"].startswith("text/html")
    # the article's own markup is neither rendered nor shown: its text is
    assert "<b>boats</b>" not in page.text and "&lt;b&gt;" not in page.text
    assert "color: red" not in page.text
    assert "The harbour of Hangzhou &amp; its boats are famous." in page.text
    # the raw view shows the file, its markup as text, never rendered
    assert "<b>boats</b>" not in raw.text and "&lt;b&gt;boats&lt;/b&gt;" in raw.text


def test_display_view_maps_the_span_and_keeps_the_file_offsets(
    live: LiveServer, indexed: Settings
) -> None:
    text = read_source_text(indexed.corpus_dir, "page.html")
    start = text.index("The harbour")
    end = text.index("famous.") + len("famous.")
    with live.client() as client:
        params = {"start": start, "end": end, "view": "display", "whole": True}
        shown = client.get("/v1/sources/page.html", params=params).json()
        raw = client.get("/v1/sources/page.html", params={"start": start, "end": end}).json()
        plain = client.get("/v1/sources/notes.md", params={"view": "display"}).json()
    assert shown["view"] == "display" and raw["view"] == "raw"
    assert shown["text"] == "The harbour of Hangzhou & its boats are famous."
    assert shown["before"] == "Harbour page\n\n"
    assert shown["after"] == "\n\nSecond paragraph about tea."
    assert raw["text"] == text[start:end] and "<b>boats</b>" in raw["text"]
    assert (shown["start_char"], shown["end_char"], shown["sha"]) == (start, end, raw["sha"])
    assert plain["text"] == (
        "Notes on chips\n\nThe H800 chip was used by DeepSeek. Export controls limit chips."
    )


@pytest.fixture
def live_with_link(settings: Settings, tmp_path: Path) -> LiveServer:
    secret = tmp_path / "secret.txt"
    secret.write_text("A private note outside the corpus.", encoding="utf-8")
    os.symlink(secret, settings.corpus_dir / "link.txt")
    report = build(settings)
    assert any(p.source == "link.txt" for p in report.problems)
    return serve(settings)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sources/../pyproject.toml",
        "/v1/sources/..%2f..%2fpyproject.toml",
        "/v1/sources/%2e%2e/%2e%2e/secret.txt",
        "/v1/sources/%2e%2e%2fsecret.txt",
        "/v1/sources//etc/passwd",
        "/v1/sources/%2Fetc%2Fpasswd",
        "/v1/sources/notes.md/../../secret.txt",
        "/v1/sources/link.txt",
        "/v1/sources/..\\secret.txt",
    ],
)
def test_nothing_outside_the_index_can_be_read(live_with_link: LiveServer, path: str) -> None:
    try:
        status, content_type, body = raw_get(live_with_link, path)
    finally:
        live_with_link.stop()
    assert status == 404, (path, body)
    assert content_type == "application/problem+json"
    assert "private note" not in body and "root:" not in body
