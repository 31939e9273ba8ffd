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
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ValidationError

from rag.errors import RagError
from rag.query.chat import ChatService
from rag.types import Answer

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


class Asker(Protocol):
    """Where an eval set is asked: in process, a running service, or a baseline."""

    def ask(
        self, question: str, conversation_id: str | None, top_k: int | None
    ) -> tuple[Answer, list[Retrieved]]: ...

    def source_text(self, source: str) -> str | None: ...


class InProcess:
    """The engine itself, through ChatService."""

    def __init__(self, service: ChatService) -> None:
        self.service = service

    def ask(
        self, question: str, conversation_id: str | None, top_k: int | None
    ) -> tuple[Answer, list[Retrieved]]:
        turn = self.service.respond(question, conversation_id, top_k)
        retrieved = [Retrieved(p.passage.doc_id, p.passage.text) for p in turn.search.passages]
        return turn.answer, retrieved

    def source_text(self, source: str) -> str | None:
        return self.service.sources.get(source)

    def close(self) -> None:
        self.service.close()


class RemoteService:
    """A running service, through its ``/v1/chat`` (with the retrieved passages) and
    its source viewer: evaluates a deployment as it is."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._texts: dict[str, str | None] = {}

    def _fail(self, response: Any) -> None:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise EvalSetError(
            f"{self.url} answered {response.status_code} to {response.request.url.path}: {detail}"
        )

    def ask(
        self, question: str, conversation_id: str | None, top_k: int | None
    ) -> tuple[Answer, list[Retrieved]]:
        import httpx

        body: dict[str, Any] = {"message": question, "include_retrieved": True}
        if conversation_id:
            body["conversation_id"] = conversation_id
        if top_k:
            body["top_k"] = top_k
        try:
            response = self._http.post("/v1/chat", json=body)
        except httpx.HTTPError as exc:
            raise EvalSetError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code != 200:
            self._fail(response)
        data = response.json()
        retrieved = [Retrieved(r["source"], r["text"]) for r in data.pop("retrieved") or []]
        return Answer.model_validate(data), retrieved

    def source_text(self, source: str) -> str | None:
        if source not in self._texts:
            from urllib.parse import quote

            response = self._http.get(f"/v1/sources/{quote(source)}", params={"context": 0})
            self._texts[source] = response.json()["text"] if response.status_code == 200 else None
        return self._texts[source]

    def close(self) -> None:
        self._http.close()


def run(
    asker: Asker | ChatService,
    items: Sequence[EvalItem],
    top_k: int | None = None,
    progress: Callable[[], None] | None = None,
) -> list[QuestionResult]:
    """Ask every question (earlier ``turns`` first, in one conversation)."""
    if isinstance(asker, ChatService):
        asker = InProcess(asker)
    results = []
    for item in items:
        conversation = None
        for turn in item.turns:
            conversation = asker.ask(turn, conversation, top_k)[0].conversation_id
        t0 = time.perf_counter()
        answer, retrieved = asker.ask(item.question, conversation, top_k)
        latency = (time.perf_counter() - t0) * 1000
        result = QuestionResult(item=item, answer=answer, retrieved=retrieved, latency_ms=latency)
        result.citation_ok = citation_checks(result, asker.source_text)
        results.append(result)
        if progress is not None:
            progress()
    return results


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
