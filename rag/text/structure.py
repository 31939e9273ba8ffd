"""Blocks of a document: the structural units that sentences never cross.

A block is a heading, a paragraph, a list item, a table row (or the table's header
row) or a code block, with the raw spans of its lines (markup prefixes such as ``#``,
``>`` and ``- `` left out). Markdown and plain text are read with markdown-it-py
(CommonMark with GFM tables; indented code off, since plain text is often indented;
plain text also without setext headings, HTML blocks and link reference definitions:
a ``---`` under a paragraph of a .txt file is a separator, ``<div>`` is text and
``[1]: ...`` a footnote). HTML is read by its tags: block-level tags end blocks,
``<br>`` is a forced line break, ``<tr>`` rows with ``<td>``/``<th>`` cells.
Offsets are ``str`` indices into the raw text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from markdown_it import MarkdownIt

from rag.types import Span

__all__ = ["MARKUP", "Block", "BlockKind", "Format", "blocks", "html_blocks", "markdown"]

BlockKind = Literal["paragraph", "heading", "list_item", "table_header", "table_row", "code"]
Format = Literal["text", "markdown", "html"]
"""How a document is read: ``html`` (.html, .htm), ``markdown`` (.md, .markdown) or
``text`` (.txt and the text extracted from a PDF)."""


@dataclass
class Block:
    """One structural unit of a document (see the module docstring)."""

    kind: BlockKind
    lines: list[Span]
    """Raw spans of the block's text lines, markup prefixes and suffixes left out (for
    HTML: the runs of text between its tags)."""
    cells: list[Span] = field(default_factory=list)
    """Table rows: raw spans of the cells, trimmed."""
    hard: list[int] = field(default_factory=list)
    """Raw offsets inside the block where a forced line break stands (HTML ``<br>``)."""
    flow: bool = False
    """The spans are runs of one flow of text (HTML), not lines: nothing between them
    is a line break, however the source was wrapped."""


@lru_cache(maxsize=2)
def markdown(fmt: Format = "markdown") -> MarkdownIt:
    """The parser of ``fmt`` (``markdown`` or ``text``; see the module docstring)."""
    parser = MarkdownIt("commonmark").enable("table").disable("code")
    if fmt == "text":
        parser.disable(["lheading", "html_block", "reference"])
    return parser


def _line_spans(text: str) -> list[Span]:
    spans, start = [], 0
    for line in text.split("\n"):
        spans.append((start, start + len(line)))
        start += len(line) + 1
    return spans


def trim(text: str, start: int, end: int) -> Span:
    """``(start, end)`` narrowed past white space at both ends (offsets into ``text``)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


_QUOTE = re.compile(r"[ \t]*(?:>[ \t]?)+")
_LIST_MARK = re.compile(r"[ \t]*(?:[-*+•◦▪‣]|\d{1,9}[.)])[ \t]+")
_HEADING_MARK = re.compile(r"[ \t]*#{1,6}(?:[ \t]+|$)")
_HEADING_CLOSE = re.compile(r"[ \t]+#+[ \t]*$")
_SETEXT = re.compile(r"[ \t]*(?:=+|-+)[ \t]*$")


def _cells(text: str, start: int, end: int) -> list[Span]:
    """Cell spans of a pipe-table row ``text[start:end]`` (an escaped ``\\|`` is text)."""
    row_start, row_end = trim(text, start, end)
    bars = [i for i in range(row_start, row_end) if text[i] == "|" and text[i - 1] != "\\"]
    if bars and bars[0] == row_start:
        bars = bars[1:]
        row_start += 1
    if bars and bars[-1] == row_end - 1:
        bars = bars[:-1]
        row_end -= 1
    cuts = [row_start - 1, *bars, row_end]
    return [trim(text, cuts[i] + 1, cuts[i + 1]) for i in range(len(cuts) - 1)]


def _unquote(text: str, spans: list[Span], quoted: bool) -> list[Span]:
    """The spans without their block-quote prefixes (``> ``)."""
    if not quoted:
        return spans
    out = []
    for s, e in spans:
        m = _QUOTE.match(text, s, e)
        out.append((m.end() if m else s, e))
    return out


def markdown_blocks(text: str, fmt: Format = "markdown") -> list[Block]:
    """Blocks of Markdown or plain text (see the module docstring)."""
    lines = _line_spans(text)
    found: list[Block] = []
    containers: list[str] = []
    header = False
    for token in markdown(fmt).parse(text):
        if token.type in ("list_item_open", "blockquote_open"):
            containers.append(token.type)
        elif token.type in ("list_item_close", "blockquote_close"):
            containers.pop()
        elif token.type in ("thead_open", "tbody_open"):
            header = token.type == "thead_open"
        if token.map is None:
            continue
        first, last = token.map
        spans = [lines[i] for i in range(first, min(last, len(lines)))]
        quoted = "blockquote_open" in containers
        if token.type == "heading_open":
            if token.markup in ("=", "-"):  # setext: the underline is not text
                spans = [s for s in spans if not _SETEXT.fullmatch(text, *s)]
            else:
                s, e = spans[0]
                s = _unquote(text, [(s, e)], quoted)[0][0]
                m = _HEADING_MARK.match(text, s, e)
                c = _HEADING_CLOSE.search(text, s, e)
                spans = [(m.end() if m else s, c.start() if c else e)]
            found.append(Block("heading", _unquote(text, spans, quoted)))
        elif token.type == "paragraph_open":
            spans = _unquote(text, spans, quoted)
            if "list_item_open" in containers:
                s, e = spans[0]
                m = _LIST_MARK.match(text, s, e)
                spans[0] = (m.end() if m else s, e)
                found.append(Block("list_item", spans))
            else:
                found.append(Block("paragraph", spans))
        elif token.type == "tr_open":
            s, e = _unquote(text, spans[:1], quoted)[0]
            kind: BlockKind = "table_header" if header else "table_row"
            found.append(Block(kind, [trim(text, s, e)], cells=_cells(text, s, e)))
        elif token.type == "fence":
            found.append(Block("code", spans[1:-1] if len(spans) > 2 else []))
        elif token.type == "html_block":
            found.extend(html_blocks(text, spans[0][0], spans[-1][1]))
    return found


MARKUP = re.compile(
    r"<!--.*?-->|<(script|style|noscript|template)\b.*?</\1\s*>|<![^>]*>|<\?.*?\?>"
    r"|</?[a-zA-Z][^\s/>]*(?:[^'\">]|\"[^\"]*\"|'[^']*')*>",
    re.IGNORECASE | re.DOTALL,
)
"""What of an HTML text is not text: comments, scripts, styles, templates, doctype and
processing instructions, and tags (attribute values may hold ``>``)."""
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z][a-zA-Z0-9]*)")
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "head", "header", "hr", "html", "li", "main", "nav", "ol", "p", "pre",
    "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul",
}  # fmt: skip
_HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "title", "caption", "summary", "dt"}


def _html_kind(stack: list[str]) -> BlockKind:
    inner = next((t for t in reversed(stack) if t in _BLOCK_TAGS), "p")
    if inner in _HEADING_TAGS:
        return "heading"
    return "list_item" if inner == "li" else "code" if inner == "pre" else "paragraph"


def html_blocks(text: str, start: int = 0, end: int | None = None) -> list[Block]:
    """Blocks of the HTML in ``text[start:end]``: each run of text between block-level
    tags is a block of the kind of the innermost open block element (``h1``-``h6``,
    ``title``, ``caption`` -> heading; ``li`` -> list item; ``pre`` -> code; else a
    paragraph); each ``tr`` is one table row whose cells are its ``td``/``th`` texts (a
    row in ``thead``, or of ``th`` cells only, is the header). ``<br>`` is a forced line
    break. An unclosed ``p`` or ``li`` closes at the next one, as browsers do."""
    end = len(text) if end is None else end
    found: list[Block] = []
    stack: list[str] = []
    runs: list[Span] = []  # text runs of the current block
    hard: list[int] = []
    row: list[list[Span]] | None = None  # cells of the open tr, each a list of runs
    row_th: list[bool] = []  # per cell: a th?
    in_thead = False

    def flush() -> None:
        nonlocal runs, hard
        spans = [s for s in (trim(text, a, b) for a, b in runs) if s[0] < s[1]]
        if spans and row is None:
            breaks = [h for h in hard if spans[0][0] < h]
            found.append(Block(_html_kind(stack), spans, hard=breaks, flow=True))
        elif spans and row is not None:
            if not row:
                row.append([])
            row[-1].extend(spans)
        runs, hard = [], []

    def close_row() -> None:
        nonlocal row
        flush()
        cells = [(c[0][0], c[-1][1]) for c in row or [] if c]
        if cells:
            is_header = in_thead or (bool(row_th) and all(row_th))
            kind: BlockKind = "table_header" if is_header else "table_row"
            found.append(Block(kind, [(cells[0][0], cells[-1][1])], cells=cells))
        row = None

    run_start = start
    for match in MARKUP.finditer(text, start, end):
        if match.start() > run_start:
            runs.append((run_start, match.start()))
        run_start = match.end()
        tag = _TAG_NAME.match(match.group())
        if tag is None:
            continue
        name = tag.group(1).lower()
        closing = match.group().startswith("</")
        if name == "br":
            hard.append(match.start())
            continue
        if name not in _BLOCK_TAGS:
            continue
        if name in ("td", "th"):
            flush()
            if row is None:
                row, row_th = [], []
            if not closing:
                row.append([])
                row_th.append(name == "th")
            continue
        if name in ("tr", "table", "thead", "tbody", "tfoot"):
            close_row()
            if name == "thead":
                in_thead = not closing
            elif name in ("table", "tbody"):
                in_thead = False
            if name == "tr" and not closing:
                row, row_th = [], []
        else:
            flush()
        if closing:
            if name in stack:
                while stack and stack.pop() != name:
                    pass
        elif name != "hr":
            if name in ("p", "li") and name in stack:
                while stack and stack.pop() != name:
                    pass
            stack.append(name)
    if end > run_start:
        runs.append((run_start, end))
    close_row()
    flush()
    return found


def blocks(text: str, fmt: Format = "text") -> list[Block]:
    """The blocks of a document in reading order (see the module docstring)."""
    text = text.replace("\ufeff", " ")  # a BOM would hide a first "# heading"
    if fmt == "html":
        return html_blocks(text)
    return markdown_blocks(text, fmt)
