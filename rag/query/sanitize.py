"""What a chat front end may render of text the service did not write itself.

Two kinds of text reach Markdown renderers (chat front ends, the OpenAI-compatible
route's clients): answers an LLM wrote, which may obey instructions planted in a corpus
file, and corpus text quoted verbatim (extractive answers, quotes and file names in the
"Sources:" list). Neither may make a renderer show an image (fetched at once, with
whatever the URL carries), a link to a host outside the allowlist, or raw HTML.

``Sanitizer`` filters an LLM's answer while it streams. It parses the answer as
renderers do (markdown-it-py: CommonMark, GFM tables, and a GFM-style linkifier for
bare ``https://``, ``www.`` and e-mail links), and sends any raw HTML through nh3
(Ammonia) with an empty tag allowlist. What it keeps, re-serialised as Markdown whose
special characters are escaped: text, paragraphs and list items, ``[n]`` citation
markers that name a passage given to the model, and links whose URL is ``http``,
``https`` or protocol-relative, to an allowed host, without userinfo. Images, raw HTML
(``<script>``, ``<iframe>``, ``<a href>``, ``<img>``, ``<svg>``, event handlers, ...),
reference definitions, emphasis, headings and code formatting are dropped (headings and
code keep their text). Links to other hosts lose their URL (a written link keeps its
text); a bare domain without a path (``notes.md``) stays as text a linkifier cannot
read. Citation-like forms (``[1,2]``, ``【2】``, ``[２]``, ``[ 2 ]``, ``^[2]``,
``[1-3]``, zero-width characters inside) become ``[n]`` markers checked like ``[n]``.
A block the model wrote to look like the service's own "Sources:" list is removed.

``plain_markdown`` escapes corpus text so that it renders as exactly that text.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import nh3
from linkify_it import LinkifyIt
from markdown_it import MarkdownIt
from markdown_it.token import Token

from rag.types import WarningCode, warning

IMAGE_REMOVED = warning(WarningCode.LLM_IMAGE_REMOVED)
LINK_REMOVED = warning(WarningCode.LLM_LINK_REMOVED)
HTML_REMOVED = warning(WarningCode.LLM_HTML_REMOVED)
SOURCES_REMOVED = warning(WarningCode.LLM_SOURCES_REMOVED)
TRUNCATED = warning(WarningCode.LLM_ANSWER_TRUNCATED)

RAW_TEXT_TAGS = {
    "script", "style", "template", "textarea", "title", "iframe", "noscript", "noembed",
    "noframes", "xmp", "object", "svg", "math", "select", "applet", "frameset", "head",
}  # fmt: skip
"""HTML elements whose content is dropped with them (not shown as text)."""

SOURCES_LABELS = {
    "sources", "source", "references", "reference", "citations", "citation",
    "bibliography", "works cited", "sumber", "sumber rujukan", "rujukan", "nguồn",
    "nguồn tham khảo", "tài liệu tham khảo", "المصادر", "مصادر", "المراجع", "مراجع",
    "المصدر", "来源", "來源", "资料来源", "資料來源", "参考", "参考资料", "參考資料",
    "参考文献", "出处", "出處", "引用",
}  # fmt: skip
"""Labels (case-folded, NFKC) of a citation list in the languages the service answers."""


_WWW_TAIL = re.compile(r"[^\s<]{1,2048}")


class GfmLinkify(LinkifyIt):
    """linkify-it with what GFM renderers link as well: ``www.`` followed by any domain,
    ``xmpp:``, e-mail addresses and domains under any top-level domain (linkify-it alone
    knows a list of them), IP addresses. A superset of what markdown-it's and GFM's
    linkifiers turn into links, so text it finds nothing in is text for both."""

    def __init__(self) -> None:
        super().__init__(options={"fuzzy_link": True, "fuzzy_email": True, "fuzzy_ip": True})
        self.add("www.", {"validate": self._validate_www, "normalize": self._normalize_www})
        self.add("xmpp:", "mailto:")
        self.tlds(["[a-z]{2,63}"], True)

    def _validate_www(self, text: str, pos: int) -> int:
        """Length of a GFM ``www.`` link's rest at ``pos``: up to whitespace or ``<``
        (at most 2,048 characters, so overlapping candidates cost linear time), less
        trailing punctuation and unbalanced closing parentheses, as GFM trims them."""
        if pos >= len(text) or not text[pos].isalnum():
            return 0
        found = _WWW_TAIL.match(text, pos)
        tail = found.group() if found else ""
        tail = tail.rstrip("?!.,:*_~'\"")
        excess = tail.count(")") - tail.count("(")
        while excess > 0 and tail.endswith(")"):
            tail = tail[:-1].rstrip("?!.,:*_~'\"")
            excess -= 1
        return len(tail)

    def _normalize_www(self, match: Any) -> None:
        match.url = "http://" + match.url


@cache
def linkify() -> GfmLinkify:
    return GfmLinkify()


@cache
def linkifiers() -> tuple[LinkifyIt, ...]:
    """linkify-it as markdown-it uses it by default, and with the GFM rules: text is
    searched with both (adding schemas changes what linkify-it finds around them, so
    neither one's matches are a superset of the other's)."""
    return (LinkifyIt(), linkify())


@cache
def parser() -> MarkdownIt:
    """CommonMark with raw HTML, GFM tables and strikethrough, and the GFM linkifier."""
    md = MarkdownIt("commonmark", {"html": True, "linkify": True})
    md.enable(["linkify", "table", "strikethrough"])
    md.linkify = linkify()
    # every link CommonMark's syntax makes is a link here, whatever its scheme: renderers
    # differ in the URLs they refuse (markdown-it refuses javascript:, others do not),
    # so the allowlist decides, not the parser
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


# ---------------------------------------------------------------- links


def link_allowed(url: str, allowed_hosts: Collection[str]) -> bool:
    """True for an ``http``/``https`` (or protocol-relative) URL whose host is in
    ``allowed_hosts`` (lower-case host names), with no userinfo (``https://a@b``), no
    backslash, whitespace or control character anywhere."""
    if not url or any(c.isspace() or ord(c) < 0x20 or c in "\\<>\"'`" for c in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https", "") or not parts.netloc:
        return False
    if parts.scheme == "" and not url.startswith("//"):
        return False
    if "@" in parts.netloc or host is None:
        return False
    return host.lower() in allowed_hosts


def _explicit(text: str) -> bool:
    """A linkified span that names its scheme, ``//``, ``www.`` or is an address."""
    low = text.lower()
    return bool(re.match(r"[a-z][a-z0-9+.\-]*:|//|www\.", low)) or "@" in low


def _bare_host(url: str) -> bool:
    """A URL that is only a host: no path beyond ``/``, query, fragment, port, user."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
        and port is None
        and "@" not in parts.netloc
    )


# ---------------------------------------------------------------- citations

_OPEN = "[［【〔〖〘"
_CLOSE = "]］】〕〗〙"
_CITATION_LIKE = re.compile(
    rf"\^?[{re.escape(_OPEN)}]([^{re.escape(_OPEN + _CLOSE)}\n]{{1,64}}?)[{re.escape(_CLOSE)}]"
)
_NUMBERS = re.compile(r"\^?(\d{1,3}(?:[-–—]\d{1,3})?)((?:[,;、]\d{1,3}(?:[-–—]\d{1,3})?)*)")


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cf", "Zs", "Cc") or ch.isspace()


def citation_numbers(inner: str) -> list[int] | None:
    """The passage numbers a citation-like bracket content names (``1``, ``1,2``,
    ``１、２``, ``1-3``, ``^2``, with spaces or zero-width characters anywhere), or
    None when it is not only numbers. A range names at most 10 numbers."""
    text = "".join(ch for ch in unicodedata.normalize("NFKC", inner) if not _invisible(ch))
    found = _NUMBERS.fullmatch(text)
    if not found:
        return None
    numbers: list[int] = []
    for part in re.split(r"[,;、]", found.group(1) + found.group(2)):
        low, _, high = re.sub(r"[–—]", "-", part).partition("-")
        if not high:
            numbers.append(int(low))
            continue
        a, b = int(low), int(high)
        if not 0 <= b - a < 10:
            return None
        numbers.extend(range(a, b + 1))
    return numbers


# ---------------------------------------------------------------- escaping

_ALWAYS = set("\\`*[]<>|~")
_LINE_START = set("#+-=>")
_ORDERED = re.compile(r"\d{1,9}[.)]")
_DEFANG = set(".:/@")
"""Characters of a link escaped so that no linkifier reads it as one."""


@dataclass
class _Escaper:
    """Writes text as Markdown that renders as exactly that text. Knows whether it is
    at the start of a line (where ``#``, ``-``, ``1.`` ... would start a block; leading
    whitespace, which would indent code, is dropped) and whether a citation marker was
    just written (``[1](x)`` and ``[1]: x`` would make it a link)."""

    out: list[str] = field(default_factory=list)
    line_start: bool = True
    after_marker: bool = False

    def plan(self, text: str, defang: Collection[int] = ()) -> tuple[list[str], bool, bool]:
        """What each character of ``text`` is written as ('' when dropped, ``\\c``
        when escaped; the characters at ``defang`` are escaped too), and the state
        after it. Changes nothing."""
        outs: list[str] = []
        line_start, after_marker = self.line_start, self.after_marker
        ordered_end = -1
        for i, ch in enumerate(text):
            first = False
            if ch == "\n":
                j = len(outs) - 1
                while j >= 0 and text[j] in " \t":
                    outs[j] = ""  # trailing whitespace
                    j -= 1
                outs.append("\n")
                line_start, after_marker = True, False
                continue
            if line_start:
                if ch in " \t":
                    outs.append("")
                    continue
                line_start, first = False, True
                if ch.isdigit():
                    found = _ORDERED.match(text, i)
                    ordered_end = found.end() - 1 if found else -1
            escape = (
                ch in _ALWAYS
                or i == ordered_end
                or i in defang
                or (ch in _LINE_START and first)
                or (ch in "(:" and after_marker)
            )
            if not escape and ch == "_":
                before = text[i - 1] if i else ""
                after = text[i + 1] if i + 1 < len(text) else ""
                escape = not (before.isalnum() and after.isalnum())
            if not escape and ch == "&":
                after = text[i + 1] if i + 1 < len(text) else ""
                escape = after == "#" or after.isalnum()
            outs.append("\\" + ch if escape else ch)
            after_marker = False
        return outs, line_start, after_marker

    def text(self, text: str, defang: Collection[int] = ()) -> None:
        outs, self.line_start, self.after_marker = self.plan(text, defang)
        self.out.extend(outs)

    def raw(self, markdown: str, marker: bool = False) -> None:
        """Markdown written by the service itself (a marker, an allowed link)."""
        self.out.append(markdown)
        self.line_start = False
        self.after_marker = marker

    def result(self) -> str:
        return "".join(self.out).strip()


def _runs(text: str, outs: list[str]) -> Iterator[tuple[int, int]]:
    """Ranges of ``text`` written unchanged and unbroken: what a renderer's linkifier
    reads as one piece (an escape ends a text token in markdown-it and cmark-gfm)."""
    start = None
    for i, ch in enumerate(text):
        plain = outs[i] == ch and ch != "\n"
        if plain and start is None:
            start = i
        elif not plain and start is not None:
            yield start, i
            start = None
    if start is not None:
        yield start, len(text)


_SCHEME_CHAR = re.compile(r"[a-z0-9.+-]", re.IGNORECASE)
_VIEW = 4096
"""Characters of written Markdown a scheme's link is looked for in (one reaching
further is removed whatever its host)."""


def _scheme_links(text: str, outs: list[str]) -> Iterator[tuple[int, int, Any]]:
    """Links markdown-it's inline rule finds: at each unescaped ``://`` after a scheme
    (preceded by a character that is no scheme character), linkify-it's
    ``match_at_start`` on the *written* Markdown (escapes and all, as the rule reads
    it: ``https://allowed\\@evil`` is a link to evil). ``(start, end, match)`` in
    ``text`` indexes."""
    pos = text.find("://")
    starts: list[int] | None = None
    while pos != -1:
        if outs[pos : pos + 3] == [":", "/", "/"]:
            s = pos
            while s > 0 and outs[s - 1] == text[s - 1] and _SCHEME_CHAR.match(text[s - 1]):
                s -= 1
            while s < pos and not text[s].isalpha():
                s += 1  # a scheme starts with a letter
            if s < pos:
                if starts is None:
                    starts = [0]
                    for out in outs:
                        starts.append(starts[-1] + len(out))
                view = "".join(outs)[starts[s] : starts[s] + _VIEW]
                for linkifier in linkifiers():
                    match = linkifier.match_at_start(view)
                    if match is None:
                        continue
                    end = starts[s] + match.last_index
                    e = pos
                    while e < len(text) and starts[e] < end:
                        e += 1
                    if match.last_index >= len(view):
                        match.url = ""  # too long to judge: not allowed
                    yield s, e, match
        pos = text.find("://", pos + 1)


def _linked_text(
    esc: _Escaper, text: str, action: Callable[[Any], str], on_drop: Callable[[], None]
) -> None:
    """Write ``text`` so that every link a renderer's linkifier finds in what it reads
    is kept (``action(match) == "keep"``: an allowed host), escaped so no linkifier
    reads it (``"defang"``), or removed (``"drop"``, replaced by a space so nothing
    joins across it). Links are looked for as markdown-it looks for them: linkify-it
    on each text token (the pieces between escapes) and at each ``://`` in the
    written source. Repeats until no renderer would find anything else."""
    defang: set[int] = set()
    for _ in range(16):
        outs, _, _ = esc.plan(text, defang)
        found: list[tuple[int, int, Any]] = list(_scheme_links(text, outs))
        for start, end in _runs(text, outs):
            for linkifier in linkifiers():
                for match in linkifier.match(text[start:end]) or []:
                    found.append((start + match.index, start + match.last_index, match))
        drops: list[tuple[int, int]] = []
        grew = False
        for lo, hi, match in found:
            kind = action(match)
            if kind == "drop":
                drops.append((lo, hi))
            elif kind == "defang":
                new = {i for i in range(lo, hi) if text[i] in _DEFANG} - defang
                if new:
                    defang |= new
                    grew = True
        if drops:
            on_drop()
            for lo, hi in _merged(drops)[::-1]:
                text = text[:lo] + " " + text[hi:]
            defang = set()
        elif not grew:
            break
    else:  # no fixed point (never seen): every character a link could use is escaped
        defang = {i for i, ch in enumerate(text) if ch in _DEFANG}
    esc.text(text, defang)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def plain_markdown(text: str, markers: Collection[int] = ()) -> str:
    """``text`` as Markdown that renders as exactly this text: no link (every URL,
    ``www.`` or e-mail address and domain name is escaped so no linkifier reads it),
    no image, no HTML, no emphasis or block syntax. ``[n]`` for ``n`` in ``markers``
    stays a citation marker; any other ``[n]`` is escaped. Leading and trailing
    whitespace of a line is dropped (as a Markdown paragraph would)."""
    esc = _Escaper()
    # as markdown-it normalises its input (a NUL is U+FFFD to it, and to its linkifier)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    keep = set(markers)
    pos = 0
    for found in re.finditer(r"\[(\d{1,3})\]", text):
        if int(found.group(1)) in keep:
            _linked_text(esc, text[pos : found.start()], _always_defang, _nothing)
            esc.raw(found.group(), marker=True)
            pos = found.end()
    _linked_text(esc, text[pos:], _always_defang, _nothing)
    return "".join(esc.out)


def _always_defang(match: Any) -> str:
    return "defang"


def _nothing() -> None:
    return None


# ---------------------------------------------------------------- rendering


@dataclass
class _Text:
    text: str


@dataclass
class _Html:
    html: str


@dataclass
class _Link:
    """An allowed link, with the items of its text."""

    href: str
    items: list[_Text | _Html]


_Item = _Text | _Html | _Link


class _Renderer:
    """Renders parsed segments of an answer; keeps what spans segments (warnings,
    whether a valid marker was seen, an open "Sources:" list)."""

    def __init__(self, valid: Collection[int], allowed_hosts: Collection[str]) -> None:
        self.valid = set(valid)
        self.allowed_hosts = {h.lower() for h in allowed_hosts} - {""}
        self.warnings: list[str] = []
        self.cited = False
        self.in_sources = False

    def warn(self, warning: str) -> None:
        if warning not in self.warnings:
            self.warnings.append(warning)

    # blocks

    def blocks(self, tokens: list[Token], env: dict[str, Any]) -> list[str]:
        """The output blocks (Markdown, without blank lines) of a parsed segment."""
        for ref in env.get("references", {}).values():
            if not link_allowed(ref.get("href", ""), self.allowed_hosts):
                self.warn(LINK_REMOVED)
        out: list[str] = []
        for start, end in _top_level(tokens, 0, len(tokens)):
            if self._sources(tokens, start, end):
                self.warn(SOURCES_REMOVED)
                continue
            out.extend(b for b in self._block(tokens, start, end) if b)
        return out

    def _sources(self, tokens: list[Token], start: int, end: int) -> bool:
        """Is this block (part of) a citation list the model wrote: a line labelled
        like "Sources:", or, right after one, lines that each start with a marker."""
        lines = [ln.strip(" \t*_#~>-•·+") for ln in _plain(tokens[start:end]).split("\n")]
        lines = [ln for ln in lines if ln]
        if not lines:
            return False
        if _is_label(lines[0]):
            self.in_sources = True
            return True
        if self.in_sources and all(_starts_with_citation(ln) for ln in lines):
            return True
        self.in_sources = False
        return False

    def _block(self, tokens: list[Token], start: int, end: int) -> list[str]:
        tok = tokens[start]
        kind = tok.type
        if kind in ("paragraph_open", "heading_open"):
            children = tokens[start + 1].children or []
            cut = _sources_tail(children)
            if cut < len(children):
                self.warn(SOURCES_REMOVED)
                self.in_sources = True
            return [self.items(self._inline_items(children[:cut]))]
        if kind == "blockquote_open":
            out: list[str] = []
            for s, e in _top_level(tokens, start + 1, end - 1):
                out.extend(self._block(tokens, s, e))
            return out
        if kind in ("bullet_list_open", "ordered_list_open"):
            return ["\n".join(self._list(tokens, start, end))]
        if kind in ("fence", "code_block"):
            return [self.items([_Text(tok.content)])]
        if kind == "html_block":
            self.warn(HTML_REMOVED)
            return [self.items([_Html(tok.content)])]
        if kind == "table_open":
            rows = []
            for i in range(start, end):
                if tokens[i].type == "tr_open":
                    cells = []
                    j = i + 1
                    while tokens[j].type != "tr_close":
                        if tokens[j].type == "inline":
                            cells.append(tokens[j])
                        j += 1
                    rows.append(self._row(cells))
            return ["\n".join(r for r in rows if r)]
        return []  # hr, and anything unknown: nothing

    def _row(self, cells: list[Token]) -> str:
        items: list[_Item] = []
        for n, cell in enumerate(cells):
            if n:
                items.append(_Text(" | "))
            items.extend(self._inline_items(cell.children or []))
        return self.items(items)

    def _list(self, tokens: list[Token], start: int, end: int) -> list[str]:
        ordered = tokens[start].type == "ordered_list_open"
        number = int(tokens[start].attrs.get("start", 1) or 1) if ordered else 0
        lines: list[str] = []
        for s, e in _top_level(tokens, start + 1, end - 1):  # list items
            marker = f"{number}." if ordered else "-"
            number += 1
            parts: list[str] = []
            for bs, be in _top_level(tokens, s + 1, e - 1):
                if tokens[bs].type in ("bullet_list_open", "ordered_list_open"):
                    parts.extend(self._list(tokens, bs, be))
                else:
                    parts.extend(b for b in self._block(tokens, bs, be) if b)
            text = "\n".join(parts)
            if not text:
                continue
            pad = " " * (len(marker) + 1)
            body = text.replace("\n", "\n" + pad)
            lines.append(f"{marker} {body}")
        return lines

    # inline

    def _inline_items(self, children: list[Token]) -> list[_Item]:
        items: list[_Item] = []
        link: _Link | None = None  # an allowed link being collected
        mode = ""  # how the text of the link being read is treated
        for tok in children:
            kind = tok.type
            target: list[Any] = link.items if link is not None else items
            if kind == "link_open":
                href = str(tok.attrs.get("href", ""))
                if link_allowed(href, self.allowed_hosts):
                    if tok.markup in ("linkify", "autolink"):
                        items.append(_Link(href, []))  # shown as <href>
                        mode = "drop"
                    else:
                        link, mode = _Link(href, []), "keep"
                elif tok.markup not in ("linkify", "autolink"):
                    self.warn(LINK_REMOVED)
                    label = _child_text(tok, children)
                    if citation_numbers(label) is not None:  # [1](url): the marker stays
                        target.append(_Text(f"[{label}]"))
                        mode = "drop"
                    else:
                        mode = "text"  # a written link: its text stays, its URL goes
                elif not _explicit(_child_text(tok, children)) and _bare_host(href):
                    mode = "text"  # a bare domain name: written so no linkifier reads it
                else:
                    mode = "drop"
                    self.warn(LINK_REMOVED)
                continue
            if kind == "link_close":
                if link is not None:
                    items.append(link)
                link, mode = None, ""
                continue
            if mode == "drop":
                continue
            if kind == "text" or kind == "code_inline":
                target.append(_Text(tok.content))
            elif kind in ("softbreak", "hardbreak"):
                target.append(_Text("\n"))
            elif kind == "html_inline":
                self.warn(HTML_REMOVED)
                target.append(_Html(tok.content))
            elif kind == "image":
                self.warn(IMAGE_REMOVED)
            # emphasis, strikethrough: their text is kept, their markup is not
        if link is not None:
            items.append(link)
        return items

    def items(self, items: list[_Item]) -> str:
        """Markdown of inline items: text runs (raw HTML in them cleaned by nh3) with
        citation markers resolved, links in text removed, all escaped; allowed links."""
        esc = _Escaper()
        run: list[_Text | _Html] = []
        for item in [*items, None]:
            if isinstance(item, _Text | _Html):
                run.append(item)
                continue
            if run:
                self._text(esc, _run_text(run))
                run = []
            if isinstance(item, _Link):
                label = _Escaper(line_start=False)
                _linked_text(label, _run_text(item.items), self._action, self._link_removed)
                text = label.result().replace("\n", " ")
                esc.raw(f"[{text}](<{item.href}>)" if text else f"<{item.href}>")
        return esc.result()

    def _link_removed(self) -> None:
        self.warn(LINK_REMOVED)

    def _text(self, esc: _Escaper, text: str) -> None:
        """Citation-like forms become checked markers (an invalid one is removed, and
        the text around it joins up before links are looked for); links filtered."""
        pieces: list[str | int] = [""]
        pos = 0
        for found in _CITATION_LIKE.finditer(text):
            numbers = citation_numbers(found.group(1))
            if numbers is None:
                continue
            pieces[-1] = str(pieces[-1]) + text[pos : found.start()]
            for n in numbers:
                if n in self.valid:
                    self.cited = True
                    pieces.extend([n, ""])
                else:
                    self.warn(warning(WarningCode.INVALID_CITATION, f"[{n}]"))
            pos = found.end()
        pieces[-1] = str(pieces[-1]) + text[pos:]
        for piece in pieces:
            if isinstance(piece, int):
                esc.raw(f"[{piece}]", marker=True)
            elif piece:
                _linked_text(esc, piece, self._action, self._link_removed)

    def _action(self, match: Any) -> str:
        """keep (an allowed host), defang (a bare domain name) or drop."""
        url = str(match.url)
        if link_allowed(url, self.allowed_hosts):
            return "keep"
        if not match.schema and not _explicit(str(match.raw)) and _bare_host(url):
            return "defang"
        return "drop"


def _run_text(run: list[_Text | _Html]) -> str:
    """The visible text of text and raw HTML pieces: the HTML through nh3 with no tag
    allowed (tags go, text stays, script/style/iframe/svg... content goes)."""
    if not any(isinstance(p, _Html) for p in run):
        return "".join(p.text for p in run if isinstance(p, _Text))
    source = "".join(html.escape(p.text) if isinstance(p, _Text) else p.html for p in run)
    cleaned = nh3.clean(
        source,
        tags=set(),
        clean_content_tags=RAW_TEXT_TAGS,
        attributes={},
        strip_comments=True,
        link_rel=None,
    )
    return html.unescape(cleaned)


def _child_text(link_open: Token, children: list[Token]) -> str:
    i = children.index(link_open)
    out = []
    for tok in children[i + 1 :]:
        if tok.type == "link_close":
            break
        out.append(tok.content)
    return "".join(out)


def _top_level(tokens: list[Token], start: int, end: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` token ranges of the blocks at the nesting level of
    ``tokens[start]`` up to ``end``."""
    i = start
    while i < end:
        tok = tokens[i]
        if tok.nesting == 1:
            depth, j = 1, i + 1
            while depth and j < end:
                depth += tokens[j].nesting
                j += 1
            yield i, j
            i = j
        else:
            if tok.nesting == 0:
                yield i, i + 1
            i += 1


def _plain(tokens: list[Token]) -> str:
    out: list[str] = []
    for tok in tokens:
        if tok.type == "inline":
            for child in tok.children or []:
                if child.type in ("text", "code_inline"):
                    out.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    out.append("\n")
            out.append("\n")
        elif tok.type in ("fence", "code_block", "html_block"):
            out.append(tok.content + "\n")
    return "".join(out)


def _sources_tail(children: list[Token]) -> int:
    """Where a paragraph's last lines are a citation list (a "Sources:" line, then
    only lines that start with a marker): the index of the line break before it, or
    ``len(children)``."""
    breaks = [i for i, t in enumerate(children) if t.type in ("softbreak", "hardbreak")]
    starts = [0, *(i + 1 for i in breaks)]
    ends = [*breaks, len(children)]
    lines = [
        _plain_inline(children[a:b]).strip(" \t*_#~>-•·+")
        for a, b in zip(starts, ends, strict=True)
    ]
    for n in range(1, len(lines)):
        if _is_label(lines[n]) and all(_starts_with_citation(ln) for ln in lines[n + 1 :] if ln):
            return breaks[n - 1]
    return len(children)


def _plain_inline(children: list[Token]) -> str:
    return "".join(c.content for c in children if c.type in ("text", "code_inline"))


def _label_text(line: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", line).casefold().split())


def _is_label(line: str) -> bool:
    """A line like "Sources", "Sources:" or "Sources: [1] ...", in any of the languages."""
    text = _label_text(line)
    head, colon, _ = text.partition(":")
    return head.strip(" *_") in SOURCES_LABELS and (bool(colon) or head == text)


def _starts_with_citation(line: str) -> bool:
    found = _CITATION_LIKE.match(line.lstrip())
    return found is not None and citation_numbers(found.group(1)) is not None


# ---------------------------------------------------------------- streaming

_CLOSABLE = {
    "paragraph_open",
    "heading_open",
    "hr",
    "table_open",
    "blockquote_open",
    "html_block",
    "fence",
}
"""Top-level blocks that a blank line after them ends for good (a list or an indented
code block may go on after one; an unclosed fence or <script> block swallows it)."""


def _cut_lines(tokens: list[Token], lines: int) -> list[int]:
    """Line numbers where one top-level block ends for good: before the next block, or
    after a closable last block that has a line after it."""
    blocks = [t for t in tokens if t.level == 0 and t.nesting >= 0 and t.map is not None]
    cuts: list[int] = []
    for i, tok in enumerate(blocks):
        assert tok.map is not None
        end = tok.map[1]
        if i + 1 < len(blocks) or (tok.type in _CLOSABLE and end < lines):
            cuts.append(end)
    return cuts


def _line_count(text: str) -> int:
    """Lines as markdown-it counts them (a last line without a newline counts)."""
    return text.count("\n") + (0 if not text or text.endswith("\n") else 1)


class Sanitizer:
    """Filters an LLM's answer as it streams (see the module doc for what is kept).

    ``feed(delta)`` returns what may be shown now, ``finish()`` the rest; joined, the
    pieces equal ``finish()`` of a Sanitizer fed the whole text at once, however the
    text was split. Text is released by top-level Markdown blocks (paragraphs, lists,
    ...) once the parser confirms a block is closed: a block that a blank line ends
    for good, or any block once the next one has begun. Each block is rendered on its
    own, so nothing later in the answer (a reference definition, a closing tag) can
    change what was shown. Nothing is released before the first valid citation marker.

    The cost is linear in the answer's length: what is held is re-parsed only when it
    has at least doubled since it was last parsed (``parsed_chars`` counts every
    character given to the parser). Past ``max_chars`` characters the answer is cut
    (warning ``llm_answer_truncated``; ``truncated`` tells the caller to stop reading).
    """

    def __init__(
        self, valid: Collection[int], allowed_hosts: Collection[str], max_chars: int | None = None
    ) -> None:
        if max_chars is not None and max_chars <= 0:
            raise ValueError(f"max_chars must be > 0, got {max_chars}")
        self.max_chars = max_chars
        self._renderer = _Renderer(valid, allowed_hosts)
        self.truncated = False
        self.parsed_chars = 0
        self._received = 0
        self._cr = False
        self._held = ""
        self._line_start = 0  # where the held text's incomplete last line starts
        self._blank_end = 0  # end of the last blank line of the held text (0: none)
        self._parsed_to = 0  # the held text's prefix given to the parser last time
        self._budget = 0  # held length before which it is not parsed again
        self._out: list[str] = []
        self._wrote = False

    @property
    def cited(self) -> bool:
        return self._renderer.cited

    @property
    def warnings(self) -> list[str]:
        return self._renderer.warnings

    def feed(self, delta: str) -> str:
        """Take a piece of model output; return what may be shown now ('' if none)."""
        if self.truncated or not delta:
            return ""
        text = ("\r" if self._cr else "") + delta
        self._cr = text.endswith("\r")
        if self._cr:
            text = text[:-1]
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
        if self.max_chars is not None and self._received + len(text) > self.max_chars:
            text = text[: self.max_chars - self._received]
            self.truncated = True
            self._cr = False
            self._renderer.warn(TRUNCATED)
        self._received += len(text)
        start = len(self._held)
        self._held += text
        self._scan(start)
        if self._blank_end > self._parsed_to and len(self._held) >= self._budget:
            self._parse(self._blank_end)
        return self._release()

    def finish(self) -> str:
        """What is left to show at the end of the stream (released even if uncited)."""
        if self._cr:
            self._held += "\n"
            self._cr = False
        if self._held:
            self._parse(len(self._held), last=True)
        out = "".join(self._out)
        self._out = []
        return out

    def _scan(self, start: int) -> None:
        """Find the blank lines completed by the text added at ``start``."""
        held = self._held
        end = held.find("\n", start)
        while end != -1:
            if not held[self._line_start : end].strip(" \t"):
                self._blank_end = end + 1
            self._line_start = end + 1
            end = held.find("\n", end + 1)

    def _parse(self, upto: int, last: bool = False) -> None:
        """Parse the held text up to ``upto`` (the end of a blank line, or all of it at
        the end), render and queue every block confirmed closed, keep the rest."""
        text = self._held[:upto]
        tokens = parser().parse(text)
        self.parsed_chars += len(text)
        cuts = _cut_lines(tokens, _line_count(text))
        offsets = _line_offsets(text, cuts)
        if last:
            offsets.append(len(text))
        previous = 0
        for offset in offsets:
            if offset > previous:
                self._render(self._held[previous:offset])
                previous = offset
        self._held = self._held[previous:]
        self._line_start = max(self._line_start - previous, 0)
        self._blank_end = max(self._blank_end - previous, 0)
        self._parsed_to = upto - previous
        self._budget = 2 * self._parsed_to

    def _render(self, segment: str) -> None:
        env: dict[str, Any] = {}
        tokens = parser().parse(segment, env)
        self.parsed_chars += len(segment)
        for block in self._renderer.blocks(tokens, env):
            self._out.append(("\n\n" if self._wrote else "") + block)
            self._wrote = True

    def _release(self) -> str:
        if not self._renderer.cited or not self._out:
            return ""
        out = "".join(self._out)
        self._out = []
        return out


def _line_offsets(text: str, lines: list[int]) -> list[int]:
    """Character offsets of the starts of the given (sorted) line numbers."""
    wanted = sorted(set(lines))
    offsets: list[int] = []
    line, pos = 0, 0
    for target in wanted:
        while line < target:
            nxt = text.find("\n", pos)
            if nxt == -1:
                pos = len(text)
                line = target
                break
            pos = nxt + 1
            line += 1
        offsets.append(pos)
    return offsets


def sanitize(
    text: str, valid: Collection[int], allowed_hosts: Collection[str], max_chars: int | None = None
) -> tuple[str, list[str]]:
    """The whole ``text`` through a ``Sanitizer``: ``(filtered text, warnings)``."""
    sanitizer = Sanitizer(valid, allowed_hosts, max_chars)
    out = sanitizer.feed(text) + sanitizer.finish()
    return out, sanitizer.warnings
