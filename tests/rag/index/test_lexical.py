from __future__ import annotations

from rag.index.lexical import LexicalIndex
from rag.text.segment import tokens
from tests.conftest import SEEDS


def test_bm25_ranks_by_shared_rare_terms() -> None:
    index = LexicalIndex.build(
        ["a", "b", "c"],
        ["the chip H800 was used", "the cost was low", "tea from Hangzhou"],
    )
    assert [pid for pid, _ in index.search("Hangzhou tea", 3)] == ["c"]
    assert index.search("H800", 3)[0][0] == "a"
    assert index.search("nothing matches", 3) == []


def test_a_question_typed_without_marks_finds_the_text_that_has_them() -> None:
    index = LexicalIndex.build(
        ["a", "b"], ["Giám đốc bệnh viện là bác sĩ Khoa.", "Bệnh viện có 1.200 giường."]
    )
    assert index.search("giam doc", 2)[0][0] == "a"
    assert index.search("Giám đốc", 2)[0][0] == "a"
    # typed with its marks, a word prefers the exact form: "bệnh" is in both passages,
    # but "giám" scores only where it is written so
    assert [pid for pid, _ in index.search("giám", 2)] == ["a"]


def test_passages_containing_every_token() -> None:
    index = LexicalIndex.build(["a", "b", "c"], ["iPhone 15 camera", "iPhone 14", "15 cameras"])
    assert index.containing(["iphone", "15"]) == ["a"]
    assert index.containing(["iphone"]) == ["a", "b"]
    assert index.containing(["iphone", "unknown"]) == []


def test_streamed_build_scores_exactly_as_bm25s_own_index(tmp_path) -> None:
    import random

    import bm25s
    import numpy as np

    from rag.index.corpus import load
    from rag.index.lexical import _EMPTY

    rng = random.Random(3)
    words = ["deepseek", "مقرها", "hangzhou", "芯片", "h800", "600,000", "biaya", "chi phí"]
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 30))) for _ in range(300)]
    texts += ["", "!!!"]  # passages without a search token
    texts += [d.text for d in load(SEEDS).documents]
    ids = [f"p{i}" for i in range(len(texts))]
    ours = LexicalIndex.build(ids, iter(texts))  # a one-pass iterator is enough
    reference = bm25s.BM25()
    reference.index([tokens(t, forms="both") or [_EMPTY] for t in texts], show_progress=False)
    ours.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    for query in ["DeepSeek Hangzhou", "芯片 H800", "600000 biaya", "مقرها", "chi phí", "absent"]:
        expected = np.asarray(reference.get_scores(tokens(query, forms="query")), dtype=np.float32)
        np.testing.assert_allclose(ours.scores(query), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(loaded.scores(query), expected, rtol=1e-5, atol=1e-6)
    assert ours.document_frequencies()["hangzhou"] == sum("hangzhou" in tokens(t) for t in texts)
