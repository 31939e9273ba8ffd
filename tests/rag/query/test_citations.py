from __future__ import annotations

from pathlib import Path

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
