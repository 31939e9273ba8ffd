from __future__ import annotations

import json
import shutil

import pytest

from rag.config import Settings
from rag.errors import IndexLockedError, IndexMismatchError, IndexMissingError
from rag.index import build as indexer
from rag.index import layout
from rag.index.build import build
from rag.index.layout import current_version
from rag.index.reader import open_index


def _ids(settings: Settings) -> dict[str, list[str]]:
    version = current_version(settings.index_dir)
    assert version
    manifest = layout.read_manifest(settings.index_dir, version)
    return {d: info["passages"] for d, info in manifest["documents"].items()}


def test_first_build_indexes_every_document(settings: Settings) -> None:
    report = build(settings)
    assert report.changed and report.documents == 4 and report.problems == []
    index = open_index(settings)
    assert index.vectors.count() == report.passages == len(index.passages)
    texts = {p.content for p in index.passages.values()}
    for p in index.passages.values():
        texts |= {s.content for s in p.sentences}
    assert report.embedded == len(texts)  # each distinct text embedded exactly once


def test_unchanged_corpus_embeds_nothing_and_keeps_the_version(settings: Settings) -> None:
    first = build(settings)
    second = build(settings)
    assert not second.changed
    assert second.embedded == 0
    assert second.version == first.version
    assert second.passages == first.passages


def test_changed_file_reembeds_only_its_own_passages(settings: Settings) -> None:
    build(settings)
    before = _ids(settings)
    note = settings.corpus_dir / "notes.md"
    note.write_text(
        note.read_text(encoding="utf-8") + "\nA brand new sentence about Kunming.\n",
        encoding="utf-8",
    )
    report = build(settings)
    after = _ids(settings)
    assert report.changed_documents == ["notes.md"]
    assert after["notes.md"] != before["notes.md"]
    for doc in before:
        if doc != "notes.md":
            assert after[doc] == before[doc]
    # only texts of notes.md were new: its passage(s) and its new sentence
    assert 0 < report.embedded <= len(after["notes.md"]) + 2
    index = open_index(settings)
    assert index.vectors.count() == sum(len(v) for v in after.values())
    assert any("Kunming" in p.text for p in index.passages.values())


def test_removed_file_passages_are_gone(settings: Settings) -> None:
    build(settings)
    removed = _ids(settings)["003_a5e772a95f951957.txt"]
    (settings.corpus_dir / "003_a5e772a95f951957.txt").unlink()
    report = build(settings)
    assert report.removed_documents == ["003_a5e772a95f951957.txt"]
    index = open_index(settings)
    assert not set(removed) & set(index.passages)
    assert index.vectors.count() == len(index.passages)
    vector_hits = {pid for pid, _ in index.vectors.query(index.sentence_vectors[0], 100)}
    assert not set(removed) & vector_hits


def test_bad_files_are_reported_and_the_rest_indexed(settings: Settings) -> None:
    (settings.corpus_dir / "empty.txt").write_text("", encoding="utf-8")
    (settings.corpus_dir / "binary.txt").write_bytes(b"\x00\x01\x02")
    (settings.corpus_dir / "bad.txt").write_bytes(b"\xff\xfe\xfa broken")
    report = build(settings)
    assert {p.source for p in report.problems} == {"empty.txt", "binary.txt", "bad.txt"}
    assert report.documents == 4
    assert "3 files skipped" in report.summary()


def test_a_bad_file_added_later_loses_nothing_indexed(settings: Settings) -> None:
    first = build(settings)
    (settings.corpus_dir / "bad.txt").write_bytes(b"\xff\xfe broken")
    second = build(settings)
    assert second.passages == first.passages
    assert [p.source for p in second.problems] == ["bad.txt"]
    assert len(open_index(settings).passages) == first.passages


def test_another_model_is_refused_with_both_names_until_rebuild(settings: Settings) -> None:
    build(settings)
    other = settings.model_copy(update={"embedding": "tests.fakes:OtherHashEmbedding"})
    with pytest.raises(IndexMismatchError, match=r"HashEmbedding:hash-bag-512.*OtherHashEmbedding"):
        build(other)
    with pytest.raises(IndexMismatchError, match="rag index --rebuild"):
        open_index(other, expected_model="OtherHashEmbedding:hash-bag-other")
    report = build(other, rebuild=True)
    assert report.changed
    assert open_index(other).embedding_model == "OtherHashEmbedding:hash-bag-other"


def test_no_index_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(IndexMissingError, match="run `rag index`"):
        open_index(settings)


def test_second_indexer_is_refused(settings: Settings) -> None:
    with (
        indexer.writer_lock(settings.index_dir),
        pytest.raises(IndexLockedError, match="another indexer"),
    ):
        build(settings)


def test_partial_build_is_removed_and_current_keeps_serving(settings: Settings) -> None:
    first = build(settings)
    partial = layout.versions_dir(settings.index_dir) / "20990101T000000-dead00.building"
    shutil.copytree(layout.versions_dir(settings.index_dir) / first.version, partial)
    assert open_index(settings).version == first.version
    (settings.corpus_dir / "notes.md").write_text(
        "Entirely new notes about Kunming.", encoding="utf-8"
    )
    second = build(settings)
    assert not partial.exists()
    assert current_version(settings.index_dir) == second.version
    kept = sorted(p.name for p in layout.versions_dir(settings.index_dir).iterdir())
    assert kept == sorted([first.version, second.version])


def test_manifest_records_model_chunking_and_counts(settings: Settings) -> None:
    report = build(settings)
    manifest = json.loads(
        (layout.versions_dir(settings.index_dir) / report.version / "manifest.json").read_text()
    )
    assert manifest["embedding_model"] == "HashEmbedding:hash-bag-512"
    assert manifest["chunking"]["chunk_tokens"] == settings.chunk_tokens
    assert manifest["counts"]["passages"] == report.passages
    assert manifest["documents"]["page.html"]["title"] == "Harbour page"


def test_changing_chunk_size_rechunks(settings: Settings) -> None:
    first = build(settings)
    smaller = settings.model_copy(update={"chunk_tokens": 60, "chunk_overlap_tokens": 10})
    second = build(smaller)
    assert second.changed and second.passages > first.passages


def test_pause_points_are_the_moments_of_the_named_stages(settings: Settings) -> None:
    from rag.errors import ConfigError
    from rag.index.build import PAUSE_POINTS, STAGES

    assert list(STAGES) == ["scan", "chunk", "embed", "write", "publish", "collect"]
    for stage in STAGES:
        moments = [p.split(":")[1] for p in PAUSE_POINTS if p.split(":")[0] == stage]
        assert moments[0] == "start" and moments[-1] == "done"
    assert len(set(PAUSE_POINTS)) == len(PAUSE_POINTS)
    with pytest.raises(ConfigError, match="index_pause_at must be one of scan:start, "):
        build(settings.model_copy(update={"index_pause_at": "published"}))
