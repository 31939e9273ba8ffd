"""Citations are data built from passages (``cite``), never text a model made up.

``verify`` is the last step of every answer: it drops any ``[n]`` marker that names
no citation, and any citation whose quote is no longer the text of its source file
at its offsets, or whose file no longer has the content hash it was indexed with (the
file changed after indexing), with a warning for each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag.index.reader import LoadedIndex, read_source
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
    """Source file texts, decided by content: a file is read and hashed again whenever
    its stat changes (device, inode, size, mtime and ctime: an edit that puts size and
    mtime back still changes ctime, which no user can set)."""

    def __init__(self, corpus_dir: Path) -> None:
        self.corpus_dir = corpus_dir
        self._cache: dict[str, tuple[tuple[int, ...], str, str]] = {}

    def get(self, source: str, sha256: str | None = None) -> str | None:
        """The text of ``source`` as citations index into it; None when it cannot be
        read, or when ``sha256`` (the index manifest's) is not the hash of the file's
        bytes now: the file changed since it was indexed, and quotes into it must not
        verify against text they were not taken from."""
        path = self.corpus_dir / source
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        cached = self._cache.get(source)
        if cached is None or cached[0] != key:
            try:
                text, digest = read_source(self.corpus_dir, source)
            except (OSError, UnicodeDecodeError, ValueError):
                return None
            cached = self._cache[source] = (key, text, digest)
        if sha256 is not None and cached[2] != sha256:
            return None
        return cached[1]


def verify(
    text: str,
    citations: list[Citation],
    sources: SourceTexts,
    renumber: bool = True,
    sha256_of: Callable[[str], str | None] | None = None,
) -> Verified:
    """Keep what resolves: citations whose quote matches the file at its offsets, and
    whose file still has the content it was indexed with (``sha256_of(source)``, the
    manifest's hash, when given), renumbered 1..k in order (unless ``renumber`` is
    false: an LLM's answer keeps the passage numbers it streamed), and only the
    markers that name one of them."""
    warnings: list[str] = []
    good: list[Citation] = []
    dropped: set[int] = set()
    for citation in citations:
        expected = sha256_of(citation.source) if sha256_of is not None else None
        source_text = sources.get(citation.source, expected)
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
