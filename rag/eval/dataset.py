"""Eval sets: JSONL, one question a line (ARCHITECTURE.md's contract)::

    {"id": "q01", "question": "...", "lang": "en",
     "expected_sources": ["004_1dc07bb43c1f175e.txt"],
     "expected_evidence": "regex that a supporting passage matches",
     "answerable": true, "turns": ["earlier question", ...]}

An unanswerable question has ``"answerable": false``, no expected sources, and
``expected_evidence`` empty, null or left out; an answerable one needs both.
``turns`` (optional) are asked first, in the same conversation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ValidationError

from rag.errors import RagError


class EvalItem(BaseModel):
    """One question of an eval set (module doc)."""

    id: str
    question: str
    lang: str
    expected_sources: list[str] = []
    expected_evidence: str | None = None
    """Regex that a supporting passage or quote matches (``re.search``); None (or
    empty) only for an unanswerable question."""
    answerable: bool = True
    turns: list[str] = []

    @property
    def evidence(self) -> str:
        """``expected_evidence`` as a regex; empty for an unanswerable question
        (which nothing is checked against)."""
        return self.expected_evidence or ""


class EvalSetError(RagError):
    """An eval set that cannot be read or used, or a service under evaluation that
    does not answer (the message names the line or the URL)."""

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
        except (json.JSONDecodeError, ValidationError) as exc:
            raise EvalSetError(f"{path}:{number}: {exc}") from exc
        if item.answerable:
            if not item.expected_sources:
                raise EvalSetError(
                    f"{path}:{number}: an answerable question needs expected_sources"
                )
            if not item.expected_evidence:
                raise EvalSetError(
                    f"{path}:{number}: an answerable question needs expected_evidence (a regex "
                    f"its supporting quote matches), got {item.expected_evidence!r}; an "
                    'unanswerable one says "answerable": false'
                )
            try:
                re.compile(item.expected_evidence)
            except re.error as exc:
                raise EvalSetError(
                    f"{path}:{number}: expected_evidence is not a valid regex: {exc}"
                ) from exc
        items.append(item)
    if not items:
        raise EvalSetError(f"eval set '{path}' has no questions")
    return items
