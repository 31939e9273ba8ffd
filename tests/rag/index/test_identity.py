"""What a document is to the indexer: a file name and its bytes (hashed), never its
size or mtime. Two files with the same bytes are two documents; a renamed, edited
or replaced file is re-indexed; the vector store holds exactly the manifest's
passages after each build (fake embedding, real embedded Chroma)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rag.cli import main
from rag.config import Settings
from rag.index import layout
from rag.index.build import IndexReport, build
from rag.index.layout import current_version
from rag.index.reader import LoadedIndex, open_index
from rag.index.store import chroma_client
from tests.conftest import make_settings, use_env, write_corpus

FERRY = "Pelham ferry\n\nThe Pelham ferry crosses the estuary in 25 minutes.\n"
"""The input of the case ``duplicate``: this text in ``ferry.txt`` and ``ferry_copy.txt``."""

OTHER = {
    "tea.md": "# Longjing tea\n\nEach spring the West Lake cooperative hires 300 pickers.\n",
    "chips.md": "The H800 chip was used by DeepSeek. Export controls limit chips.\n",
}


def stored(settings: Settings) -> dict[str, str]:
    """Passage id -> doc_id, as the published version's Chroma collection holds them."""
    version = current_version(settings.index_dir)
    assert version is not None
    path = layout.version_dir(settings.index_dir, version) / layout.CHROMA
    got = chroma_client(path).get_collection("passages").get(include=["metadatas"])
    return {i: str(m["doc_id"]) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)}


def consistent(settings: Settings) -> LoadedIndex:
    """The published index, checked: its vector store holds exactly its passages, each
    under its own document, and the manifest lists the same passages."""
    index = open_index(settings)
    assert stored(settings) == {pid: p.doc_id for pid, p in index.passages.items()}
    listed = [pid for info in index.manifest["documents"].values() for pid in info["passages"]]
    assert sorted(listed) == sorted(index.passages)
    assert index.vectors.count() == len(index.passages) == index.manifest["counts"]["passages"]
    return index


def texts_of(index: LoadedIndex, doc_id: str) -> str:
    return "\n".join(p.text for p in index.passages.values() if p.doc_id == doc_id)


@pytest.fixture
def corpus(tmp_path: Path) -> Settings:
    """Two files with the same bytes (the case ``duplicate``) and two others."""
    folder = write_corpus(tmp_path, {"ferry.txt": FERRY, "ferry_copy.txt": FERRY, **OTHER})
    return make_settings(tmp_path, folder, abstain_threshold=-1.0)


def test_two_files_with_the_same_bytes_are_two_documents(corpus: Settings, tmp_path: Path) -> None:
    """Content-addressed passage ids made both files' passages one id: Chroma refused
    the batch (DuplicateIDError) and the build failed."""
    report = build(corpus)
    assert report.changed and report.documents == 4
    index = consistent(corpus)
    ids = {d: set(info["passages"]) for d, info in index.manifest["documents"].items()}
    assert ids["ferry.txt"] and ids["ferry_copy.txt"]
    assert not ids["ferry.txt"] & ids["ferry_copy.txt"]
    assert texts_of(index, "ferry.txt") == texts_of(index, "ferry_copy.txt")
    # the same texts are embedded once: as many texts as a corpus without the copy
    (tmp_path / "alone").mkdir()
    alone = make_settings(
        tmp_path / "alone", write_corpus(tmp_path / "alone", {"ferry.txt": FERRY, **OTHER})
    )
    assert report.embedded == build(alone).embedded
    again = build(corpus)
    assert not again.changed and again.embedded == 0 and again.version == report.version


def test_removing_one_of_two_identical_files_leaves_the_other(corpus: Settings) -> None:
    build(corpus)
    kept = {pid for pid, doc in stored(corpus).items() if doc == "ferry.txt"}
    (corpus.corpus_dir / "ferry_copy.txt").unlink()
    report = build(corpus)
    assert report.removed_documents == ["ferry_copy.txt"] and report.embedded == 0
    index = consistent(corpus)
    assert {p.doc_id for p in index.passages.values()} == {"ferry.txt", *OTHER}
    assert kept <= set(index.passages)
    # still found by words and by vector
    hits = {pid for pid, _ in index.lexical.search("Pelham ferry estuary", 3)}
    assert hits & kept
    query = index.sentence_vectors[
        next(i for (d, _, _), i in index.sentence_rows.items() if d == "ferry.txt")
    ]
    assert {pid for pid, _ in index.vectors.query(query, 3)} & kept


def test_a_renamed_file_is_a_new_document_and_nothing_is_re_embedded(corpus: Settings) -> None:
    """The old name's passages are deleted from the vector store, the new name's added
    (their vectors from the cache)."""
    first = build(corpus)
    old = {pid for pid, doc in stored(corpus).items() if doc == "tea.md"}
    (corpus.corpus_dir / "tea.md").rename(corpus.corpus_dir / "longjing.md")
    report = build(corpus)
    assert (report.added_documents, report.removed_documents) == (["longjing.md"], ["tea.md"])
    assert report.changed_documents == [] and report.embedded == 0
    assert report.passages == first.passages
    index = consistent(corpus)
    assert not old & set(index.passages)
    assert {pid for pid, _ in index.lexical.search("Longjing pickers", 1)} <= {
        pid for pid, p in index.passages.items() if p.doc_id == "longjing.md"
    }


def _edit(settings: Settings, name: str, text: str) -> IndexReport:
    (settings.corpus_dir / name).write_text(text, encoding="utf-8")
    return build(settings)


def test_an_updated_file_is_re_indexed_with_its_new_text(corpus: Settings) -> None:
    build(corpus)
    report = _edit(corpus, "chips.md", "The A100 chip was bought by Baidu in 2021.\n")
    assert report.changed_documents == ["chips.md"] and report.embedded > 0
    index = consistent(corpus)
    assert "A100" in texts_of(index, "chips.md") and "H800" not in texts_of(index, "chips.md")


def test_a_file_replaced_with_the_same_size_and_mtime_is_re_indexed(corpus: Settings) -> None:
    """The indexer hashes each file's bytes: a replacement that keeps the size and
    the mtime (a restored backup, a checkout, a copy with ``cp -p``) still changes
    what is served."""
    path = corpus.corpus_dir / "chips.md"
    first = build(corpus)
    old_sha = layout.read_manifest(corpus.index_dir, first.version)["documents"]["chips.md"]
    before = path.stat()
    replacement = OTHER["chips.md"].replace("H800", "H900").replace("DeepSeek", "DeepMind")
    assert len(replacement.encode()) == before.st_size and replacement != OTHER["chips.md"]
    path.write_text(replacement, encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    report = build(corpus)
    assert report.changed and report.changed_documents == ["chips.md"]
    index = consistent(corpus)
    text = texts_of(index, "chips.md")
    assert "H900" in text and "DeepMind" in text and "H800" not in text
    assert index.manifest["documents"]["chips.md"]["sha256"] != old_sha["sha256"]


@pytest.fixture
def case_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The case ``duplicate`` as `rag` sees it: its two files, through the environment."""
    folder = write_corpus(tmp_path, {"ferry.txt": FERRY, "ferry_copy.txt": FERRY})
    settings = make_settings(tmp_path, folder)
    use_env(monkeypatch, settings)
    monkeypatch.setenv("RAG_ABSTAIN_THRESHOLD", "-1")
    return settings


def test_case_duplicate_indexes_lists_both_and_answers(
    case_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index"]) == 0
    assert "2 documents" in capsys.readouterr().out
    assert main(["sources", "--json"]) == 0
    assert {r["source"] for r in json.loads(capsys.readouterr().out)} == {
        "ferry.txt",
        "ferry_copy.txt",
    }
    assert main(["index"]) == 0
    assert "unchanged" in capsys.readouterr().out
    question = "How long does the Pelham ferry take to cross the estuary?"
    assert main(["ask", question, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert not answer["abstained"] and answer["citations"]
    assert {c["source"] for c in answer["citations"]} <= {"ferry.txt", "ferry_copy.txt"}
    assert any("25 minutes" in c["quote"] for c in answer["citations"])
    (case_env.corpus_dir / "ferry.txt").unlink()
    assert main(["index"]) == 0
    assert "1 removed" in capsys.readouterr().out
    assert main(["ask", question, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [c["source"] for c in answer["citations"]][:1] == ["ferry_copy.txt"]
