"""Evaluation sets (JSONL), metrics and reports for ``rag eval``.

Each metric is a small function over per-question results; names are the contract
of ARCHITECTURE.md. A retrieved passage or a citation *supports* a question when it
comes from one of the question's ``expected_sources`` and its text matches the
``expected_evidence`` regex.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from rag.answer import Answer
from rag.chat import ChatService
from rag.errors import RagError

CITATION_WINDOW = 300
"""Characters of source text on each side of a citation that count as its passage."""


class EvalItem(BaseModel):
    id: str
    question: str
    lang: str
    expected_sources: list[str] = []
    expected_evidence: str = ""
    answerable: bool = True
    turns: list[str] = []


class EvalSetError(RagError):
    exit_code = 2


def load_eval_set(path: Path) -> list[EvalItem]:
    """Read and validate an eval set; errors name the line and the problem."""
    items: list[EvalItem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalSetError(f"cannot read eval set '{path}': {exc.strerror}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = EvalItem.model_validate(json.loads(line))
            if item.answerable:
                re.compile(item.expected_evidence)
        except (json.JSONDecodeError, ValidationError, re.error) as exc:
            raise EvalSetError(f"{path}:{number}: {exc}") from exc
        if item.answerable and not item.expected_sources:
            raise EvalSetError(f"{path}:{number}: an answerable question needs expected_sources")
        items.append(item)
    if not items:
        raise EvalSetError(f"eval set '{path}' has no questions")
    return items


@dataclass
class Retrieved:
    source: str
    text: str


@dataclass
class QuestionResult:
    item: EvalItem
    answer: Answer
    retrieved: list[Retrieved]
    latency_ms: float
    citation_ok: list[bool] = field(default_factory=list)

    def supports(self, source: str, text: str) -> bool:
        return source in self.item.expected_sources and bool(
            re.search(self.item.expected_evidence, text)
        )

    def first_hit(self) -> int | None:
        """1-based rank of the first supporting retrieved passage."""
        for rank, r in enumerate(self.retrieved, start=1):
            if self.supports(r.source, r.text):
                return rank
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.item.id,
            "question": self.item.question,
            "lang": self.item.lang,
            "answerable": self.item.answerable,
            "abstained": self.answer.abstained,
            "retrieved_sources": [r.source for r in self.retrieved],
            "cited_sources": [c.source for c in self.answer.citations],
            "first_hit_rank": self.first_hit(),
            "citation_ok": self.citation_ok,
            "answer": self.answer.answer,
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


def write_details(results: Iterable[QuestionResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for r in results:
            out.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")


def run(
    service: ChatService,
    items: Sequence[EvalItem],
    top_k: int | None = None,
    progress: Callable[[], None] | None = None,
) -> list[QuestionResult]:
    """Ask every question in process (earlier ``turns`` first, in one conversation)."""
    results = []
    for item in items:
        conversation = None
        for turn in item.turns:
            conversation = service.ask(turn, conversation).conversation_id
        t0 = time.perf_counter()
        turn_result = service.respond(item.question, conversation, top_k)
        latency = (time.perf_counter() - t0) * 1000
        result = QuestionResult(
            item=item,
            answer=turn_result.answer,
            retrieved=[
                Retrieved(p.passage.doc_id, p.passage.text) for p in turn_result.search.passages
            ],
            latency_ms=latency,
        )
        result.citation_ok = citation_checks(result, service.sources.get)
        results.append(result)
        if progress is not None:
            progress()
    return results
