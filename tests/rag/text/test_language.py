from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rag.text.language import detect, detect_language, same_language, script_of


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Syarikat itu membina model bahasa dengan kos yang sangat rendah.", "ms"),
        ("Công ty đã xây dựng mô hình ngôn ngữ với chi phí rất thấp.", "vi"),
        ("بنت الشركة نموذجا لغويا بتكلفة منخفضة جدا.", "ar"),
        ("这家公司以极低的成本构建了语言模型。", "zh"),
        ("The company built a language model at a very low cost.", "en"),
        (
            "Die Talsperre wurde nach neun Jahren Bauzeit fertiggestellt und versorgt die Stadt.",
            "de",
        ),
        ("El embalse abastece de agua potable a casi dos millones de personas.", "es"),
        ("Le barrage alimente en eau potable près de deux millions de personnes.", "fr"),
        ("Водохранилище снабжает питьевой водой почти два миллиона человек.", "ru"),
        ("Baraj, yaklaşık iki milyon kişiye içme suyu sağlıyor ve şehre elektrik veriyor.", "tr"),
        ("बांध लगभग बीस लाख लोगों को पीने का पानी देता है।", "hi"),
        ("เขื่อนนี้จ่ายน้ำประปาให้ประชาชนเกือบสองล้านคน", "th"),
        ("Το φράγμα τροφοδοτεί με πόσιμο νερό σχεδόν δύο εκατομμύρια ανθρώπους.", "el"),
        ("このダムは約二百万人に飲料水を供給しています。", "ja"),
        ("이 댐은 약 이백만 명에게 식수를 공급합니다.", "ko"),
        ("A barragem fornece água potável a quase dois milhões de pessoas.", "pt"),
        ("De stuwdam levert drinkwater aan bijna twee miljoen mensen.", "nl"),
    ],
)
def test_languages_are_detected_among_all_the_detector_knows(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_han_text_with_latin_names_is_chinese() -> None:
    assert detect_language("DeepSeek的创始人是谁?") == "zh"
    assert script_of("Energiprojekt AB公司位于何处?") == "CJK"


def test_text_without_letters_is_undetermined() -> None:
    assert detect("2024 — 6,000,000 (85-90%)") == detect("   ")
    assert detect_language("12345 !!! 3.14") == "und"


def test_a_short_question_prefers_the_corpus_languages() -> None:
    # lid.176 alone leans to another language for this short English string
    assert detect_language("Set prologue end to true") != "en"
    assert detect("Set prologue end to true", allowed={"en", "vi"}).lang == "en"


def test_a_sure_answer_outside_the_allowed_languages_stands() -> None:
    assert detect("Wie viele Betten hat das Krankenhaus?", allowed={"en", "vi"}).lang == "de"
    assert detect("DeepSeek đã dùng chip H900 nào vậy?", allowed={"en"}).lang == "vi"


def test_an_unsure_text_none_of_the_allowed_languages_fits_is_undetermined() -> None:
    # Vietnamese typed without its marks: fastText guesses Spanish at 0.2
    question = "Ai la giam doc hien nay cua benh vien?"
    assert detect(question).lang != "vi"
    assert detect(question, allowed={"en", "ar"}).lang == "und"


def test_malay_and_indonesian_are_one_language_for_matching() -> None:
    assert same_language("ms", "id") and same_language("id", "ms")
    assert not same_language("ms", "en")
    assert detect_language("Berapakah jumlah katil di hospital itu?") in ("ms", "id")


def test_malay_and_indonesian_are_told_apart_by_the_forms_they_write() -> None:
    # fastText alone calls both Indonesian
    assert detect_language("Kerajaan memberi wang kepada universiti itu kerana ia berjaya.") == "ms"
    assert (
        detect_language("Pemerintah memberi uang kepada universitas itu karena berhasil.") == "id"
    )
    assert detect_language("Berapakah jumlah katil di hospital itu?") == "ms"


def test_detection_never_reaches_the_network(tmp_path: object) -> None:
    """The model is the one inside the wheel: detection works with every proxy closed
    and no cache folder."""
    env = dict(
        os.environ,
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        ALL_PROXY="http://127.0.0.1:9",
        FTLANG_CACHE=str(tmp_path),
    )
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from rag.text.language import detect_language\n"
        "print(detect_language('Die Talsperre versorgt die Stadt mit Wasser.'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "de"
