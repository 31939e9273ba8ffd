from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.errors import CorpusError
from rag.index import corpus
from rag.index.chunking import sentences_of
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


def test_html_title_and_sentences_are_read_by_the_tags(corpus_dir: Path) -> None:
    doc = corpus.read_document(corpus_dir / "page.html", "page.html")
    assert (doc.title, doc.kind, doc.lang) == ("Harbour page", "html", "en")
    sentences = sentences_of(doc, 320)
    assert [s.content for s in sentences] == [
        "Harbour page",
        "The harbour of Hangzhou & its boats are famous.",
        "Second paragraph about tea.",
    ]
    for s in sentences:
        assert doc.text[s.start : s.end].strip() == doc.text[s.start : s.end]


def test_a_bom_and_markdown_markup_never_reach_the_title_or_a_sentence(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.md").write_text("\ufeff# Ferry *timetable*\n\nBoats leave hourly.\n", "utf-8")
    (folder / "b.txt").write_text("\ufeffKestrel Valley Dam\n\nIt holds water.\n", "utf-8")
    a, b = corpus.load(folder).documents
    assert (a.kind, a.title, b.kind, b.title) == (
        "markdown",
        "Ferry timetable",
        "text",
        "Kestrel Valley Dam",
    )
    for doc in (a, b):
        with open(doc.path, encoding="utf-8") as handle:
            raw = handle.read()
        assert raw.startswith("\ufeff") and doc.text == raw
        sentences = sentences_of(doc, 320)
        assert all("\ufeff" not in raw[s.start : s.end] for s in sentences)
        assert sentences[0].kind == "heading"


def test_a_title_is_the_first_heading_of_three_words_or_more(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.md").write_text("# News\n\n## Ferry fares rise in May\n\nText.\n", "utf-8")
    (folder / "b.md").write_text("Just one statement here.\n", "utf-8")
    a, b = corpus.load(folder).documents
    assert (a.title, b.title) == ("Ferry fares rise in May", "Just one statement here.")


@pytest.mark.parametrize(
    ("name", "text", "lang"),
    [
        ("de.txt", "Die Talsperre wurde 1974 fertiggestellt. Sie versorgt die Stadt.", "de"),
        ("ru.txt", "Плотина была построена в 1974 году. Она снабжает город водой.", "ru"),
        ("th.txt", "เขื่อนสร้างเสร็จในปี 2517 และจ่ายน้ำให้เมือง", "th"),
        ("tr.txt", "Baraj 1974 yılında tamamlandı. Şehre su sağlıyor.", "tr"),
        ("hi.txt", "बांध 1974 में बनकर तैयार हुआ। यह शहर को पानी देता है।", "hi"),
        ("es.html", "<p>La presa se termin&oacute; en 1974 y abastece a la ciudad.</p>", "es"),
    ],
)
def test_documents_are_tagged_with_their_language(
    tmp_path: Path, name: str, text: str, lang: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert corpus.read_document(path, name).lang == lang


def test_a_file_with_markup_and_no_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    path.write_text("<html><head><script>var a = 1;</script></head><body></body></html>", "utf-8")
    with pytest.raises(ValueError, match="empty file"):
        corpus.read_document(path, "empty.html")


def test_missing_corpus_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        corpus.load(tmp_path / "nope")
