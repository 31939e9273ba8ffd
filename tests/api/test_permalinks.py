"""Citation permalinks: a link carries its quote's hash, finds the quote after the file
moved it, and says so when the quote changed (api/permalinks.py, the source route)."""

from __future__ import annotations

import hashlib

import pytest

from api.permalinks import SHA_CHARS, locate, quote_hash
from rag.config import Settings
from rag.index.build import build
from rag.index.corpus import read_source_text
from tests.api.conftest import LiveServer, serve


def test_quote_hash_is_a_prefix_of_the_utf8_sha256() -> None:
    quote = "كلفت مجرد 6 ملايين دولار"
    assert quote_hash(quote) == hashlib.sha256(quote.encode("utf-8")).hexdigest()[:SHA_CHARS]
    assert quote_hash(quote) != quote_hash(quote + " ")


@pytest.mark.parametrize(
    "text",
    [
        "Plain ASCII text. The quoted sentence is here. More after it.",
        "نص عربي قبل. The quoted sentence is here. وبعده نص.",
        "中文在前。The quoted sentence is here. ภาษาไทยตามหลัง 😀 end",
    ],
)
def test_a_quote_still_in_place_or_moved_is_found(text: str) -> None:
    quote = "The quoted sentence is here."
    start = text.index(quote)
    sha = quote_hash(quote)
    assert locate(text, start, start + len(quote), sha) == (start, start + len(quote))
    for prefix in ("x", "😀😀 inserted before, with 4-byte characters. ", "سطر جديد\n" * 50):
        edited = prefix + text
        found = locate(edited, start, start + len(quote), sha)
        assert found is not None and edited[found[0] : found[1]] == quote
    shrunk = text[5:]  # text removed before it: it moved back
    found = locate(shrunk, start, start + len(quote), sha)
    assert found is not None and shrunk[found[0] : found[1]] == quote


def test_a_changed_quote_is_not_found_and_nothing_else_is_highlighted() -> None:
    text = "Before. The final run cost 6 million dollars. After."
    quote = "The final run cost 6 million dollars."
    start = text.index(quote)
    edited = text.replace("6 million", "5 million")
    assert locate(edited, start, start + len(quote), quote_hash(quote)) is None
    # offsets past the end of a shorter file: no error, just not found
    assert locate("short", start, start + len(quote), quote_hash(quote)) is None


def test_of_several_copies_the_nearest_to_the_old_place_wins() -> None:
    quote = "Same sentence."
    text = " ".join([quote] * 5)
    starts = [i for i in range(len(text)) if text.startswith(quote, i)]
    sha = quote_hash(quote)
    assert locate("ab" + text, starts[3], starts[3] + len(quote), sha) == (
        starts[3] + 2,
        starts[3] + 2 + len(quote),
    )


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="start must be <= end"):
        locate("text", 3, 1, "0" * SHA_CHARS)
    with pytest.raises(ValueError, match="16 hex digits"):
        locate("text", 0, 1, "abc")


def test_citation_urls_carry_the_quote_hash(live: LiveServer) -> None:
    with live.client() as client:
        answer = client.post("/v1/chat", json={"message": "Which chip did DeepSeek use?"}).json()
    assert answer["citations"]
    for c in answer["citations"]:
        assert c["url"].endswith(f"&sha={quote_hash(c['quote'])}")
        with live.client() as client:
            span = client.get(c["url"]).json()
        assert span["text"] == c["quote"] and span["moved"] is False
        assert span["sha"] == quote_hash(c["quote"])


def _link(settings: Settings, source: str, quote: str) -> tuple[str, dict[str, object]]:
    text = read_source_text(settings.corpus_dir, source)
    start = text.index(quote)
    return f"/v1/sources/{source}", {
        "start": start,
        "end": start + len(quote),
        "sha": quote_hash(quote),
    }


def test_a_link_outlives_an_edit_and_a_reindex(indexed: Settings) -> None:
    quote = "The H800 chip was used by DeepSeek."
    path, params = _link(indexed, "notes.md", quote)
    notes = indexed.corpus_dir / "notes.md"
    server = serve(indexed)
    try:
        with server.client() as client:
            assert client.get(path, params=params).json()["moved"] is False
            notes.write_text(
                "# Notes on chips\n\nA paragraph added above.\n\n"
                + notes.read_text().split("\n\n", 1)[1],
                encoding="utf-8",
            )
            build(indexed)
            moved = client.get(path, params=params).json()
            assert moved["moved"] is True and moved["text"] == quote
            assert moved["start_char"] > params["start"]  # type: ignore[operator]
            assert (moved["start_line"], moved["end_line"]) == (5, 5)
            page = client.get(path, params=params, headers={"Accept": "text/html"})
            assert "found at its new place" in page.text and f"<mark>{quote}</mark>" in page.text

            notes.write_text(notes.read_text().replace("H800", "H20"), encoding="utf-8")
            build(indexed)
            changed = client.get(path, params=params)
            assert changed.status_code == 409
            assert changed.headers["content-type"] == "application/problem+json"
            assert "changed since the link was made" in changed.json()["detail"]
            page = client.get(path, params=params, headers={"Accept": "text/html"})
            assert page.status_code == 409 and "<mark>" not in page.text
            assert "changed since the link was made" in page.text
            # without the hash the old offsets are shown as they are (what links did before)
            plain = {k: v for k, v in params.items() if k != "sha"}
            assert client.get(path, params=plain).status_code == 200
    finally:
        server.stop()


def test_sha_needs_its_span_and_a_well_formed_hash(live: LiveServer) -> None:
    with live.client() as client:
        alone = client.get("/v1/sources/notes.md", params={"sha": "0" * 16})
        short = client.get("/v1/sources/notes.md", params={"start": 0, "end": 4, "sha": "abc"})
        backwards = client.get(
            "/v1/sources/notes.md", params={"start": 9, "end": 4, "sha": "0" * 16}
        )
    assert alone.status_code == 422 and "give start and end" in alone.json()["detail"]
    assert short.status_code == 422 and "sha" in short.json()["detail"]
    assert backwards.status_code == 422 and "start must be <= end" in backwards.json()["detail"]


def test_whole_returns_the_rest_of_the_document_around_the_span(
    live: LiveServer, indexed: Settings
) -> None:
    quote = "The H800 chip was used by DeepSeek."
    path, params = _link(indexed, "notes.md", quote)
    text = read_source_text(indexed.corpus_dir, "notes.md")
    with live.client() as client:
        span = client.get(path, params={**params, "whole": "true", "context": 1}).json()
    assert span["before"] + span["text"] + span["after"] == text
