from __future__ import annotations

import pytest

from rag.text.language import LANGUAGES, detect_language


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Syarikat itu membina model bahasa dengan kos yang sangat rendah.", "ms"),
        ("Công ty đã xây dựng mô hình ngôn ngữ với chi phí rất thấp.", "vi"),
        ("بنت الشركة نموذجا لغويا بتكلفة منخفضة جدا.", "ar"),
        ("这家公司以极低的成本构建了语言模型。", "zh"),
        ("The company built a language model at a very low cost.", "en"),
    ],
)
def test_each_corpus_language_is_detected(text: str, lang: str) -> None:
    assert detect_language(text) == lang and lang in LANGUAGES


def test_text_without_letters_is_undetermined() -> None:
    assert detect_language("2024 — 6,000,000 (85-90%)") == "und"
    assert detect_language("   ") == "und"
