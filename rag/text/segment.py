"""Sentences and words of any script, with raw offsets (ICU through icu4py).

**Sentences** (``segments``): a document is cut into blocks by its structure
(rag/text/structure.py: headings, paragraphs, list items, table rows, code); the lines
of a block are joined where the text was only wrapped (hard-wrapped plain text, PDF
extraction, e-mail: ``SHORT_LINES``, ``WRAP_SHARE``, ``WRAP_MAX``); lines of rules
(``=====``) are dropped; each run of joined lines is cut by ICU's sentence rules
(Unicode UAX #29 with CLDR's abbreviations, ``LANG@ss=standard``, where ICU applies
them to whole words), run once over the whole document. On top of ICU:

- a footnote or reference marker (``[1]``, ``[a]``, ``¹``, ``[citation needed]``) is
  text of its sentence, never a sentence or a sentence end of its own;
- Greek ``;`` asks a question, Armenian ``:`` ends a sentence;
- a sentence end before a number is one (``in 1975. 300 beds were added``), which
  UAX #29 misses when a lower-case word follows the number;
- a period after an initial (``J. R. R.``), a title (``Dr. Smith``), an abbreviation
  before a number (``Sec. 2.1``) or an ordinal in a language that writes ordinals so
  (``am 3. Mai``) does not end a sentence;
- an opening bracket or quote after ``。`` opens the next sentence;
- Thai and Lao sentences (these scripts have no full stop) longer than
  ``CLAUSE_BUDGET`` are cut at the spaces between their clauses.

Each segment has a kind decided by structure, never by length: ``heading`` (a Markdown
or HTML heading; a line without a sentence end that opens the document, is a
paragraph of its own or stands among longer lines of one: ``_heading_like``),
``table_header``, ``table_row``, ``list_item`` (a Markdown or HTML list item, a line
opening with a bullet), ``code``, ``question`` (ends with a question mark) or
``statement``.
``content`` is what a reader is shown and what is embedded: markup dropped, entities
decoded, lines joined, NFC, and a table row paired with its header
(``Plan: Family | Monthly fee (EUR): 29``).

**Words** (``tokens``): ICU word boundaries (dictionaries for Thai, Lao, Khmer,
Myanmar, Chinese and Japanese), each word normalised (rag/text/normalise.py), numbers
in one form, product codes joined (``X-900`` -> ``x900``), Arabic clitics stripped,
Chinese and Japanese as words and character bigrams, Korean words with their bigrams.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Literal

from icu4py.breakers import BaseBreaker, SentenceBreaker, WordBreaker

from rag.text.normalise import nfc, normalise, normalise_number
from rag.text.structure import MARKUP, Block, Format, blocks, markdown, trim
from rag.types import Sentence, Span

__all__ = [
    "CLAUSE_BUDGET",
    "Format",
    "Kind",
    "Rendering",
    "Segment",
    "display",
    "format_of",
    "identifiers",
    "render",
    "segments",
    "tokens",
    "word_spans",
]

Kind = Literal["statement", "question", "heading", "list_item", "table_header", "table_row", "code"]

CLAUSE_BUDGET = 150
"""Characters above which a Thai or Lao sentence is cut at the spaces between its
clauses, whole clauses packed up to this length (the mean English XQuAD sentence, 129
characters, plus a margin)."""

SHORT_LINES = 40
"""A block whose lines are all narrower than this (display columns) is a list of short
lines (``key: value`` pairs, an address), not wrapped prose: each line is a unit,
unless the next line continues it (it opens with a lower-case letter, or the line ends
with a comma or a hyphen)."""
WRAP_SHARE = 0.6
"""In wrapped prose, a line narrower than this share of the block's widest line ends
its unit, unless the next line continues it (as above)."""
WRAP_MAX = 160
"""A line wider than this (display columns) was not wrapped by anyone: a paragraph
written on one line, whose line break ends it (hard-wrapped text, PDF lines and e-mail
stay under 130)."""


@dataclass(frozen=True)
class Segment(Sentence):
    """A ``Sentence`` (rag/types.py: ``start``, ``end``, ``kind``, ``content``) with the
    number of the structural block it belongs to: the sentences of one paragraph share
    it."""

    block: int = 0


def format_of(kind: str) -> Format:
    """How a document of ``SourceDocument.kind`` is read: ``html`` and ``markdown`` as
    such, ``text`` and ``pdf`` (text extracted by pypdf) as plain text."""
    return "html" if kind == "html" else "markdown" if kind == "markdown" else "text"


# -- ICU ---------------------------------------------------------------------------


def _locale(lang: str | None, suppressions: bool = True) -> str:
    if not lang or lang == "und":
        return "und"
    return f"{lang}@ss=standard" if suppressions and _whole_word_suppressions(lang) else lang


_PROBES = (
    ("qzxw", "abcdefghijklmnopqrstuvwxyz"),
    ("шщюж", "абвгдежзийклмнопрстуфхцчшщъыьэюя"),
    ("ξψωζ", "αβγδεζηθικλμνξοπρστυφχψω"),
)


@cache
def _whole_word_suppressions(lang: str) -> bool:
    """Whether ICU's abbreviations for ``lang`` (CLDR's sentence-break suppressions)
    can be used: ICU matches an abbreviation against the end of any word, so a locale
    whose list holds a single letter keeps every word ending in it from ending a
    sentence (ICU 78: German ``b.`` ``r.``, so "im selben Jahr. Sie ..." was one
    sentence; Portuguese ``f.`` ``l.``, so "... no Brasil. Ela ..."). Probed once per
    language on made-up words; where it fails, the root rules and the fixes of this
    module (titles, initials, numbers) stand in."""
    locale = f"{lang}@ss=standard"
    for base, letters in _PROBES:
        for letter in letters:
            if len(list(SentenceBreaker(f"Xyz {base}{letter}. Next one.", locale))) == 1:
                return False
    return True


def _pieces(breaker: BaseBreaker) -> Iterator[Span]:
    """Code-point spans of ICU's segments (icu4py's own ``segments()`` counts UTF-16
    units, which differ from ``str`` offsets after any character beyond U+FFFF)."""
    pos = 0
    for piece in breaker:
        yield pos, pos + len(piece)
        pos += len(piece)


# -- the text ICU reads (same length as the raw text) --------------------------------

_FOOTNOTE = re.compile(
    r"\[(?:\^?\d{1,3}|[a-z]|[ivx]{1,4}|note \d{1,3}|nb \d{1,3})\]"
    r"|(?<=[.!?…。！？؟।။።])\s?\[[^\[\]\n]{1,30}\]"  # "[citation needed]" after an end
    r"|[⁰¹²³⁴⁵⁶⁷⁸⁹]+|[*†‡§]+(?=\s|$)",
    re.IGNORECASE,
)
_GREEK_QUESTION = re.compile(r"(?<=[\u0370-\u03ff\u1f00-\u1fff])([\"'»”)\]]?)[;\u037e]")
_ARMENIAN_STOP = re.compile(r"(?<=[\u0531-\u0587])[:](?=\s|$)")


def _width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in line)


def _units(text: str, block: Block) -> list[list[Span]]:
    """The block's lines grouped into units: lines joined where the text was only
    wrapped (see ``SHORT_LINES``, ``WRAP_SHARE``, ``WRAP_MAX``)."""
    lines = [ln for ln in block.lines if ln[0] < ln[1]]
    if block.kind in ("paragraph", "list_item") and not block.flow:
        # a line of rules or an underline ("=====", "* * *") says nothing
        lines = [ln for ln in lines if _has_word(text, *ln)]
    if not lines:
        return []
    if block.kind in ("heading", "table_header", "table_row"):
        return [lines]
    if block.flow:  # HTML: one flow of text, cut at <br> only
        flow: list[list[Span]] = [lines]
        for cut in block.hard:
            for k, unit in enumerate(flow):
                if unit[0][0] < cut < unit[-1][1]:
                    before = [(s, min(e, cut)) for s, e in unit if s < cut]
                    after = [(max(s, cut), e) for s, e in unit if e > cut]
                    flow[k : k + 1] = [u for u in (before, after) if u]
                    break
        return flow
    widths = [_width(text[s:e]) for s, e in lines]
    widest = max(widths)
    units: list[list[Span]] = [[lines[0]]]
    for i in range(1, len(lines)):
        prev, line = text[slice(*lines[i - 1])], text[slice(*lines[i])]
        opener = line.lstrip()[:1]
        continued = (opener.isalpha() and opener.islower()) or prev.rstrip().endswith(
            ("-", ",", ";", "、", "，")
        )
        hard = (
            block.kind == "code"
            or widths[i - 1] > WRAP_MAX
            or opener in "•◦▪‣●■"
            or (not continued and (widest < SHORT_LINES or widths[i - 1] < WRAP_SHARE * widest))
        )
        if hard:
            units.append([lines[i]])
        else:
            units[-1].append(lines[i])
    return units


def _prepare(text: str, units: list[list[Span]]) -> str:
    """What ICU reads: the units' text in place; everything else (markup, prefixes,
    line breaks between units) a line break; a line break inside a unit a space;
    footnote markers closing brackets; Greek ``;`` a question mark; Armenian ``:``
    its full stop. Same length as ``text``, so ICU's offsets are raw offsets."""
    out = ["\n"] * len(text)
    for unit in units:
        start, end = unit[0][0], unit[-1][1]
        out[start:end] = " " * (end - start)
        for s, e in unit:
            out[s:e] = text[s:e]
    prepared = _FOOTNOTE.sub(lambda m: ")" * len(m.group()), "".join(out))
    prepared = _GREEK_QUESTION.sub(r"\1?", prepared)
    return _ARMENIAN_STOP.sub("։", prepared)


# -- sentence fixes ----------------------------------------------------------------

_CLOSERS = "\"'”’»)]}」』›〕】"
_TERMINAL = set(".!?…‼⁇⁈⁉。！？．｡؟۔।॥။።፧៕។։՞")
_QUESTION = set("?？؟՞፧⁇⁈")
_TITLES = {
    "dr", "prof", "mr", "mrs", "ms", "mx", "st", "mt", "gen", "col", "capt", "lt", "sgt",
    "rev", "hon", "sen", "rep", "gov", "pres", "hr", "sr", "sra", "srta", "mme", "mlle",
    "dott", "ing", "univ", "ks", "v", "vs", "бр", "им", "ул",
}  # fmt: skip
_NUMBER_ABBREVIATIONS = {
    "no", "nos", "nr", "nro", "núm", "num", "sec", "secs", "fig", "figs", "vol", "vols",
    "p", "pp", "pag", "pág", "ch", "chap", "art", "arts", "eq", "eqs", "ref", "refs", "tab",
    "para", "op", "cf", "ed", "ca", "approx", "vs", "v", "ver", "rev", "pt", "pts", "tel",
    "abs", "kap", "anm", "ziff", "bd", "jg", "s", "ss", "str", "č", "стр", "рис",
}  # fmt: skip
"""Abbreviations written before a number (``Sec. 2.1``, ``No. 5``, ``S. 12``)."""
ORDINAL_DOT = {
    "de", "da", "nb", "nn", "no", "fi", "cs", "sk", "hu", "pl", "sl", "hr", "sr", "bs",
    "tr", "et", "lv", "lt", "is", "fo",
}  # fmt: skip
"""Languages that write ordinals with a period (``am 3. Mai``)."""
_LAST_WORD = re.compile(r"(?:^|(?<=\s))(\w+)\W*$")
_SINGLE_LETTER = re.compile(r"[^\W\d_]\.")
_OPENERS = set("([{“‘«‹「『《〈【〔（［｛")
_DIGIT_OPENS = re.compile(r"(?<=[.!?])[\"'”’»)\]]*[ \t]+(?=\d)")
"""A sentence end before a number: UAX #29 never breaks there when a lower-case word
follows (``... in 1975. 300 beds were added``), so these are candidate breaks too."""
_THAI_LAO = re.compile(r"[\u0e00-\u0eff]")
_CLAUSE_SPACE = re.compile(r"(?<=[\u0e00-\u0eff]) +(?=[\u0e00-\u0eff])")


def _end_mark(piece: str) -> str:
    """The sentence-ending character of ``piece`` (before closers and footnote
    markers), or ``""``."""
    body = _FOOTNOTE.sub("", piece).rstrip().rstrip(_CLOSERS).rstrip()
    return body[-1] if body and body[-1] in _TERMINAL else ""


def _glued(prev: str, nxt: str, lang: str | None) -> bool:
    """Whether ICU's break between ``prev`` and ``nxt`` falls inside a sentence."""
    body = prev.rstrip()
    if not body.endswith("."):
        return False
    opener = nxt.lstrip()[:1]
    if opener.isalpha() and opener.islower():
        return True  # "e.g. the" (ICU's own rule, kept where a fix moved a break)
    word = _LAST_WORD.search(body[:-1])
    if word is None:
        return False
    last = word.group(1)
    if len(last) == 1 and last.isalpha() and not _THAI_LAO.match(last):
        caseless = not last.isupper() and not last.islower()  # Arabic "م. ثيو كيرني"
        if last.isupper() or caseless or _SINGLE_LETTER.match(nxt.lstrip()):
            return True  # initials "J. R. R. Tolkien", "z. B."
    if last.casefold() in _TITLES and opener.isupper():
        return True  # "Dr. Smith"
    if opener.isdigit() and (last.casefold() in _NUMBER_ABBREVIATIONS or len(last) == 1):
        return True  # "Sec. 2.1", "No. 5", "p. 12" (not "in the USA. 2023 was ...")
    return bool(lang in ORDINAL_DOT and last.isdigit() and len(last) <= 3)  # "3. Mai"


_WORD_MARKS = set("?!")
"""Marks that end a sentence in spaced scripts only when a space follows: with none,
"p.png?d=1" or "Yahoo!Mail" goes on (UAX #29 breaks after "?" and "!" whatever
follows; a full-width "？" is followed directly by the next sentence, and is not here)."""


def _inside_word(text: str, end: int, start: int) -> bool:
    """Whether the break between a sentence ending at ``end`` and the next beginning at
    ``start`` falls inside a word: nothing between them, an ASCII "?" or "!" before,
    and a letter, digit or URL character after."""
    if end != start or end == 0 or start >= len(text):
        return False
    after = text[start]
    return text[end - 1] in _WORD_MARKS and (after.isalnum() or after in "=&%/#_")


def _clauses(text: str, span: Span, budget: int) -> list[Span]:
    """A Thai or Lao sentence over ``budget`` characters cut at clause spaces, whole
    clauses packed up to the budget (a longer clause stays whole)."""
    start, end = span
    if end - start <= budget or not _THAI_LAO.search(text, start, end):
        return [span]
    cuts = [m.start() for m in _CLAUSE_SPACE.finditer(text, start, end)]
    out: list[Span] = []
    piece = start
    for k, cut in enumerate(cuts):
        nxt = cuts[k + 1] if k + 1 < len(cuts) else end
        if nxt - piece > budget:
            out.append((piece, cut))
            piece = cut
            while piece < end and text[piece] == " ":
                piece += 1
    out.append((piece, end))
    return out


def _has_word(text: str, start: int, end: int) -> bool:
    return any(ch.isalnum() for ch in text[start:end])


def _unit_sentences(
    text: str, prepared: str, cuts: list[int], unit: Span, lang: str | None, budget: int
) -> list[Span]:
    """The sentences of one unit, from ICU's ``cuts`` inside it and the fixes above."""
    start, end = unit
    spans: list[Span] = []
    piece = start
    opening: int | None = None  # where wordless pieces opening the unit began
    for cut in [*cuts, end]:
        while start < cut < end and text[cut - 1] in _OPENERS:
            cut -= 1  # UAX #29 counts an opening bracket after "。" as closing it
        s, e = trim(text, piece, cut)
        piece = cut
        if s >= e:
            continue
        if not spans and not _has_word(text, s, e):
            opening = s if opening is None else opening  # "<!" or "..." opens the next one
        elif spans and (
            _glued(prepared[spans[-1][0] : spans[-1][1]], prepared[s:e], lang)
            or _inside_word(text, spans[-1][1], s)
            or not _has_word(text, s, e)  # a stray closer or marker joins its sentence
        ):
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s if opening is None else opening, e))
            opening = None
    if opening is not None:
        spans.append(trim(text, opening, end))
    return [c for span in spans for c in _clauses(text, span, budget)]


# -- kinds -------------------------------------------------------------------------

_BULLET = re.compile(r"[•◦▪‣●■]\s+")
_KEY_VALUE = re.compile(r"^[^:：]{1,40}[:：]\s*\S")


def _heading_like(text: str, prepared: str, units: list[list[Span]], u: int, first: bool) -> bool:
    """Whether unit ``u`` of a paragraph's ``units`` is a heading: a single line
    without a sentence end that opens the document (the title), is a paragraph of its
    own (a line before a blank line), or stands among longer lines (a block whose lines
    are all short is a list: ``key: value`` pairs, an address). Never a line among
    others that ends with a colon (it leads into what follows) or a ``key: value``
    line with a figure (``Beds: 45``); in Thai and Lao (which end no sentence with a
    mark) only the document's first line."""
    unit = units[u]
    if len(unit) != 1:
        return False
    s, e = unit[0]
    line = text[s:e].rstrip()
    if _end_mark(prepared[s:e]) or (line.endswith((":", "：")) and len(units) > 1):
        return False
    if _KEY_VALUE.match(line) and any(ch.isdigit() for ch in line):
        return False
    if first:
        return True
    if _THAI_LAO.search(line):
        return False
    widest = max(_width(text[a:b]) for unit in units for a, b in unit)
    return len(units) == 1 or widest >= SHORT_LINES


# -- display ---------------------------------------------------------------------------

_LINE_PREFIX = re.compile(r"\n[ \t]*(?:>[ \t]?)*")


def display(text: str, start: int, end: int, fmt: Format = "text") -> str:
    """What a reader sees of the raw span ``text[start:end]``: for HTML, tags, comments
    and scripts dropped and entities decoded; for Markdown, inline markup rendered away
    (emphasis, links, code marks, inline HTML) and entities decoded; block-quote
    prefixes dropped, white space folded, NFC."""
    raw = text[start:end]
    if fmt == "html":
        raw = html.unescape(MARKUP.sub("", raw))
    elif fmt == "markdown":
        rendered = markdown("markdown").renderInline(_LINE_PREFIX.sub(" ", raw))
        raw = html.unescape(MARKUP.sub("", rendered))
    return nfc(" ".join(_LINE_PREFIX.sub(" ", raw).split()))


def _row_content(text: str, cells: list[Span], header: list[Span], fmt: Format) -> str:
    """A table row as a reader should see it: ``head: cell`` for each cell, joined by
    `` | `` (a cell without a header cell as it is)."""
    heads = [display(text, s, e, fmt) for s, e in header]
    parts = []
    for k, (s, e) in enumerate(cells):
        cell = display(text, s, e, fmt)
        head = heads[k] if k < len(heads) else ""
        parts.append(f"{head}: {cell}" if head and cell else cell or head)
    return " | ".join(parts)


# -- segments ----------------------------------------------------------------------------


def segments(
    text: str, fmt: Format = "text", lang: str | None = None, budget: int = CLAUSE_BUDGET
) -> list[Segment]:
    """The segments of a document in order (see the module docstring).

    ``text`` is the raw file text (universal newlines); ``fmt`` ``html``, ``markdown``
    or ``text``; ``lang`` an ISO 639-1 code when known (selects CLDR's abbreviations
    and the ordinal rule; ``None`` or ``und`` uses the root rules); ``budget`` as
    ``CLAUSE_BUDGET``. Raises nothing on any ``str``; an empty or markup-only text
    gives ``[]``."""
    text = text.replace("\ufeff", " ")  # same length: offsets still index the raw text
    doc_blocks = blocks(text, fmt)
    per_block = [_units(text, b) for b in doc_blocks]
    prepared = _prepare(text, [u for units in per_block for u in units])
    icu = {e for _, e in _pieces(SentenceBreaker(prepared, _locale(lang)))}
    breaks = sorted(icu | {m.end() for m in _DIGIT_OPENS.finditer(prepared)})
    out: list[Segment] = []
    header: list[Span] = []  # cells of the open table's header row
    first = True
    for index, (block, units) in enumerate(zip(doc_blocks, per_block, strict=True)):
        if not units:
            continue
        if block.kind in ("table_header", "table_row"):
            s, e = units[0][0]
            if block.kind == "table_header":
                header = block.cells
                content = " | ".join(display(text, a, b, fmt) for a, b in block.cells)
            else:
                in_table = bool(out) and out[-1].kind in ("table_header", "table_row")
                content = _row_content(text, block.cells, header if in_table else [], fmt)
            out.append(Segment(s, e, block.kind, content, index))
            first = False
            continue
        header = []
        for u, unit in enumerate(units):
            span = trim(text, unit[0][0], unit[-1][1])
            if block.kind in ("code", "heading"):
                out.append(Segment(*span, block.kind, display(text, *span, fmt), index))
                first = False
                continue
            # a list item's lines after a real line break are paragraphs that
            # CommonMark counts as its lazy continuation; a line opening with a bullet
            # that Markdown does not know (•) is an item
            item = block.kind == "list_item" and u == 0
            bullet = _BULLET.match(text, *span)
            if bullet:
                item, span = True, (bullet.end(), span[1])
            lo = bisect_left(breaks, span[0])
            cuts = []
            while lo < len(breaks) and breaks[lo] < span[1]:
                if breaks[lo] > span[0]:
                    cuts.append(breaks[lo])
                lo += 1
            found = _unit_sentences(text, prepared, cuts, span, lang, budget)
            if not item and len(found) == 1 and _heading_like(text, prepared, units, u, first):
                out.append(Segment(*found[0], "heading", display(text, *found[0], fmt), index))
                first = False
                continue
            first = False
            for s, e in found:
                kind: Kind = (
                    "question"
                    if _end_mark(prepared[s:e]) in _QUESTION
                    else "list_item"
                    if item
                    else "statement"
                )
                out.append(Segment(s, e, kind, display(text, s, e, fmt), index))
    return out


@dataclass(frozen=True)
class Rendering:
    """A document as a reader sees it: ``text`` is the segments' contents, a blank line
    between blocks and a space between the sentences of one; ``pieces`` maps each
    segment's raw span to its span in ``text``: ``(raw_start, raw_end, start, end)``."""

    text: str
    pieces: tuple[tuple[int, int, int, int], ...]

    def locate(self, start: int, end: int) -> Span:
        """Where the raw span ``[start, end)`` is in ``text``: from the first segment
        it overlaps to the last (an empty span: the place of the next segment)."""
        hits = [p for p in self.pieces if p[0] < end and start < p[1]]
        if hits:
            return hits[0][2], hits[-1][3]
        after = next((p[2] for p in self.pieces if p[0] >= start), len(self.text))
        return after, after


def render(text: str, fmt: Format = "text", lang: str | None = None) -> Rendering:
    """The readable form of a whole document (see ``Rendering``): what the source
    viewer shows for an HTML or Markdown file."""
    parts: list[str] = []
    pieces: list[tuple[int, int, int, int]] = []
    pos = 0
    block = None
    for seg in segments(text, fmt, lang):
        if not seg.content:
            continue
        if block is not None:
            gap = " " if seg.block == block else "\n\n"
            parts.append(gap)
            pos += len(gap)
        parts.append(seg.content)
        pieces.append((seg.start, seg.end, pos, pos + len(seg.content)))
        pos += len(seg.content)
        block = seg.block
    return Rendering("".join(parts), tuple(pieces))


# -- words ---------------------------------------------------------------------------

_HYPHENS = {"-", "‐", "‑", "‒", "–", "/"}
_THIN_SPACES = {"\u00a0", "\u202f", "\u2009"}
_SPACES = {" ", *_THIN_SPACES}
_NUMBER = re.compile(r"\d+(?:[.,'’]\d+)*")
_LETTERS = re.compile(r"[^\W\d_]+")
_LATIN_WORD = re.compile(r"[a-z]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_AR_PREFIX = re.compile(r"^(?:وال|بال|كال|فال|لل|ال)(?=\S{3,})")
_IDENTIFIER = re.compile(r"[^\W\d_]+\d\w*")
"""A code: letters, then digits (``h800``, ``v3``, ``gpt4o``); not ``3rd``, ``1970s``."""


def word_spans(text: str, lang: str | None = None) -> list[Span]:
    """Raw spans of the words of ``text`` (ICU word boundaries; pieces without a
    letter or digit, such as spaces and punctuation, left out)."""
    return [
        (s, e)
        for s, e in _pieces(WordBreaker(text, _locale(lang, suppressions=False)))
        if _has_word(text, s, e)
    ]


Forms = Literal["folded", "both", "query"]


def tokens(
    text: str,
    lang: str | None = None,
    forms: Forms = "folded",
    known: Collection[str] | None = None,
) -> list[str]:
    """Search tokens of ``text``, in order: each ICU word normalised (normalise.py);
    numbers in one form (``600,000`` -> ``600000``, ``1.5`` stays; digit groups split
    by a no-break or thin space joined); a letter run and a digit run joined by a hyphen
    or slash, or by one space after 1-5 capitals, also as one identifier (``X-900``,
    ``RTX 4090`` -> ``x900``, ``rtx4090``); the Arabic article and clitics stripped
    from words long enough; Chinese and Japanese as ICU's dictionary words and the
    character bigrams of each run; a Korean word and its character bigrams (particles
    attach to words: ``병원은`` also gives ``병원``).

    ``forms``: ``folded`` gives the normalised form only; ``both`` (for indexing) adds
    the unfolded form of a Latin-script word whose diacritics normalisation removed
    (``giám`` -> ``giam``, ``giám``); ``query`` (for questions) gives that unfolded
    form instead of the folded one: a question typed with its marks asks for them, one
    typed without gets the folded form, which every indexed word has. ``known`` (the
    index's vocabulary): an unfolded form it lacks is asked in its folded form (a
    question typed with marks, over a text written without them)."""
    out: list[str] = []
    run: list[str] = []  # a run of adjacent CJK words
    run_end = -1
    prev: tuple[int, str, str] | None = None  # raw end, raw word, normalised word
    for s, e in word_spans(text, lang):
        raw = text[s:e]
        word = normalise(raw)
        if not word.strip():
            continue
        if _CJK.search(word):
            if run and s != run_end:
                out.extend(_cjk_tokens(run))
                run = []
            run.append(word)
            run_end, prev = e, None
            continue
        if run:
            out.extend(_cjk_tokens(run))
            run = []
        gap = text[prev[0] : s] if prev else ""
        if gap in _THIN_SPACES and len(word) == 3 and word.isdigit() and out and out[-1].isdigit():
            out[-1] += word  # "600 000" written with a no-break or thin space
            prev = (e, raw, out[-1])
            continue
        for part in word.split():
            if _NUMBER.fullmatch(part):
                part = normalise_number(part)
            elif _AR_PREFIX.match(part):
                part = _AR_PREFIX.sub("", part)
            exact = _exact(raw, part) if forms != "folded" else None
            if exact is not None and known is not None and exact not in known:
                exact = None
            if exact is None or forms == "both":
                out.append(part)
            if exact is not None:
                out.append(exact)
            if len(part) > 2 and _HANGUL.match(part):
                out.extend(part[i : i + 2] for i in range(len(part) - 1))
        if prev and _joins(prev[1], gap, raw):
            out.append(prev[2] + word)
        prev = (e, raw, word)
    if run:
        out.extend(_cjk_tokens(run))
    return out


def identifiers(text: str) -> list[str]:
    """The product or model codes ``text`` writes: letters then digits, in one word or
    joined by a hyphen or slash (``R2``, ``H800``, ``X-900``), as their
    ``identifier_key``s, in order. Not counted: letters and digits apart (``in
    1992``), and digits first (``3rd``, ``1970s``, ``2-point``)."""
    found: list[str] = []
    prev: tuple[int, str] | None = None
    for s, e in word_spans(text):
        raw = text[s:e]
        word = normalise(raw)
        gap = text[prev[0] : s] if prev else ""
        if _IDENTIFIER.fullmatch(word) and word.isascii():
            found.append(word)
        elif prev and gap in _HYPHENS and _LETTERS.fullmatch(prev[1]) and word.isdigit():
            key = normalise(prev[1]) + word
            if key.isascii():
                found.append(key)
        prev = (e, raw)
    return list(dict.fromkeys(found))


def _exact(raw: str, folded: str) -> str | None:
    """The unfolded form (``normalise(raw, fold=False)``) of a Latin-script word whose
    diacritics normalisation folded, else None."""
    if raw.isascii():
        return None
    plain = normalise(raw, fold=False)
    if plain == folded or not plain.isalpha() or not _LATIN_WORD.fullmatch(folded):
        return None
    return plain


def _joins(before: str, gap: str, after: str) -> bool:
    """Whether ``before gap after`` is one product code: letters and digits joined by
    a hyphen or slash, or 1-5 capitals and 1-6 digits joined by one space."""
    a_letters, b_letters = bool(_LETTERS.fullmatch(before)), bool(_LETTERS.fullmatch(after))
    a_digits, b_digits = before.isdigit(), after.isdigit()
    if gap in _HYPHENS:
        return (a_letters and b_digits) or (a_digits and b_letters)
    if gap in _SPACES:
        return a_letters and before.isupper() and len(before) <= 5 and b_digits and len(after) <= 6
    return False


def _cjk_tokens(words: list[str]) -> list[str]:
    """ICU's words of a CJK run, then the run's character bigrams (one character
    alone is its own token, once)."""
    run = "".join(words)
    if len(run) == 1:
        return list(words)
    return [*words, *(run[i : i + 2] for i in range(len(run) - 1))]
