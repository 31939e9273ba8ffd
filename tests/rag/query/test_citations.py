from __future__ import annotations

import os
from pathlib import Path

from rag.config import Settings
from rag.index.build import build
from rag.index.corpus import sha256_bytes
from rag.query.chat import ChatService
from rag.query.citations import SourceTexts, verify
from rag.types import Citation


def _citation(folder: Path, n: int, needle: str) -> Citation:
    text = (folder / "notes.md").read_text(encoding="utf-8")
    start = text.index(needle)
    return Citation(
        n=n,
        source="notes.md",
        title="t",
        start_char=start,
        end_char=start + len(needle),
        start_line=1,
        end_line=1,
        quote=needle,
        lang="en",
        score=1.0,
    )


def test_markers_without_citation_are_removed(corpus_dir: Path) -> None:
    c = _citation(corpus_dir, 1, "The H800 chip was used by DeepSeek.")
    checked = verify("It was the H800 [1] and more [7].", [c], SourceTexts(corpus_dir))
    assert checked.text == "It was the H800 [1] and more ."
    assert [x.n for x in checked.citations] == [1]
    assert checked.warnings == ["unresolved_marker: [7] names no citation"]


def test_quote_that_no_longer_matches_the_file_is_dropped(corpus_dir: Path) -> None:
    good = _citation(corpus_dir, 1, "Export controls limit chips.")
    stale = _citation(corpus_dir, 2, "The H800 chip was used by DeepSeek.")
    stale = stale.model_copy(update={"start_char": stale.start_char + 1})
    checked = verify("A [1]. B [2].", [good, stale], SourceTexts(corpus_dir))
    assert [c.quote for c in checked.citations] == ["Export controls limit chips."]
    assert checked.text == "A [1]. B ."
    assert checked.warnings == ["citation_mismatch: notes.md changed since it was indexed"]


def test_unused_citations_are_not_returned_and_numbers_are_dense(corpus_dir: Path) -> None:
    a = _citation(corpus_dir, 1, "Export controls limit chips.")
    b = _citation(corpus_dir, 2, "The H800 chip was used by DeepSeek.")
    checked = verify("Only the second [2].", [a, b], SourceTexts(corpus_dir))
    assert checked.text == "Only the second [2]."
    assert [c.n for c in checked.citations] == [2]


def _edit_keeping_size_and_mtime(path: Path, old: str, new: str) -> None:
    assert len(old.encode()) == len(new.encode())
    stat = path.stat()
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


def test_an_edit_that_keeps_size_and_mtime_is_seen(corpus_dir: Path) -> None:
    path = corpus_dir / "notes.md"
    indexed = sha256_bytes(path.read_bytes())
    sources = SourceTexts(corpus_dir)
    c = _citation(corpus_dir, 1, "The H800 chip was used by DeepSeek.")
    assert verify("It was the H800 [1].", [c], sources, sha256_of=lambda s: indexed).citations
    _edit_keeping_size_and_mtime(path, "H800", "A100")
    assert "A100" in (sources.get("notes.md") or "")  # read again: the text of now
    assert sources.get("notes.md", indexed) is None  # not the content that was indexed
    checked = verify("It was the H800 [1].", [c], sources, sha256_of=lambda s: indexed)
    assert checked.citations == []
    assert checked.warnings == ["citation_mismatch: notes.md changed since it was indexed"]


def test_a_file_that_differs_from_the_manifest_fails_even_where_the_quote_matches(
    corpus_dir: Path,
) -> None:
    path = corpus_dir / "notes.md"
    indexed = sha256_bytes(path.read_bytes())
    path.write_text(path.read_text(encoding="utf-8") + "An added line.\n", encoding="utf-8")
    c = _citation(corpus_dir, 1, "The H800 chip was used by DeepSeek.")  # still there
    checked = verify("It was [1].", [c], SourceTexts(corpus_dir), sha256_of=lambda s: indexed)
    assert checked.citations == [] and checked.warnings[0].startswith("citation_mismatch")


def test_the_service_does_not_verify_stale_text(settings: Settings) -> None:
    build(settings)
    service = ChatService(settings.model_copy(update={"abstain_threshold": -1.0}))
    question = "Which chip did DeepSeek use, the H800?"
    before = service.ask(question)
    assert [c.source for c in before.citations if c.source == "notes.md"]
    _edit_keeping_size_and_mtime(settings.corpus_dir / "notes.md", "DeepSeek", "DeepSe3k")
    after = service.ask(question)
    assert all(c.source != "notes.md" for c in after.citations)
    assert "citation_mismatch: notes.md changed since it was indexed" in after.warnings
    service.close()
