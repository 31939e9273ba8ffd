"""Ordinary files a user brings, end to end (read, cut, indexed, asked), each kind of
fault of the issue "Any document a user brings" with its own small corpus: text
hard-wrapped across lines, a Markdown table, a file saved in NFD, Vietnamese typed
without tone marks, HTML entities and tags, product codes spelled three ways, and
documents in eight more languages. The fake embedding (a hashed bag of search tokens)
answers by the words a question shares with a sentence, so what is checked is the
text handling; tests/rag/test_integration.py asks a multilingual corpus with the real
model."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from rag.index import corpus
from rag.index.build import in_memory
from rag.query.params import ScoringParams
from rag.query.pipeline import Pipeline
from rag.types import Answer
from tests.conftest import make_settings, write_corpus
from tests.fakes import HashEmbedding

DISTRACTORS = {
    "weather.txt": "Weather notes\n\nThe spring was wet and cold. Farmers planted late.\n",
    "coffee.txt": "Cà phê\n\nNgười dân thành phố uống cà phê sữa đá mỗi sáng.\n",
}
"""Files on other subjects, so that a question has something else to find."""


UNCENTRED = ScoringParams(sentence_language_centering=0.0)


def ask_corpus(tmp_path: Path, files: dict[str, str], questions: list[str]) -> list[Answer]:
    """Index ``files`` (with the distractors) in memory with the fake embedding and ask
    each question; the files stay on disk for the citation checks. Language centring
    is off: the fake embedding has no share of similarity that comes from the language
    alone (its language mean is the language's words), so centring would only take
    away the words a question shares with its answer."""
    folder = write_corpus(tmp_path, {**DISTRACTORS, **files})
    loaded = corpus.load(folder)
    assert loaded.problems == []
    settings = make_settings(tmp_path, folder, abstain_threshold=-1.0, language_centering=0.0)
    embedding = HashEmbedding()
    index = in_memory(loaded.documents, embedding)
    pipeline = Pipeline.over(index, embedding, settings, params=UNCENTRED)
    return [pipeline.answer(q).answer for q in questions]


def quotes(answer: Answer) -> list[str]:
    return [c.quote for c in answer.citations]


DAM = (
    "Kestrel Valley Dam\n"
    "\n"
    "The Kestrel Valley Dam was finished in 1974 after nine years of\n"
    "construction work, and its reservoir holds 2.3 billion cubic metres\n"
    "of water when it is full. The dam supplies drinking water to about\n"
    "1.8 million people in three districts.\n"
)


def test_hard_wrapped_sentences_are_quoted_whole(tmp_path: Path) -> None:
    volume, people = ask_corpus(
        tmp_path,
        {"dam.txt": DAM},
        [
            "How much water does the Kestrel Valley reservoir hold?",
            "How many people get drinking water from the Kestrel Valley Dam?",
        ],
    )
    assert quotes(volume)[0] == (
        "The Kestrel Valley Dam was finished in 1974 after nine years of\n"
        "construction work, and its reservoir holds 2.3 billion cubic metres\n"
        "of water when it is full."
    )
    assert quotes(people)[0] == (
        "The dam supplies drinking water to about\n1.8 million people in three districts."
    )
    assert people.answer.startswith(
        "The dam supplies drinking water to about 1.8 million people in three districts. [1]"
    )


TARIFFS = (
    "# Greenfield Water tariffs 2024\n"
    "\n"
    "Greenfield Water publishes its yearly tariffs for households and businesses.\n"
    "\n"
    "| Plan | Monthly fee (EUR) | Included water (m3) | Extra m3 (EUR) |\n"
    "| --- | --- | --- | --- |\n"
    "| Basic | 12 | 5 | 2.10 |\n"
    "| Family | 29 | 15 | 1.80 |\n"
    "| Business | 95 | 60 | 1.40 |\n"
    "\n"
    "All prices include VAT.\n"
)


def test_a_table_row_is_quoted_as_its_line_and_shown_with_its_header(tmp_path: Path) -> None:
    family, business = ask_corpus(
        tmp_path,
        {"tariffs.md": TARIFFS},
        [
            "What is the monthly fee of the Family plan at Greenfield Water?",
            "How much does an extra cubic metre cost on the Business plan?",
        ],
    )
    first = family.citations[0]
    assert first.source == "tariffs.md" and first.quote == "| Family | 29 | 15 | 1.80 |"
    assert first.text == (
        "Plan: Family | Monthly fee (EUR): 29 | Included water (m3): 15 | Extra m3 (EUR): 1.80"
    )
    assert family.answer == f"{first.text} [1]"
    assert re.search(r"Business \| 95 \| 60 \| 1\.40", quotes(business)[0])
    assert "Extra m3 (EUR): 1.40" in business.answer


THUVIEN = (
    "Thư viện Hòa Bình\n"
    "\n"
    "Thư viện Hòa Bình có bảy trăm nghìn cuốn sách và mở cửa từ năm 1998.\n"
    "Mỗi ngày thư viện đón khoảng tám trăm bạn đọc.\n"
)


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_a_file_and_a_question_in_either_normal_form_give_one_answer(
    tmp_path: Path, form: str
) -> None:
    text = unicodedata.normalize(form, THUVIEN)  # type: ignore[arg-type]
    question = "Mỗi ngày thư viện Hòa Bình đón bao nhiêu bạn đọc?"
    nfc, nfd = ask_corpus(
        tmp_path,
        {"thuvien.txt": text},
        [question, unicodedata.normalize("NFD", question)],
    )
    start = text.index(unicodedata.normalize(form, "Mỗi ngày"))  # type: ignore[arg-type]
    assert quotes(nfc) == quotes(nfd) == [text[start:].strip()]
    assert nfc.answer == nfd.answer == "Mỗi ngày thư viện đón khoảng tám trăm bạn đọc. [1]"
    assert nfc.citations[0].lang == "vi"


BENHVIEN = (
    "Bệnh viện Đa khoa Sông Hàn\n"
    "\n"
    "Bệnh viện Đa khoa Sông Hàn được thành lập năm 1975 ở trung tâm thành phố.\n"
    "Bệnh viện có 1.200 giường bệnh và hơn 3.000 nhân viên y tế.\n"
    "Giám đốc hiện nay là bác sĩ Trần Minh Khoa.\n"
)


def test_vietnamese_typed_without_tone_marks_gets_the_same_answer(tmp_path: Path) -> None:
    marked, bare, staff = ask_corpus(
        tmp_path,
        {"benhvien.txt": BENHVIEN},
        [
            "Ai là giám đốc hiện nay của bệnh viện?",
            "Ai la giam doc hien nay cua benh vien?",
            "Benh vien co bao nhieu nhan vien y te?",
        ],
    )
    assert quotes(marked) == quotes(bare) == ["Giám đốc hiện nay là bác sĩ Trần Minh Khoa."]
    assert quotes(staff)[0] == "Bệnh viện có 1.200 giường bệnh và hơn 3.000 nhân viên y tế."


def test_a_question_with_tone_marks_finds_a_text_written_without(tmp_path: Path) -> None:
    bare = BENHVIEN.replace("Giám đốc hiện nay là bác sĩ", "Giam doc hien nay la bac si")
    (answer,) = ask_corpus(
        tmp_path, {"benhvien.txt": bare}, ["Ai là giám đốc hiện nay của bệnh viện?"]
    )
    assert quotes(answer) == ["Giam doc hien nay la bac si Trần Minh Khoa."]


def test_arabic_with_and_without_tashkeel_gets_the_same_answer(tmp_path: Path) -> None:
    river = (
        "نهر الأمل\n\n"
        "يبلغ طول نهر الأمل ثلاثمائة كيلومتر. يعبر النهر ثلاث مدن كبيرة.\n"
        "بُنِيَ الجِسْرُ الكَبِيرُ فَوْقَ النَّهْرِ عَامَ 1960.\n"
    )
    plain, marked = ask_corpus(
        tmp_path,
        {"river.txt": river},
        ["متى بني الجسر الكبير فوق النهر؟", "مَتَى بُنِيَ الجِسْرُ الكَبِيرُ فَوْقَ النَّهْرِ؟"],
    )
    assert quotes(plain) == quotes(marked) == ["بُنِيَ الجِسْرُ الكَبِيرُ فَوْقَ النَّهْرِ عَامَ 1960."]


def test_full_width_digits_ask_for_the_same_number(tmp_path: Path) -> None:
    notes = "Harbour notes\n\nThe harbour has 1500 moorings. The ferry leaves at noon.\n"
    ascii_digits, wide = ask_corpus(
        tmp_path,
        {"harbour.txt": notes},
        ["Which harbour has 1500 moorings?", "Which harbour has １５００ moorings?"],
    )
    assert quotes(ascii_digits) == quotes(wide) == ["The harbour has 1500 moorings."]


BAKERY = (
    "<!doctype html><html><head><title>Elm Street Caf&eacute; &amp; Bakery</title></head>"
    "<body>\n<p>The caf&eacute; &amp; bakery on <b>Elm Street</b> bakes 120 sourdough "
    "loaves every morning.</p>\n</body></html>\n"
)


def test_an_html_answer_reads_as_text_and_its_quote_is_the_file(tmp_path: Path) -> None:
    (answer,) = ask_corpus(
        tmp_path, {"bakery.html": BAKERY}, ["How many loaves does the bakery on Elm Street bake?"]
    )
    sentence = "The café & bakery on Elm Street bakes 120 sourdough loaves every morning."
    assert answer.answer == f"{sentence} [1]"
    (citation,) = answer.citations
    assert citation.text == sentence and citation.title == "Elm Street Café & Bakery"
    raw = (tmp_path / "corpus" / "bakery.html").read_text(encoding="utf-8")
    assert citation.quote == raw[citation.start_char : citation.end_char]
    assert citation.quote.startswith("The caf&eacute; &amp; bakery on <b>Elm Street</b>")


def test_a_bom_never_reaches_a_quote_or_a_title(tmp_path: Path) -> None:
    (answer,) = ask_corpus(
        tmp_path,
        {"ferry.md": "\ufeff# Ferry timetable\n\nThe ferry to Kiel leaves at 14:00.\n"},
        ["When does the ferry to Kiel leave?"],
    )
    (citation,) = answer.citations
    assert citation.title == "Ferry timetable" and citation.quote.startswith("The ferry")
    assert "\ufeff" not in answer.model_dump_json()


@pytest.mark.parametrize("spelling", ["X900", "X-900", "X 900", "x900"])
def test_a_product_code_in_any_spelling_is_known(tmp_path: Path, spelling: str) -> None:
    pumps = "Pumps\n\nThe X-900 pump lifts 40 litres a second. The X-700 is smaller.\n"
    (answer,) = ask_corpus(
        tmp_path, {"pumps.txt": pumps}, [f"How many litres does the {spelling} pump lift?"]
    )
    assert not answer.abstained and not any("unknown_term" in w for w in answer.warnings)
    assert quotes(answer) == ["The X-900 pump lifts 40 litres a second."]


def test_an_unknown_product_code_is_still_refused(tmp_path: Path) -> None:
    pumps = "Pumps\n\nThe X-900 pump lifts 40 litres a second.\n"
    (answer,) = ask_corpus(
        tmp_path, {"pumps.txt": pumps}, ["How many litres does the X-950 pump lift?"]
    )
    assert answer.abstained and answer.warnings == ["unknown_term: x950"]


LANGUAGES = {
    "de": (
        "talsperre.txt",
        "Die Talsperre Kestrel\n\nDie Talsperre wurde 1974 nach neun Jahren Bauzeit "
        "fertiggestellt. Ihr Stausee fasst 2,3 Milliarden Kubikmeter Wasser. Sie versorgt "
        "etwa 1,8 Millionen Menschen mit Trinkwasser.\n",
        "Wie viel Wasser fasst der Stausee der Talsperre?",
        "Ihr Stausee fasst 2,3 Milliarden Kubikmeter Wasser.",
    ),
    "ru": (
        "biblioteka.txt",
        "Городская библиотека\n\nБиблиотека открылась в 1958 г. и с тех пор не закрывалась. "
        "В её фонде хранится четыреста тысяч книг. Каждый день библиотеку посещают около "
        "шестисот читателей.\n",
        "Сколько книг хранится в фонде библиотеки?",
        "В её фонде хранится четыреста тысяч книг.",
    ),
    "el": (
        "mouseio.txt",
        "Το μουσείο της πόλης\n\nΤο μουσείο άνοιξε το 1965. Η συλλογή του περιλαμβάνει "
        "τρεις χιλιάδες αρχαία αγγεία. Το μουσείο είναι ανοιχτό κάθε μέρα εκτός από τη "
        "Δευτέρα.\n",
        "Πόσα αρχαία αγγεία περιλαμβάνει η συλλογή του μουσείου;",
        "Η συλλογή του περιλαμβάνει τρεις χιλιάδες αρχαία αγγεία.",
    ),
    "tr": (
        "hastane.txt",
        "Şehir Hastanesi\n\nHastane 1982 yılında açıldı. Hastanede dört yüz yatak ve iki "
        "bin çalışan bulunuyor. Başhekim Dr. Ayşe Demir yirmi yıldır bu görevde.\n",
        "Hastanede kaç yatak bulunuyor?",
        "Hastanede dört yüz yatak ve iki bin çalışan bulunuyor.",
    ),
    "hi": (
        "aspatal.txt",
        "नगर अस्पताल\n\nअस्पताल की स्थापना 1975 में हुई थी। अस्पताल में चार सौ बिस्तर हैं। "
        "यहाँ हर दिन लगभग एक हज़ार मरीज़ आते हैं।\n",
        "अस्पताल में कितने बिस्तर हैं?",
        "अस्पताल में चार सौ बिस्तर हैं।",
    ),
    "th": (
        "rongphayaban.txt",
        "ข้อมูลโรงพยาบาลเมือง\n\n"
        "โรงพยาบาลเปิดให้บริการครั้งแรกในปี พ.ศ. 2518\n\n"
        "โรงพยาบาลมีเตียงผู้ป่วยทั้งหมดสามร้อยเตียง\n\n"
        "ผู้อำนวยการโรงพยาบาลคือนายแพทย์สมชาย ใจดี\n",
        "โรงพยาบาลมีเตียงผู้ป่วยกี่เตียง",
        "โรงพยาบาลมีเตียงผู้ป่วยทั้งหมดสามร้อยเตียง",
    ),
    "ja": (
        "toshokan.txt",
        "市立図書館\n\n図書館は1960年に開館した。蔵書は約三十万冊である。"
        "毎日およそ五百人が利用している。\n",
        "図書館の蔵書は何冊ですか？",
        "蔵書は約三十万冊である。",
    ),
    "ko": (
        "byeongwon.txt",
        "시립 병원\n\n병원은 1975년에 문을 열었다. 병원에는 병상이 삼백 개 있다. "
        "병원장은 김민수 박사이다.\n",
        "병원에는 병상이 몇 개 있습니까?",
        "병원에는 병상이 삼백 개 있다.",
    ),
}
"""Per language: a file, its text, a question and the sentence that answers it."""


def test_eight_more_languages_are_read_indexed_and_answered(tmp_path: Path) -> None:
    files = {name: text for name, text, _, _ in LANGUAGES.values()}
    (tmp_path / "read").mkdir()
    folder = write_corpus(tmp_path / "read", files)
    langs = {d.doc_id: d.lang for d in corpus.load(folder).documents}
    assert langs == {name: lang for lang, (name, _, _, _) in LANGUAGES.items()}
    answers = ask_corpus(tmp_path, files, [q for _, _, q, _ in LANGUAGES.values()])
    for (name, _, question, sentence), answer in zip(LANGUAGES.values(), answers, strict=True):
        assert not answer.abstained, question
        first = answer.citations[0]
        assert (first.source, first.quote) == (name, sentence), question


def test_a_code_the_corpus_writes_apart_is_known_by_its_parts(tmp_path: Path) -> None:
    phones = (
        "Phones\n\nThe iPhone 15 has a larger camera than the iPhone 14. "
        "The R1 robot costs 2 million.\n"
    )
    joined, model_r2 = ask_corpus(
        tmp_path,
        {"phones.txt": phones},
        ["Which camera does the iPhone15 have?", "How much does the R2 robot cost?"],
    )
    assert not joined.abstained and joined.warnings == []
    assert model_r2.abstained and model_r2.warnings == ["unknown_term: r2"]
