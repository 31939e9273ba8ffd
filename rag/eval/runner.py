"""Running an eval set: in process through the pipeline (rag/query/pipeline.py), or
against a running service's HTTP API, or through any ``Asker`` (the naive baseline,
rag/eval/naive.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rag.eval.dataset import EvalItem, EvalSetError
from rag.eval.metrics import (
    QuestionResult,
    Reply,
    Retrieved,
    citation_checks,
    citation_checks_window,
)
from rag.query.pipeline import Pipeline
from rag.types import Answer


class Asker(Protocol):
    """Where an eval set is asked: in process, a running service, or a baseline."""

    def ask(self, question: str, conversation_id: str | None, top_k: int | None) -> Reply:
        """The Answer to ``question`` (a turn of ``conversation_id`` when given), the
        passages retrieved for it, best first, and its abstention score if known."""
        ...

    def source_text(self, source: str) -> str | None:
        """The text of a corpus file (citations index into it), or None."""
        ...


class InProcess:
    """The engine itself, through the pipeline; the turns of each conversation are
    kept in memory (nothing is stored)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._history: dict[str, list[str]] = {}

    def ask(self, question: str, conversation_id: str | None, top_k: int | None) -> Reply:
        """Through ``Pipeline.answer``; a new conversation id when none is given."""
        conversation_id = conversation_id or uuid.uuid4().hex
        history = self._history.setdefault(conversation_id, [])
        turn = self.pipeline.answer(
            question, history=list(history), top_k=top_k, conversation_id=conversation_id
        )
        history.append(turn.standalone)
        retrieved = [Retrieved(p.passage.doc_id, p.passage.text) for p in turn.search.passages]
        return Reply(turn.answer, retrieved, turn.abstain_score)

    def source_text(self, source: str) -> str | None:
        """The file's text as the pipeline's citation check reads it."""
        return self.pipeline.sources.get(source)

    def close(self) -> None:
        """Forget the conversations."""
        self._history.clear()


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

    def ask(self, question: str, conversation_id: str | None, top_k: int | None) -> Reply:
        """``POST /v1/chat`` with the retrieved passages; EvalSetError when the
        service cannot be reached or answers with an error. The HTTP answer has no
        abstention score."""
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
        return Reply(Answer.model_validate(data), retrieved)

    def source_text(self, source: str) -> str | None:
        """``GET /v1/sources/{source}`` (cached), or None."""
        if source not in self._texts:
            from urllib.parse import quote

            response = self._http.get(f"/v1/sources/{quote(source)}", params={"context": 0})
            self._texts[source] = response.json()["text"] if response.status_code == 200 else None
        return self._texts[source]

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()


def run(
    asker: Asker | Pipeline,
    items: Sequence[EvalItem],
    top_k: int | None = None,
    progress: Callable[[], None] | None = None,
) -> list[QuestionResult]:
    """Ask every question (earlier ``turns`` first, in one conversation), timing each
    (ms, the question alone) and checking its citations (strictly and within the
    window, rag/eval/metrics.py); ``progress`` is called after each question."""
    if isinstance(asker, Pipeline):
        asker = InProcess(asker)
    results = []
    for item in items:
        conversation = None
        for turn in item.turns:
            conversation = asker.ask(turn, conversation, top_k).answer.conversation_id
        t0 = time.perf_counter()
        reply = asker.ask(item.question, conversation, top_k)
        latency = (time.perf_counter() - t0) * 1000
        result = QuestionResult(
            item=item,
            answer=reply.answer,
            retrieved=reply.retrieved,
            latency_ms=latency,
            abstain_score=reply.abstain_score,
        )
        result.citation_ok = citation_checks(result)
        result.citation_ok_window = citation_checks_window(result, asker.source_text)
        results.append(result)
        if progress is not None:
            progress()
    return results
