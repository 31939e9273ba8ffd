from __future__ import annotations

from rag.text.normalise import fold_content, normalise, normalize_arabic


def test_arabic_normalisation() -> None:
    assert normalize_arabic("أإآٱ") == "اااا"
    assert normalize_arabic("مستشفى مدرسة") == "مستشفي مدرسه"
    assert normalize_arabic("عَرَبِيّ") == "عربي"
    assert normalize_arabic("عـــربي") == "عربي"


def test_normalise_folds_width_case_and_arabic_letters() -> None:
    assert normalise("ＤｅｅｐＳｅｅｋ V3") == "deepseek v3"  # NFKC: full-width letters
    assert normalise("STRASSE Straße") == "strasse strasse"  # case folding, not lower()
    assert normalise("مَدْرَسَة") == "مدرسه"
    assert normalise("ﬁ") == "fi"


def test_fold_content_decodes_html_entities_only_in_html() -> None:
    assert fold_content("Tea &amp;\n  boats", "html") == "Tea & boats"
    assert fold_content("Tea &amp;\n  boats", "text") == "Tea &amp; boats"
