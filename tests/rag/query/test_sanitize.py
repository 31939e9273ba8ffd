from __future__ import annotations

from rag.query.sanitize import Sanitizer


def test_sanitizer_holds_open_constructs_and_releases_clean_text() -> None:
    s = Sanitizer({1, 2}, set())
    text = "Fact one [1]. A [link](http://evil.example/x y) and ![i](http://e/i.png) end [2]."
    out = "".join(s.feed(text[i : i + 4]) for i in range(0, len(text), 4)) + s.finish()
    assert out == "Fact one [1]. A link and  end [2]."
    held = Sanitizer({1}, set())
    assert held.feed("Nothing cited yet, ") == ""  # nothing before the first valid marker
    assert held.feed("now [1] ") == "Nothing cited yet, now [1] "
