from __future__ import annotations

import pytest

from rag.query.sentences import is_minor


@pytest.mark.parametrize(
    "text",
    [
        "Serangan AI China: Banjir Inovasi",  # a heading
        "Kế Hoạch Đột Phá Của DeepSeek: Sức Mạnh Cao, Chi Phí Thấp",
        "Gema Pertempuran Industri Lalu: Corak yang Biasa?",  # a question
        "Liệu nó có làm giảm lợi thế cạnh tranh không?",
        "ما هو السبب الحقيقي وراء هذا النجاح؟",
        "Source link",  # short
        "这是标题",
    ],
)
def test_headings_questions_and_fragments_are_minor(text: str) -> None:
    assert is_minor(text)


@pytest.mark.parametrize(
    "text",
    [
        "DeepSeek's final training run of V3 cost a mere $6 million.",
        "• Kos Inferens AI: pengurangan 85-90% setiap tahun",  # a list item states
        "1. حجم لا مثيل له في السوق المحلي الصيني الكبير",
        "Các công ty như Alibaba Cloud, Tencent Cloud và Huawei Cloud đã tham gia.",
        "“The budget was a joke,” he said.”",
        "深度求索公司的总部位于杭州市，创始人是梁文锋。",
        "على الرغم من التقدم الملحوظ الذي يمثله نجاح DeepSeek،",  # a long sentence, cut
    ],
)
def test_statements_and_list_items_are_not_minor(text: str) -> None:
    assert not is_minor(text)
