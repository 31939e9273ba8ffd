from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag.eval import dataset, metrics
from rag.eval.dataset import EvalItem, EvalSetError
from rag.eval.metrics import QuestionResult, Retrieved
from rag.types import Answer, Citation
from tests.conftest import ROOT, SEEDS

DEV = ROOT / "evals" / "seeds_dev.jsonl"


def _cite(source: str, quote: str, start: int = 0) -> Citation:
    return Citation(
        n=1,
        source=source,
        title="",
        start_char=start,
        end_char=start + len(quote),
        start_line=1,
        end_line=1,
        quote=quote,
        lang="en",
        score=1.0,
    )


def _result(
    answerable: bool,
    retrieved: list[tuple[str, str]],
    cited: list[tuple[str, str]],
    abstained: bool = False,
    latency: float = 10.0,
) -> QuestionResult:
    item = EvalItem(
        id="x",
        question="q",
        lang="en",
        answerable=answerable,
        expected_sources=["a.txt"] if answerable else [],
        expected_evidence="six million" if answerable else "",
    )
    answer = Answer(answer="", citations=[_cite(s, q) for s, q in cited], abstained=abstained)
    r = QuestionResult(item, answer, [Retrieved(s, t) for s, t in retrieved], latency)
    r.citation_ok = metrics.citation_checks(r)
    r.citation_ok_window = metrics.citation_checks_window(r, lambda source: None)
    return r


PERFECT = _result(True, [("a.txt", "it cost six million")], [("a.txt", "six million")])
SECOND = _result(True, [("b.txt", "six million"), ("a.txt", "six million here")], [("b.txt", "x")])
MISS = _result(True, [("b.txt", "nothing")], [], abstained=True)
REFUSED = _result(False, [("b.txt", "nothing")], [], abstained=True)
ANSWERED = _result(False, [("b.txt", "nothing")], [("b.txt", "nothing")])


def test_hit_at_k_and_mrr() -> None:
    assert metrics.hit_at_k([PERFECT], 1) == 1.0
    assert metrics.hit_at_k([SECOND], 1) == 0.0  # right text, wrong source at rank 1
    assert metrics.hit_at_k([SECOND], 5) == 1.0
    assert metrics.hit_at_k([MISS], 5) == 0.0
    assert metrics.mrr([PERFECT, SECOND, MISS]) == pytest.approx((1 + 0.5 + 0) / 3)
    assert metrics.hit_at_k([REFUSED], 5) is None  # no answerable question


def test_citation_precision_and_answer_supported() -> None:
    assert metrics.citation_precision([PERFECT]) == 1.0
    assert metrics.citation_precision([PERFECT, SECOND]) == 0.5
    assert metrics.citation_precision([MISS]) is None
    assert metrics.answer_supported([PERFECT, SECOND, MISS]) == pytest.approx(1 / 3)


def test_a_quote_of_the_neighbouring_sentence_counts_only_within_the_window() -> None:
    """The evidence is in the sentence after the quoted one: the strict check fails,
    the window check (300 characters around the quote) passes."""
    text = "The model was trained in two months. It cost six million dollars to train."
    item = EvalItem(
        id="x",
        question="How much did it cost?",
        lang="en",
        expected_sources=["a.txt"],
        expected_evidence="six million",
    )
    neighbour = _cite("a.txt", "The model was trained in two months.")
    evidence = _cite("a.txt", "It cost six million dollars to train.", start=text.index("It"))
    other_file = _cite("b.txt", "It cost six million dollars to train.", start=text.index("It"))
    assert text[evidence.start_char : evidence.end_char] == evidence.quote
    answer = Answer(answer="", citations=[neighbour, evidence, other_file], abstained=False)
    r = QuestionResult(item, answer, [], 1.0)
    assert metrics.citation_checks(r) == [False, True, False]
    texts = {"a.txt": text, "b.txt": text}
    assert metrics.citation_checks_window(r, texts.get) == [True, True, False]
    r.citation_ok = metrics.citation_checks(r)
    r.citation_ok_window = metrics.citation_checks_window(r, texts.get)
    assert metrics.citation_precision([r]) == pytest.approx(1 / 3)
    assert metrics.citation_precision_window([r]) == pytest.approx(2 / 3)
    far = "x" * (metrics.CITATION_WINDOW + 10) + " "
    r.answer = Answer(answer="", citations=[_cite("a.txt", "It rained.")], abstained=False)
    assert metrics.citation_checks_window(r, {"a.txt": "It rained." + far + text}.get) == [False]


def test_abstention_metrics() -> None:
    results = [PERFECT, MISS, REFUSED, ANSWERED]
    assert metrics.abstention_recall(results) == 0.5
    assert metrics.false_abstention_rate(results) == 0.5
    assert metrics.abstention_recall([PERFECT]) is None
    assert metrics.false_abstention_rate([PERFECT]) == 0.0


def test_report_has_the_contract_names_overall_and_per_language() -> None:
    report = metrics.report([PERFECT, REFUSED])
    expected = {
        "n",
        "retrieval_hit@1",
        "retrieval_hit@5",
        "mrr",
        "citation_precision",
        "citation_precision_window",
        "answer_supported",
        "abstention_recall",
        "false_abstention_rate",
        "latency_ms_p50",
        "latency_ms_p95",
    }
    assert set(report["overall"]) == expected
    assert set(report["by_lang"]) == {"en"} and report["n"] == 2


def test_bad_eval_lines_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "a", "question": "q", "lang": "en", "expected_sources": ["x"],'
        ' "expected_evidence": "ok"}\n{"id": "b"}\n',
        encoding="utf-8",
    )
    with pytest.raises(EvalSetError, match=r"set.jsonl:2"):
        dataset.load_eval_set(path)


def test_dev_set_shape_and_every_evidence_regex_matches_its_sources() -> None:
    items = dataset.load_eval_set(DEV)
    assert len(items) >= 40
    langs = [i.lang for i in items if i.answerable]
    english_about_others = [i for i in items if i.lang == "en" and i.answerable]
    assert len(english_about_others) >= 20
    for lang in ("ms", "id", "vi", "ar"):
        assert langs.count(lang) >= 3, lang
    assert "zh" in langs
    assert sum(not i.answerable for i in items) >= 6
    for item in items:
        if not item.answerable:
            assert item.expected_sources == []
            continue
        for source in item.expected_sources:
            text = (SEEDS / source).read_text(encoding="utf-8")
            assert re.search(item.expected_evidence, text), (item.id, source)
    ids = [json.loads(line)["id"] for line in DEV.read_text(encoding="utf-8").splitlines()]
    assert len(ids) == len(set(ids))


def test_passes_names_each_check_per_question() -> None:
    assert PERFECT.passes() == {
        "retrieval_hit@1": True,
        "retrieval_hit@5": True,
        "citations_support": True,
        "answer_supported": True,
        "not_abstained": True,
    }
    assert SECOND.passes()["retrieval_hit@1"] is False
    assert SECOND.passes()["retrieval_hit@5"] is True
    assert REFUSED.passes() == {"abstained": True} and ANSWERED.passes() == {"abstained": False}


def test_regressions_flag_drops_beyond_the_tolerance() -> None:
    before = {
        "overall": {"retrieval_hit@1": 0.80, "false_abstention_rate": 0.05, "latency_ms_p50": 10},
        "by_lang": {"ar": {"retrieval_hit@1": 0.6}},
    }
    same = {
        "overall": {"retrieval_hit@1": 0.79, "false_abstention_rate": 0.06, "latency_ms_p50": 90},
        "by_lang": {"ar": {"retrieval_hit@1": 0.6}},
    }
    assert metrics.regressions(same, before, 0.02) == []  # latency is not guarded
    worse = {
        "overall": {"retrieval_hit@1": 0.70, "false_abstention_rate": 0.10, "latency_ms_p50": 10},
        "by_lang": {"ar": {"retrieval_hit@1": 0.4}},
    }
    assert metrics.regressions(worse, before, 0.02) == [
        "overall retrieval_hit@1: 0.800 -> 0.700 (worse by 0.100)",
        "overall false_abstention_rate: 0.050 -> 0.100 (worse by 0.050)",
    ]
    found = metrics.regressions(worse, before, 0.02, by_lang=True)
    assert found == [
        "overall retrieval_hit@1: 0.800 -> 0.700 (worse by 0.100)",
        "overall false_abstention_rate: 0.050 -> 0.100 (worse by 0.050)",
        "ar retrieval_hit@1: 0.600 -> 0.400 (worse by 0.200)",
    ]
    assert metrics.regressions(worse, before, 0.5) == []


def test_null_evidence_is_fine_for_an_unanswerable_item_and_an_error_otherwise(
    tmp_path: Path,
) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "a", "question": "q", "lang": "en", "expected_sources": [],'
        ' "expected_evidence": null, "answerable": false}\n'
        '{"id": "b", "question": "q", "lang": "en", "answerable": false}\n',
        encoding="utf-8",
    )
    items = dataset.load_eval_set(path)
    assert [i.expected_evidence for i in items] == [None, None]
    refused = QuestionResult(items[0], Answer(answer="", citations=[], abstained=True), [], 1.0)
    assert metrics.report([refused])["overall"]["abstention_recall"] == 1.0
    for evidence in ("null", '""'):
        path.write_text(
            '{"id": "a", "question": "q", "lang": "en", "expected_sources": [],'
            ' "answerable": false}\n'
            '{"id": "b", "question": "q", "lang": "en", "expected_sources": ["x.txt"],'
            f' "expected_evidence": {evidence}, "answerable": true}}\n',
            encoding="utf-8",
        )
        with pytest.raises(EvalSetError, match=r"set.jsonl:2: an answerable question needs "):
            dataset.load_eval_set(path)
    path.write_text(
        '{"id": "b", "question": "q", "lang": "en", "expected_sources": ["x.txt"],'
        ' "expected_evidence": "(unclosed"}\n',
        encoding="utf-8",
    )
    with pytest.raises(EvalSetError, match=r"set.jsonl:1: expected_evidence is not a valid regex"):
        dataset.load_eval_set(path)


def _scored(answerable: bool, score: float, abstained: bool, warnings: list[str] | None = None):
    r = _result(answerable, [], [], abstained=abstained)
    r.answer.warnings = warnings or []
    r.abstain_score = score
    return r


def test_abstention_curve_sweeps_the_observed_scores() -> None:
    """Threshold 0.5 in force: two unanswerable questions (one abstained for a low
    score, one for an unknown term whatever its score) and three answerable ones."""
    results = [
        _scored(False, 0.2, abstained=True),
        _scored(False, 0.9, abstained=True, warnings=["unknown_term: r9"]),
        _scored(True, 0.4, abstained=True),
        _scored(True, 0.6, abstained=False),
        _scored(True, 0.8, abstained=False),
        _result(True, [], [], abstained=False),  # no score (an HTTP answer): left out
    ]
    curve = metrics.abstention_curve(results)
    assert [p["threshold"] for p in curve[:-1]] == [0.2, 0.4, 0.6, 0.8, 0.9]
    assert curve[-1]["threshold"] > 0.9
    recall = [p["abstention_recall"] for p in curve]
    false = [p["false_abstention_rate"] for p in curve]
    assert recall == sorted(recall) and false == sorted(false)  # never falls
    # the lowest threshold abstains only what abstained for another reason; the
    # last one every question
    assert (recall[0], false[0]) == (0.5, 0.0)
    assert (recall[-1], false[-1]) == (1.0, 1.0)
    # between 0.4 and 0.6 (the threshold in force) it is what the service did
    at = next(p for p in curve if p["threshold"] >= 0.5)
    scored = results[:-1]
    assert at["abstention_recall"] == metrics.abstention_recall(scored)
    assert at["false_abstention_rate"] == pytest.approx(metrics.false_abstention_rate(scored))
    assert metrics.abstention_curve([_result(True, [], [])]) == []
    assert "abstention_curve" not in metrics.report([PERFECT])
    assert metrics.report(results)["abstention_curve"] == curve
    only_answerable = metrics.abstention_curve(results[2:5])
    assert {p["abstention_recall"] for p in only_answerable} == {None}


def test_the_report_writes_the_abstention_curve(tmp_path: Path) -> None:
    from rag.eval import reporting

    results = [
        _scored(False, 0.2, abstained=True),
        _scored(True, 0.4, abstained=True),
        _scored(True, 0.6, abstained=False),
    ]
    report = metrics.report(results)
    paths = reporting.write("r", "set.jsonl", report, results, tmp_path, "rag eval", None, 0.5)
    assert tmp_path / "r.abstention.png" in paths
    assert (tmp_path / "r.abstention.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [p["threshold"] for p in saved["abstention_curve"]][:3] == [0.2, 0.4, 0.6]
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "## Abstention trade-off" in md
    # at 0.5 the question scoring 0.4 abstains, the one scoring 0.6 does not
    assert "| 0.6000 (in force: 0.5) | 1.000 | 0.500 |" in md
    unscored = [_result(True, [], [])]
    paths = reporting.write("u", "set.jsonl", metrics.report(unscored), unscored, tmp_path, "x")
    assert not (tmp_path / "u.abstention.png").exists() and len(paths) == 4
    assert "No abstention scores" in (tmp_path / "u.md").read_text(encoding="utf-8")
