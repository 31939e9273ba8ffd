from __future__ import annotations

from rag.lexical import LexicalIndex, normalize_arabic, tokenize


def test_arabic_normalisation() -> None:
    assert normalize_arabic("أإآٱ") == "اااا"
    assert normalize_arabic("مستشفى مدرسة") == "مستشفي مدرسه"
    assert normalize_arabic("عَرَبِيّ") == "عربي"
    assert normalize_arabic("عـــربي") == "عربي"


def test_arabic_article_is_stripped_so_forms_match() -> None:
    assert tokenize("الصين") == tokenize("والصين") == tokenize("صين")
    assert tokenize("بالمدينة") == ["مدينه"]


def test_chinese_bigrams_and_names_kept_whole() -> None:
    assert tokenize("DeepSeek 创始人") == ["deepseek", "创始", "始人"]
    assert tokenize("中") == ["中"]


def test_numbers_and_model_names() -> None:
    assert tokenize("USD 600,000 and 1.5 and 85-90% H800 V3") == [
        "usd",
        "600000",
        "and",
        "1.5",
        "and",
        "85",
        "90",
        "h800",
        "v3",
    ]


def test_bm25_ranks_by_shared_rare_terms() -> None:
    index = LexicalIndex.build(
        ["a", "b", "c"],
        ["the chip H800 was used", "the cost was low", "tea from Hangzhou"],
    )
    assert [pid for pid, _ in index.search("Hangzhou tea", 3)] == ["c"]
    assert index.search("H800", 3)[0][0] == "a"
    assert index.search("nothing matches", 3) == []
