from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.index import chunking, corpus
from rag.index.chunking import count_tokens, pack, split
from rag.text.segment import segments
from rag.types import SourceDocument
from tests.conftest import SEEDS


@pytest.mark.parametrize("doc", corpus.load(SEEDS).documents, ids=lambda d: d.doc_id)
def test_every_passage_of_every_seed_is_the_file_text_at_its_offsets(
    doc: corpus.SourceDocument,
) -> None:
    raw = (SEEDS / doc.doc_id).read_text(encoding="utf-8")
    passages = split(doc, 160, 40)
    assert passages
    for p in passages:
        assert p.text == raw[p.start_char : p.end_char]
        assert p.start_line == raw.count("\n", 0, p.start_char) + 1
        assert p.end_line == raw.count("\n", 0, p.end_char - 1) + 1
        for s in p.sentences:
            assert p.start_char <= s.start < s.end <= p.end_char
            assert s.content and s.kind
    # nothing is dropped: every non-space character of every sentence is in a passage
    # (a sentence over the budget is split, so its pieces may sit in different passages)
    covered = [False] * len(raw)
    for p in passages:
        covered[p.start_char : p.end_char] = [True] * (p.end_char - p.start_char)
    found = segments(raw, "text", doc.lang)
    for seg in found:
        missing = [i for i in range(seg.start, seg.end) if not covered[i] and not raw[i].isspace()]
        assert not missing, (seg.start, seg.end, missing[:5])
    assert passages[0].start_char == found[0].start
    assert passages[-1].end_char == len(raw.rstrip())


def test_pack_respects_budget_and_overlaps() -> None:
    assert pack([5, 5, 5, 5], max_tokens=10, overlap_tokens=5) == [(0, 1), (1, 2), (2, 3)]
    assert pack([5, 5, 5, 5], max_tokens=10, overlap_tokens=0) == [(0, 1), (2, 3)]
    assert pack([20, 3], max_tokens=10, overlap_tokens=5) == [(0, 0), (1, 1)]


def test_a_sentence_over_twice_the_budget_is_cut_at_clause_marks(tmp_path: Path) -> None:
    sentence = "، ".join(f"جزء رقم {i} من جملة طويلة جدا" for i in range(40)) + "."
    path = tmp_path / "long.txt"
    path.write_text(sentence, encoding="utf-8")
    doc = corpus.read_document(path, "long.txt")
    passages = split(doc, max_tokens=60, overlap_tokens=10)
    assert len(passages) > 1
    for p in passages:
        assert p.text == sentence[p.start_char : p.end_char]
        for s in p.sentences:
            assert count_tokens(sentence[s.start : s.end]) <= 60 * chunking.LONG_SENTENCE
            assert sentence[s.end - 1] in "،."  # cut after a clause mark, not inside one


def test_a_sentence_between_the_budget_and_twice_it_stays_whole(tmp_path: Path) -> None:
    long = "، ".join(f"جزء رقم {i} من جملة" for i in range(7)) + "."
    text = f"جملة قصيرة أولى. {long} جملة قصيرة أخيرة."
    assert 60 < count_tokens(long) <= 60 * chunking.LONG_SENTENCE
    path = tmp_path / "long.txt"
    path.write_text(text, encoding="utf-8")
    passages = split(corpus.read_document(path, "long.txt"), max_tokens=60, overlap_tokens=10)
    spans = [text[s.start : s.end] for p in passages for s in p.sentences]
    assert long in spans  # one sentence, in a passage of its own
    assert [p.text for p in passages if long in p.text] == [long]


def test_html_passages_index_into_the_raw_file(corpus_dir: Path) -> None:
    doc = corpus.read_document(corpus_dir / "page.html", "page.html")
    passages = split(doc)
    raw = (corpus_dir / "page.html").read_text(encoding="utf-8")
    assert all(p.text == raw[p.start_char : p.end_char] for p in passages)
    contents = " ".join(p.content for p in passages)
    assert "harbour of Hangzhou & its boats are famous." in contents
    assert "color" not in contents and "<b>" not in contents


def test_split_rejects_bad_budget(corpus_dir: Path) -> None:
    doc = corpus.read_document(corpus_dir / "notes.md", "notes.md")
    with pytest.raises(ValueError, match="overlap_tokens < max_tokens"):
        chunking.split(doc, max_tokens=10, overlap_tokens=10)


def written(folder: Path, name: str, text: str) -> SourceDocument:
    """``text`` written as ``folder/name`` and read as the indexer reads a file."""
    (folder / name).write_text(text, encoding="utf-8")
    return corpus.read_document(folder / name, name)


def test_a_long_table_row_is_never_cut(tmp_path: Path) -> None:
    """A row cut in pieces would lose its header: rows, headings and code stay whole."""
    cells = " | ".join(f"cell number {i}, with words" for i in range(60))
    text = f"| Plan | Notes |\n| --- | --- |\n| Family | {cells} |\n"
    doc = written(tmp_path, "plans.md", text)
    assert count_tokens(text) > 2 * 40
    rows = [s for s in chunking.sentences_of(doc, 40) if s.kind == "table_row"]
    assert len(rows) == 1
    assert text[rows[0].start : rows[0].end].startswith("| Family |")
    assert text[rows[0].start : rows[0].end].rstrip().endswith("|")


def test_a_long_html_sentence_is_never_cut_inside_a_tag(tmp_path: Path) -> None:
    links = ", ".join(f'see <a href="/p?a=1, b={i}">page {i}</a> here' for i in range(40))
    text = f"<html><body><p>The guide lists pages: {links}.</p></body></html>\n"
    doc = written(tmp_path, "guide.html", text)
    pieces = chunking.sentences_of(doc, 40)
    assert len(pieces) > 1  # the sentence was cut
    tags = [(m.start(), m.end()) for m in re.finditer(r"<[^>]*>", text)]
    for s in pieces:
        for edge in (s.start, s.end):
            assert not any(a < edge < b for a, b in tags), (edge, text[edge - 10 : edge + 10])
