from __future__ import annotations

from rag.text.segment import split_sentences, tokenize


def _texts(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_arabic_sentences_end_at_question_mark_and_full_stop() -> None:
    text = "ما هو السبب؟ لم يتخلف R1 عن نظيره. بل طابق أداءه۔ انتهى"
    assert _texts(text) == ["ما هو السبب؟", "لم يتخلف R1 عن نظيره.", "بل طابق أداءه۔", "انتهى"]


def test_chinese_sentences_need_no_space_after_the_mark() -> None:
    assert _texts("DeepSeek很便宜。它来自杭州！真的吗？是的") == [
        "DeepSeek很便宜。",
        "它来自杭州！",
        "真的吗？",
        "是的",
    ]


def test_abbreviation_followed_by_lower_case_does_not_end_a_sentence() -> None:
    text = "dari OpenAI Inc. hingga gergasi cip Nvidia Corp. Era menganggap itu."
    assert _texts(text) == [
        "dari OpenAI Inc. hingga gergasi cip Nvidia Corp.",
        "Era menganggap itu.",
    ]


def test_vietnamese_and_list_numbers() -> None:
    text = "Chi phí thấp. Mô hình mạnh mẽ!\n  1. حجم لا مثيل له: يوفر حجم."
    assert _texts(text) == ["Chi phí thấp.", "Mô hình mạnh mẽ!", "1. حجم لا مثيل له: يوفر حجم."]


def test_a_line_break_ends_a_sentence() -> None:
    assert _texts("Heading without stop\nBody text. More") == [
        "Heading without stop",
        "Body text.",
        "More",
    ]


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
