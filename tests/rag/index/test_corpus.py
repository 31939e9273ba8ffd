from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.errors import CorpusError
from rag.index import corpus
from tests.conftest import SEEDS


def test_seed_languages_are_detected() -> None:
    result = corpus.load(SEEDS)
    assert result.problems == []
    langs = {d.doc_id[:3]: d.lang for d in result.documents}
    assert langs == {"000": "ms", "001": "id", "002": "vi", "003": "ms", "004": "ar"}


def test_bad_files_are_reported_by_name_and_the_rest_is_read(
    corpus_dir: Path, tmp_path: Path
) -> None:
    (corpus_dir / "empty.txt").write_text("", encoding="utf-8")
    (corpus_dir / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (corpus_dir / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (corpus_dir / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the corpus", encoding="utf-8")
    os.symlink(outside, corpus_dir / "link.txt")
    result = corpus.load(corpus_dir)
    reasons = {p.source: p.reason for p in result.problems}
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "not valid UTF-8" in reasons["latin1.txt"] and "0xe9" in reasons["latin1.txt"]
    assert "PDF could not be parsed" in reasons["broken.pdf"]
    assert "outside the corpus" in reasons["link.txt"]
    assert sorted(d.doc_id for d in result.documents) == [
        "001_2da8963e52795fca.txt",
        "003_a5e772a95f951957.txt",
        "notes.md",
        "page.html",
    ]


def test_text_keeps_universal_newlines_like_open(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "crlf.txt").write_bytes(b"First line.\r\nSecond line.\rThird.\n")
    doc = corpus.load(folder).documents[0]
    with open(folder / "crlf.txt", encoding="utf-8") as handle:
        assert doc.text == handle.read()


def test_html_title_and_mask_keep_length(corpus_dir: Path) -> None:
    doc = corpus.read_document(corpus_dir / "page.html", "page.html")
    assert doc.title == "Harbour page"
    assert len(doc.plain) == len(doc.text)
    assert "<" not in doc.plain


def test_missing_corpus_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        corpus.load(tmp_path / "nope")
