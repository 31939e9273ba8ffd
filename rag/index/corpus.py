"""Read the corpus folder into SourceDocuments that keep each file's exact text.

``SourceDocument.text`` is what ``open(path, encoding="utf-8").read()`` returns (UTF-8,
universal newlines), so citation offsets index straight into the file as a reader
opens it. For HTML, ``plain`` is the same text with markup blanked out by spaces of
equal length, so offsets found in ``plain`` are offsets into the file. A PDF has no
text of its own: its text is what pypdf extracts, and offsets index into that.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.errors import CorpusError
from rag.text.language import detect_language
from rag.types import SourceDocument

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
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


_MARKUP = re.compile(
    r"<!--.*?-->|<(script|style|noscript|template)\b.*?</\1\s*>|<![^>]*>|<[^>]*>",
    re.IGNORECASE | re.DOTALL,
)
_BLOCK_TAGS = re.compile(r"^</?(p|div|br|li|h[1-6]|tr|section|article|header|footer|title)\b", re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def mask_html(text: str) -> str:
    """Blank tags, comments, scripts and styles with spaces (newlines kept), so that
    the visible text stays at its offsets. A block tag becomes a newline, so that
    sentence splitting sees paragraph ends."""

    def blank(match: re.Match[str]) -> str:
        chunk = match.group(0)
        out = re.sub(r"[^\n]", " ", chunk)
        if _BLOCK_TAGS.match(chunk) and "\n" not in out:
            out = "\n" + out[1:]
        return out

    return _MARKUP.sub(blank, text)


def _first_line(text: str) -> str:
    """The first line of three words or more (a kicker like "News" is not a title),
    else the first non-empty line."""
    lines = [line.strip().lstrip("#").strip() for line in text.splitlines()]
    lines = [line for line in lines[:20] if line]
    for line in lines:
        if len(line.split()) >= 3:
            return line[:200]
    return lines[0][:200] if lines else ""


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
    if suffix in PDF_SUFFIXES:
        try:
            text, meta_title = _read_pdf(path)
        except Exception as exc:  # pypdf raises many types for broken files
            raise ValueError(f"PDF could not be parsed ({type(exc).__name__}: {exc})") from exc
        plain, kind, title = text, "pdf", meta_title or _first_line(text)
    else:
        if b"\x00" in data:
            raise ValueError("binary file (it contains NUL bytes)")
        try:
            text = universal_newlines(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
            ) from exc
        if suffix in HTML_SUFFIXES:
            plain, kind = mask_html(text), "html"
            found = _TITLE.search(text)
            title = html.unescape(" ".join(found.group(1).split())) if found else ""
            title = title or _first_line(html.unescape(plain))
        else:
            plain, kind, title = text, "text", _first_line(text)
    if not plain.strip():
        raise ValueError("empty file (no text to index)")
    lang = detect_language(html.unescape(plain) if kind == "html" else plain)
    return SourceDocument(
        doc_id=doc_id,
        path=path,
        text=text,
        sha256=digest,
        lang=lang,
        title=title,
        kind=kind,
        plain=plain,
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
