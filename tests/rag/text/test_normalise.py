from __future__ import annotations

import unicodedata

import pytest

from rag.text.normalise import identifier_key, nfc, normalise, normalise_number


def test_nfd_input_equals_nfc_input() -> None:
    text = "Thư viện Hòa Bình có bảy trăm nghìn cuốn sách."
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    assert normalise(decomposed) == normalise(text)


def test_vietnamese_without_tone_marks_matches_with_them() -> None:
    assert normalise("Giám đốc bệnh viện Đà Nẵng") == normalise("giam doc benh vien da nang")


def test_arabic_with_tashkeel_and_letter_forms_matches_without() -> None:
    assert normalise("مُؤَسِّسُ الشَّرِكَةِ") == normalise("مؤسس الشركة")
    assert normalise("أإآٱ") == "اااا"
    assert normalise("مستشفى مدرسة") == "مستشفي مدرسه"
    assert normalise("كـتـاب") == normalise("كتاب")  # tatweel
    assert normalise("کتاب یک") == normalise("كتاب يك")  # Persian letter forms


def test_width_case_and_ligatures() -> None:
    assert normalise("ＤｅｅｐＳｅｅｋ V3") == "deepseek v3"
    assert normalise("ﬁle") == "file"


@pytest.mark.parametrize("digits", ["１５００", "١٥٠٠", "۱۵۰۰", "१५००", "๑๕๐๐", "১৫০০"])
def test_digits_of_every_script_are_ascii(digits: str) -> None:
    assert normalise(digits) == "1500"


def test_turkish_dotted_and_dotless_i_fold_to_i() -> None:
    assert normalise("İSTANBUL") == normalise("istanbul") == normalise("ıstanbul") == "istanbul"
    assert normalise("DİYARBAKIR") == normalise("diyarbakir")


def test_german_sharp_s_greek_accents_and_final_sigma_russian_yo() -> None:
    assert normalise("Straße") == normalise("STRASSE") == normalise("strasse")
    assert normalise("GROẞ") == "gross"
    assert normalise("Αθήνας") == normalise("ΑΘΗΝΑΣ")
    assert normalise("Ёлка") == normalise("елка")


def test_marks_that_spell_letters_are_kept() -> None:
    assert normalise("กิน") != normalise("กน")  # Thai vowel sign
    assert normalise("किताब") != normalise("कताब")  # Devanagari vowel sign
    assert normalise("が") != normalise("か")  # dakuten
    assert normalise("한국어") == "한국어"  # Hangul recomposed


def test_invisible_characters_are_removed() -> None:
    assert normalise("\ufeffHello") == "hello"
    assert normalise("co\u00adoper\u200bation") == "cooperation"
    assert normalise("a\u200cb\u200dc\u2060d\u200fe") == "abcde"


def test_superscript_footnote_does_not_glue_to_its_word() -> None:
    assert normalise("cottage¹").split() == ["cottage", "1"]


@pytest.mark.parametrize("text", ["Ｘ-９００ Straße", "Tiếng Việt", "مُؤَسِّسُ", "İzmir ﬁle"])
def test_idempotent(text: str) -> None:
    assert normalise(normalise(text)) == normalise(text)


def test_nfc_is_what_a_reader_sees() -> None:
    decomposed = unicodedata.normalize("NFD", "Giám đốc")
    assert nfc(decomposed) == "Giám đốc"
    assert nfc("\ufeffco\u00adop\u200bera\u2060tion") == "cooperation"
    assert nfc("می\u200cخواهم") == "می\u200cخواهم"  # ZWNJ shapes Persian: kept
    assert nfc("１５００") == "１５００"  # width is the reader's to see


@pytest.mark.parametrize("variant", ["X900", "X-900", "X 900", "x‑900", "ｘ９００", "X/900"])
def test_identifier_variants_share_a_key(variant: str) -> None:
    assert identifier_key(variant) == "x900"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("600,000", "600000"),
        ("600.000", "600000"),
        ("6,00,000", "600000"),
        ("1,200,000", "1200000"),
        ("1.5", "1.5"),
        ("1,5", "1,5"),
        ("3.14159", "3.14159"),
        ("2024", "2024"),
        ("12,34,56", "12,34,56"),
    ],
)
def test_numbers(token: str, expected: str) -> None:
    assert normalise_number(token) == expected
