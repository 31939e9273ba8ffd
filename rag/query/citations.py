"""Citations are data built from passages (``cite``), never text a model made up.

``verify`` is the last step of every answer: it drops any ``[n]`` marker that names
no citation, and any citation whose quote is no longer the text of its source file
at its offsets (the file changed after indexing), with a warning for each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag.index.reader import LoadedIndex, read_source_text
from rag.types import Citation, Passage, WarningCode, warning

MARKER = re.compile(r"\[(\d{1,3})\]")
"""A citation marker in answer text: ``[n]``, n of one to three digits."""


def shown(passage: Passage, start: int, end: int) -> str:
    """What a reader is shown of the span ``[start, end)`` of the passage: the contents
    of the sentences it covers (the passage's own content when it is the whole
    passage), else its raw text with white space folded."""
    if (start, end) == (passage.start_char, passage.end_char):
        return passage.content
    covered = [s.content for s in passage.sentences if start <= s.start and s.end <= end]
    if covered and passage.sentences:
        return " ".join(covered)
    raw = passage.text[start - passage.start_char : end - passage.start_char]
    return " ".join(raw.split())


def cite(
    index: LoadedIndex, n: int, passage: Passage, start: int, end: int, score: float
) -> Citation:
    """Citation ``n`` of the span ``[start, end)`` (absolute character offsets, inside
    the passage) of the passage's file, with its lines, its document's title and
    language, ``score`` rounded to 4 places, and the ``text`` a reader is shown
    (``shown``)."""
    offset = start - passage.start_char
    quote = passage.text[offset : end - passage.start_char]
    start_line = passage.start_line + passage.text.count("\n", 0, offset)
    doc = index.document(passage.doc_id)
    return Citation(
        n=n,
        source=passage.doc_id,
        title=doc["title"],
        start_char=start,
        end_char=end,
        start_line=start_line,
        end_line=start_line + quote.count("\n"),
        quote=quote,
        lang=doc["lang"],
        score=round(score, 4),
        text=shown(passage, start, end),
    )


def citation_line(
    citation: Citation,
    quote_chars: int = 200,
    name: str | None = None,
    separator: str = ":",
    escape: Callable[[str], str] = str,
) -> str:
    """``[1] 004_1dc07bb43c1f175e.txt, line 7: "quote…"``: how a citation is shown (the
    quote as a reader sees it: its ``text`` when it has one). ``name`` replaces the
    file name (a link, say), ``escape`` is applied to the quote."""
    quote = " ".join((citation.text or citation.quote).split())
    if len(quote) > quote_chars:
        quote = quote[: quote_chars - 1] + "…"
    where = (
        f"line {citation.start_line}"
        if citation.start_line == citation.end_line
        else f"lines {citation.start_line}-{citation.end_line}"
    )
    shown = citation.source if name is None else name
    return f'[{citation.n}] {shown}, {where}{separator} "{escape(quote)}"'


@dataclass
class Verified:
    """What ``verify`` kept: the text, its citations, and a warning for each drop."""

    text: str
    citations: list[Citation]
    warnings: list[str] = field(default_factory=list)


class SourceTexts:
    """Source file texts, re-read only when a file's size or mtime changes."""

    def __init__(self, corpus_dir: Path) -> None:
        self.corpus_dir = corpus_dir
        self._cache: dict[str, tuple[tuple[int, int], str]] = {}

    def get(self, source: str) -> str | None:
        """The text of corpus file ``source`` (re-read when its size or mtime
        changed), or None when it cannot be read."""
        path = self.corpus_dir / source
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(source)
        if cached and cached[0] == key:
            return cached[1]
        try:
            text = read_source_text(self.corpus_dir, source)
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        self._cache[source] = (key, text)
        return text


def verify(
    text: str, citations: list[Citation], sources: SourceTexts, renumber: bool = True
) -> Verified:
    """Keep what resolves: citations whose quote matches the file at its offsets,
    renumbered 1..k in order (unless ``renumber`` is false: an LLM's answer keeps the
    passage numbers it streamed), and only the markers that name one of them."""
    warnings: list[str] = []
    good: list[Citation] = []
    dropped: set[int] = set()
    for citation in citations:
        source_text = sources.get(citation.source)
        if (
            source_text is None
            or source_text[citation.start_char : citation.end_char] != citation.quote
        ):
            warnings.append(
                warning(
                    WarningCode.CITATION_MISMATCH, f"{citation.source} changed since it was indexed"
                )
            )
            dropped.add(citation.n)
            continue
        good.append(citation)
    numbers = {c.n: (i if renumber else c.n) for i, c in enumerate(good, start=1)}

    def replace(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n in numbers:
            return f"[{numbers[n]}]"
        if n not in dropped:
            warnings.append(warning(WarningCode.UNRESOLVED_MARKER, f"[{n}] names no citation"))
        return ""

    cleaned = MARKER.sub(replace, text)
    if renumber:
        cleaned = re.sub(r"[ \t]{2,}", " ", cleaned).strip()
    used = {int(m) for m in MARKER.findall(cleaned)}
    final = [c.model_copy(update={"n": numbers[c.n]}) for c in good if numbers[c.n] in used]
    return Verified(cleaned, final, warnings)
