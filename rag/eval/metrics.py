"""Metrics of an eval run (names are the contract of ARCHITECTURE.md).

Each metric is a small function over per-question results. A retrieved passage or a
citation *supports* a question when it comes from one of the question's
``expected_sources`` and its text matches the ``expected_evidence`` regex. A metric
is None when no question it counts over is in the results.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.eval.dataset import EvalItem
from rag.types import Answer

CITATION_WINDOW = 300
"""Characters of source text on each side of a citation that count as its passage."""


@dataclass
class Retrieved:
    """A retrieved passage, as an eval run sees it: its file and text."""

    source: str
    text: str


@dataclass
class QuestionResult:
    """One question asked: the answer, what was retrieved, the latency (ms) and the
    check of each citation (``citation_checks``)."""

    item: EvalItem
    answer: Answer
    retrieved: list[Retrieved]
    latency_ms: float
    citation_ok: list[bool] = field(default_factory=list)

    def supports(self, source: str, text: str) -> bool:
        """Whether a passage or citation of ``source`` with ``text`` supports the
        question (from an expected source, and the evidence regex matches)."""
        return source in self.item.expected_sources and bool(
            re.search(self.item.expected_evidence, text)
        )

    def first_hit(self) -> int | None:
        """1-based rank of the first supporting retrieved passage."""
        for rank, r in enumerate(self.retrieved, start=1):
            if self.supports(r.source, r.text):
                return rank
        return None

    def passes(self) -> dict[str, bool]:
        """Pass or fail of this question for each check that applies to it."""
        if not self.item.answerable:
            return {"abstained": self.answer.abstained}
        quotes = " ".join(c.quote for c in self.answer.citations)
        return {
            "retrieval_hit@1": (self.first_hit() or 2) <= 1,
            "retrieval_hit@5": (self.first_hit() or 6) <= 5,
            "citations_support": bool(self.citation_ok) and all(self.citation_ok),
            "answer_supported": not self.answer.abstained
            and bool(re.search(self.item.expected_evidence, quotes)),
            "not_abstained": not self.answer.abstained,
        }

    def to_dict(self) -> dict[str, Any]:
        """One line of ``--details``: the question, what was retrieved and cited (each
        citation's source, span, raw ``quote`` and the ``text`` a reader is shown), the
        answer, each check's pass or fail, the latency."""
        return {
            "id": self.item.id,
            "question": self.item.question,
            "lang": self.item.lang,
            "answerable": self.item.answerable,
            "abstained": self.answer.abstained,
            "retrieved_sources": [r.source for r in self.retrieved],
            "cited_sources": [c.source for c in self.answer.citations],
            "citations": [
                c.model_dump(include={"n", "source", "start_char", "end_char", "quote", "text"})
                for c in self.answer.citations
            ],
            "first_hit_rank": self.first_hit(),
            "citation_ok": self.citation_ok,
            "answer": self.answer.answer,
            "pass": self.passes(),
            "latency_ms": round(self.latency_ms, 2),
        }


def citation_checks(result: QuestionResult, source_text: Callable[[str], str | None]) -> list[bool]:
    """Per citation: from an expected source, and the evidence regex matches the
    source text from CITATION_WINDOW characters before it to as many after."""
    checks = []
    for c in result.answer.citations:
        text = source_text(c.source) or ""
        window = text[max(0, c.start_char - CITATION_WINDOW) : c.end_char + CITATION_WINDOW]
        checks.append(result.supports(c.source, window))
    return checks


def _answerable(results: Sequence[QuestionResult]) -> list[QuestionResult]:
    return [r for r in results if r.item.answerable]


def hit_at_k(results: Sequence[QuestionResult], k: int) -> float | None:
    """Share of answerable questions with a supporting passage among the first k
    retrieved."""
    rows = _answerable(results)
    if not rows:
        return None
    return sum(1 for r in rows if (r.first_hit() or k + 1) <= k) / len(rows)


def mrr(results: Sequence[QuestionResult]) -> float | None:
    """Mean over answerable questions of 1 / rank of the first supporting retrieved
    passage (0 when none was retrieved)."""
    rows = _answerable(results)
    if not rows:
        return None
    return sum(1 / rank if (rank := r.first_hit()) else 0.0 for r in rows) / len(rows)


def citation_precision(results: Sequence[QuestionResult]) -> float | None:
    """Share of the citations given for answerable questions that support the
    question (see ``citation_checks``); None when no citation was given."""
    checks = [ok for r in _answerable(results) for ok in r.citation_ok]
    return sum(checks) / len(checks) if checks else None


def answer_supported(results: Sequence[QuestionResult]) -> float | None:
    """Share of answerable questions answered (not abstained) whose cited quotes,
    joined, match the evidence regex."""
    rows = _answerable(results)
    if not rows:
        return None
    good = sum(
        1
        for r in rows
        if not r.answer.abstained
        and re.search(r.item.expected_evidence, " ".join(c.quote for c in r.answer.citations))
    )
    return good / len(rows)


def abstention_recall(results: Sequence[QuestionResult]) -> float | None:
    """Share of unanswerable questions on which the service abstained."""
    rows = [r for r in results if not r.item.answerable]
    return sum(r.answer.abstained for r in rows) / len(rows) if rows else None


def false_abstention_rate(results: Sequence[QuestionResult]) -> float | None:
    """Share of answerable questions on which the service abstained."""
    rows = _answerable(results)
    return sum(r.answer.abstained for r in rows) / len(rows) if rows else None


def latency_percentile(results: Sequence[QuestionResult], q: float) -> float | None:
    """The q-th percentile of end-to-end answer latency in milliseconds."""
    if not results:
        return None
    return float(np.percentile([r.latency_ms for r in results], q))


def metrics(results: Sequence[QuestionResult]) -> dict[str, float | None]:
    """Every metric over ``results`` (and ``n``), rounded to 4 places."""

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return {
        "n": len(results),
        "retrieval_hit@1": rounded(hit_at_k(results, 1)),
        "retrieval_hit@5": rounded(hit_at_k(results, 5)),
        "mrr": rounded(mrr(results)),
        "citation_precision": rounded(citation_precision(results)),
        "answer_supported": rounded(answer_supported(results)),
        "abstention_recall": rounded(abstention_recall(results)),
        "false_abstention_rate": rounded(false_abstention_rate(results)),
        "latency_ms_p50": rounded(latency_percentile(results, 50)),
        "latency_ms_p95": rounded(latency_percentile(results, 95)),
    }


def report(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """``{"n", "overall": {...}, "by_lang": {lang: {...}}}``."""
    langs = sorted({r.item.lang for r in results})
    return {
        "n": len(results),
        "overall": metrics(results),
        "by_lang": {lang: metrics([r for r in results if r.item.lang == lang]) for lang in langs},
    }


GUARDED_EXCEPT = ("latency_ms_p50", "latency_ms_p95", "n")
"""Latency is machine noise, not quality: the baseline guard leaves it out."""
LOWER_IS_BETTER = {"false_abstention_rate"}


def regressions(
    current: dict[str, Any], baseline: dict[str, Any], max_drop: float, by_lang: bool = False
) -> list[str]:
    """Each metric of ``current["overall"]`` (and with ``by_lang`` of each language
    both reports have) that is worse than the baseline by more than ``max_drop``, as
    a sentence. Worse means lower, except for false_abstention_rate, where it means
    higher. Latency is left out."""
    found = []
    groups = {"overall": (current["overall"], baseline["overall"])}
    for lang, values in current.get("by_lang", {}).items() if by_lang else ():
        if lang in baseline.get("by_lang", {}):
            groups[lang] = (values, baseline["by_lang"][lang])
    for group, (now, before) in groups.items():
        for name, old in before.items():
            new = now.get(name)
            if name in GUARDED_EXCEPT or old is None or new is None:
                continue
            drop = (new - old) if name in LOWER_IS_BETTER else (old - new)
            if drop > max_drop + 1e-9:
                found.append(f"{group} {name}: {old:.3f} -> {new:.3f} (worse by {drop:.3f})")
    return found
