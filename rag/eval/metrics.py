"""Metrics of an eval run (names are the contract of ARCHITECTURE.md).

Each metric is a small function over per-question results. A retrieved passage or a
citation *supports* a question when it comes from one of the question's
``expected_sources`` and its text matches the ``expected_evidence`` regex: for a
citation, the text of its quoted span itself (``citation_checks``); the looser
``citation_checks_window`` also accepts evidence within CITATION_WINDOW characters of
it. A metric is None when no question it counts over is in the results.

``abstention_curve`` is the trade-off of the abstention threshold (abstention recall
against false abstention as it moves), from each question's abstention score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.eval.dataset import EvalItem
from rag.types import Answer

CITATION_WINDOW = 300
"""Characters of source text on each side of a citation that ``citation_checks_window``
counts as its passage (``citation_precision_window``)."""


@dataclass
class Retrieved:
    """A retrieved passage, as an eval run sees it: its file and text."""

    source: str
    text: str


@dataclass
class Reply:
    """What an eval run gets back for one question: the Answer, the passages
    retrieved for it (best first), and the abstention score when the service says
    it (``QuestionResult.abstain_score``)."""

    answer: Answer
    retrieved: list[Retrieved]
    abstain_score: float | None = None


@dataclass
class QuestionResult:
    """One question asked: the answer, what was retrieved, the latency (ms), the check
    of each citation (``citation_checks``; ``citation_ok_window``:
    ``citation_checks_window``) and the abstention score the service computed for
    the question (``abstain_score``; None when the service does not say, e.g. over
    HTTP or a baseline that never abstains)."""

    item: EvalItem
    answer: Answer
    retrieved: list[Retrieved]
    latency_ms: float
    citation_ok: list[bool] = field(default_factory=list)
    citation_ok_window: list[bool] = field(default_factory=list)
    abstain_score: float | None = None
    """The score the abstention threshold is compared with (rag/query/abstain.py
    ``Decision.support``): the service abstains below the threshold."""

    def supports(self, source: str, text: str) -> bool:
        """Whether a passage or citation of ``source`` with ``text`` supports the
        question (from an expected source, and the evidence regex matches)."""
        return source in self.item.expected_sources and bool(re.search(self.item.evidence, text))

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
            and bool(re.search(self.item.evidence, quotes)),
            "not_abstained": not self.answer.abstained,
        }

    def to_dict(self) -> dict[str, Any]:
        """One line of ``--details``: the question, what was retrieved and cited (each
        citation's source, span, raw ``quote`` and the ``text`` a reader is shown), the
        answer, the abstention score, each check's pass or fail, the latency."""
        return {
            "id": self.item.id,
            "question": self.item.question,
            "lang": self.item.lang,
            "answerable": self.item.answerable,
            "abstained": self.answer.abstained,
            "abstain_score": self.abstain_score,
            "retrieved_sources": [r.source for r in self.retrieved],
            "cited_sources": [c.source for c in self.answer.citations],
            "citations": [
                c.model_dump(include={"n", "source", "start_char", "end_char", "quote", "text"})
                for c in self.answer.citations
            ],
            "first_hit_rank": self.first_hit(),
            "citation_ok": self.citation_ok,
            "citation_ok_window": self.citation_ok_window,
            "answer": self.answer.answer,
            "warnings": self.answer.warnings,
            "pass": self.passes(),
            "latency_ms": round(self.latency_ms, 2),
        }


def citation_checks(result: QuestionResult) -> list[bool]:
    """Per citation: from an expected source, and the evidence regex matches the
    citation's quoted span itself (a quote of the sentence next to the evidence does
    not count)."""
    return [result.supports(c.source, c.quote) for c in result.answer.citations]


def citation_checks_window(
    result: QuestionResult, source_text: Callable[[str], str | None]
) -> list[bool]:
    """Per citation: from an expected source, and the evidence regex matches the
    source text (``source_text(source)``) from CITATION_WINDOW characters before the
    quoted span to as many after it: the quote is near the evidence."""
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
    """Share of the citations given for answerable questions whose quoted span itself
    is from an expected source and matches the evidence regex (``citation_checks``);
    None when no citation was given."""
    checks = [ok for r in _answerable(results) for ok in r.citation_ok]
    return sum(checks) / len(checks) if checks else None


def citation_precision_window(results: Sequence[QuestionResult]) -> float | None:
    """Share of the citations given for answerable questions that are from an
    expected source with the evidence within CITATION_WINDOW characters of the quote
    (``citation_checks_window``): a quote near the evidence counts, as
    ``citation_precision`` counted before it became strict. None when no citation
    was given."""
    checks = [ok for r in _answerable(results) for ok in r.citation_ok_window]
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
        and re.search(r.item.evidence, " ".join(c.quote for c in r.answer.citations))
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
        "citation_precision_window": rounded(citation_precision_window(results)),
        "answer_supported": rounded(answer_supported(results)),
        "abstention_recall": rounded(abstention_recall(results)),
        "false_abstention_rate": rounded(false_abstention_rate(results)),
        "latency_ms_p50": rounded(latency_percentile(results, 50)),
        "latency_ms_p95": rounded(latency_percentile(results, 95)),
    }


def abstained_otherwise(result: QuestionResult) -> bool:
    """Whether the service abstained for a reason other than the abstention score,
    one that holds whatever the threshold: its answer carries a warning (a term no
    passage contains, no quantity stated, every citation failing its check). An
    abstention for a low score alone carries none."""
    return result.answer.abstained and bool(result.answer.warnings)


def abstention_curve(results: Sequence[QuestionResult]) -> list[dict[str, float | None]]:
    """The abstention trade-off as the threshold moves, over the results that have an
    ``abstain_score``: at threshold ``t`` a question abstains when its score is below
    ``t`` or it abstained otherwise (``abstained_otherwise``).

    One point per distinct observed score (as ``t``) and one just above the highest,
    in increasing ``t``: ``{"threshold", "abstention_recall",
    "false_abstention_rate"}`` (shares of the unanswerable and answerable questions
    abstained at ``t``; None when there are none of that kind). Both shares never
    fall as ``t`` rises; the first point abstains only what abstained otherwise, the
    last every question. Empty when no result has a score."""
    scored = [r for r in results if r.abstain_score is not None]
    if not scored:
        return []
    scores = sorted({float(r.abstain_score) for r in scored if r.abstain_score is not None})
    thresholds = [*scores, math.nextafter(scores[-1], math.inf)]
    unanswerable = [r for r in scored if not r.item.answerable]
    answerable = [r for r in scored if r.item.answerable]

    def share(rows: list[QuestionResult], t: float) -> float | None:
        if not rows:
            return None
        abstained = sum(
            1
            for r in rows
            if abstained_otherwise(r) or (r.abstain_score is not None and r.abstain_score < t)
        )
        return abstained / len(rows)

    return [
        {
            "threshold": t,
            "abstention_recall": share(unanswerable, t),
            "false_abstention_rate": share(answerable, t),
        }
        for t in thresholds
    ]


def report(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """``{"n", "overall": {...}, "by_lang": {lang: {...}}}``, and
    ``"abstention_curve": [...]`` (``abstention_curve``) when the results have
    abstention scores."""
    langs = sorted({r.item.lang for r in results})
    out: dict[str, Any] = {
        "n": len(results),
        "overall": metrics(results),
        "by_lang": {lang: metrics([r for r in results if r.item.lang == lang]) for lang in langs},
    }
    curve = abstention_curve(results)
    if curve:
        out["abstention_curve"] = curve
    return out


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
