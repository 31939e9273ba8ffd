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


def _cite(source: str, quote: str) -> Citation:
    return Citation(
        n=1,
        source=source,
        title="",
        start_char=0,
        end_char=len(quote),
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
    r.citation_ok = [r.supports(c.source, c.quote) for c in answer.citations]
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
