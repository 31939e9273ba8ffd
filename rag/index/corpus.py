"""Read the corpus folder into SourceDocuments that keep each file's exact text.

``SourceDocument.text`` is what ``open(path, encoding="utf-8").read()`` returns (UTF-8,
universal newlines, a byte-order mark kept), so citation offsets index straight into
the file as a reader opens it. ``kind`` says how it is cut into sentences
(rag/text/segment.py: HTML by its tags, Markdown by its structure, .txt as plain
text); a PDF has no text of its own: its text is what pypdf extracts, read as plain
text, and offsets index into that. The language is detected on the text a reader
sees; the title is an HTML file's ``<title>``, a PDF's metadata title, else the first
heading.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import CorpusError
from rag.text.language import detect_language
from rag.text.segment import display, format_of, segments
from rag.text.structure import MARKUP
from rag.types import Sentence, SourceDocument

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
KINDS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
"""``SourceDocument.kind`` by suffix (else ``text``; a PDF is ``pdf``)."""
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class FileProblem:
    """A file that was not indexed, and why."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass
class LoadResult:
    """The documents read, and the files that could not be."""

    documents: list[SourceDocument]
    problems: list[FileProblem]


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def universal_newlines(text: str) -> str:
    """What Python's text mode does on reading: ``\\r\\n`` and ``\\r`` become ``\\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
TITLE_CHARS = 200


def title_of(sentences: Sequence[Sentence]) -> str:
    """A document's title from its first sentences: the first heading of three words or
    more among the first 20 (a kicker like "News" is not a title); else the first
    heading; else the first sentence. As a reader sees it (no ``#``, no BOM, no
    markup), at most ``TITLE_CHARS`` characters."""
    head = sentences[:20]
    headings = [s.content for s in head if s.kind == "heading" and s.content]
    for content in headings:
        if len(content.split()) >= 3:
            return content[:TITLE_CHARS]
    first = headings[:1] or [s.content for s in head if s.content][:1]
    return first[0][:TITLE_CHARS] if first else ""


HEAD_CHARS = 4000
"""The opening of a document its title is looked for in (the whole file is cut into
sentences by the chunker, which runs only when something changed)."""


def _head(text: str) -> str:
    """About ``HEAD_CHARS`` of the text's start, to the end of a line."""
    end = text.find("\n", HEAD_CHARS)
    return text if end < 0 else text[:end]


def language_sample(text: str, kind: str) -> str:
    """The text language detection reads: the file's text (an HTML file's without
    its markup, entities decoded), white space folded."""
    if kind == "html":
        text = html.unescape(MARKUP.sub(" ", text))
    return " ".join(text.split())


def _read_pdf(path: Path) -> tuple[str, str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    pages = [page.extract_text() or "" for page in reader.pages]
    text = universal_newlines("\n\n".join(pages))
    meta_title = ""
    if reader.metadata is not None and reader.metadata.title:
        meta_title = str(reader.metadata.title)
    return text, meta_title


def read_document(path: Path, doc_id: str, max_bytes: int = DEFAULT_MAX_BYTES) -> SourceDocument:
    """Read one file. Raises ValueError with the reason when it cannot be used."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise ValueError(f"unsupported file type '{suffix or path.name}'")
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"file is {size} bytes, over the limit of {max_bytes}")
    data = path.read_bytes()
    digest = sha256_bytes(data)
    title = ""
    if suffix in PDF_SUFFIXES:
        try:
            text, title = _read_pdf(path)
        except Exception as exc:  # pypdf raises many types for broken files
            raise ValueError(f"PDF could not be parsed ({type(exc).__name__}: {exc})") from exc
        kind = "pdf"
    else:
        if b"\x00" in data:
            raise ValueError("binary file (it contains NUL bytes)")
        try:
            text = universal_newlines(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
            ) from exc
        kind = KINDS.get(suffix, "text")
        if kind == "html":
            found = _TITLE.search(text)
            title = display(found.group(1), 0, len(found.group(1)), "html") if found else ""
    sample = language_sample(text, kind)
    if not any(ch.isalnum() for ch in sample):
        raise ValueError("empty file (no text to index)")
    lang = detect_language(sample)
    if not title:
        title = title_of(segments(_head(text), format_of(kind), lang))
    return SourceDocument(
        doc_id=doc_id,
        path=path,
        text=text,
        sha256=digest,
        lang=lang,
        title=title[:TITLE_CHARS],
        kind=kind,
    )


def iter_files(corpus_dir: Path) -> Iterator[tuple[Path, str]]:
    """Files below the corpus folder, sorted, hidden ones skipped, with their doc_id."""
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_dir() and not path.is_symlink():
            continue
        yield path, rel.as_posix()


def load(corpus_dir: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> LoadResult:
    """Read every supported file of the corpus. A file that cannot be used is reported
    by name with its reason; the others are still returned."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder '{corpus_dir}' does not exist or is not a folder")
    root = corpus_dir.resolve()
    documents: list[SourceDocument] = []
    problems: list[FileProblem] = []
    for path, doc_id in iter_files(corpus_dir):
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root):
                problems.append(
                    FileProblem(doc_id, "symlink points outside the corpus; not followed")
                )
                continue
            if target.is_dir():
                continue
        try:
            documents.append(read_document(path, doc_id, max_bytes))
        except (ValueError, OSError) as exc:
            problems.append(FileProblem(doc_id, str(exc)))
    return LoadResult(documents, problems)


def read_source(corpus_dir: Path, source: str) -> tuple[str, str]:
    """The exact text of one corpus file, as citations index into it, and the SHA-256
    of its bytes (what the manifest records of it when it is indexed). OSError,
    UnicodeDecodeError or ValueError when it cannot be read."""
    path = corpus_dir / source
    data = path.read_bytes()
    if path.suffix.lower() in PDF_SUFFIXES:
        text = _read_pdf(path)[0]
    else:
        text = universal_newlines(data.decode("utf-8"))
    return text, sha256_bytes(data)


def read_source_text(corpus_dir: Path, source: str) -> str:
    """The exact text of one corpus file, as citations index into it."""
    return read_source(corpus_dir, source)[0]
