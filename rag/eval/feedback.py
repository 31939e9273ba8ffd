"""What people say of answers (thumbs up or down, with an optional reason), kept in
SQLite under the data folder, and turned into eval-set lines, so that what users flag
becomes evaluation data (``rag feedback export``).

How a rating becomes an eval line (``eval_items``); the latest rating of a question
wins (questions compared with whitespace collapsed and case folded):

- **up, an answer with citations** -> answerable: ``expected_sources`` are the cited
  files (in citation order, each once); ``expected_evidence`` is a regex that matches
  the first citation's quote: its first words, up to ``EVIDENCE_CHARS`` characters,
  each ``re.escape``'d, joined by ``\\s+`` (so re-wrapped text still matches); a quote
  with no spaces (Chinese, Thai) gives its first ``EVIDENCE_CHARS`` characters.
- **up, an abstention** -> unanswerable (``answerable: false``, no sources): the user
  agrees the corpus does not answer.
- **down** -> no eval line: it says the answer was wrong, not where the right one is.
  ``review_items`` lists them (question, answer, reason) for a person to complete.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rag.text.language import detect_language
from rag.types import Answer

Rating = Literal["up", "down"]
EVIDENCE_CHARS = 60
"""Longest evidence regex source text taken from a quote, in characters."""


def store_path(data_dir: Path) -> Path:
    """Where the ratings are kept: ``feedback.sqlite`` in the data folder (RAG_DATA_DIR)."""
    return data_dir / "feedback.sqlite"


@dataclass(frozen=True)
class Feedback:
    """One rating as stored: ``id`` counts from 1, ``created`` is Unix seconds."""

    id: int
    created: float
    question: str
    answer: Answer
    rating: Rating
    reason: str | None = None
    conversation_id: str | None = None
    owner: str | None = None
    """Who gave it (the API's caller id), when known."""


class FeedbackStore:
    """Ratings in SQLite (``feedback`` table); safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS feedback ("
                "id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, "
                "question TEXT NOT NULL, answer TEXT NOT NULL, "
                "rating TEXT NOT NULL CHECK (rating IN ('up', 'down')), reason TEXT, "
                "conversation_id TEXT, owner TEXT)"
            )

    def add(
        self,
        question: str,
        answer: Answer,
        rating: Rating,
        reason: str | None = None,
        conversation_id: str | None = None,
        owner: str | None = None,
    ) -> Feedback:
        """Store one rating; returns it with its id. ValueError for a rating other than
        ``up`` or ``down``."""
        if rating not in ("up", "down"):
            raise ValueError(f"rating must be 'up' or 'down', got {rating!r}")
        created = time.time()
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT INTO feedback (created, question, answer, rating, reason, "
                "conversation_id, owner) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    created,
                    question,
                    answer.model_dump_json(),
                    rating,
                    reason,
                    conversation_id,
                    owner,
                ),
            )
        assert cursor.lastrowid is not None
        return Feedback(
            cursor.lastrowid, created, question, answer, rating, reason, conversation_id, owner
        )

    def all(self) -> list[Feedback]:
        """Every rating, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, created, question, answer, rating, reason, conversation_id, owner "
                "FROM feedback ORDER BY id"
            ).fetchall()
        return [
            Feedback(i, c, q, Answer.model_validate_json(a), r, reason, conv, owner)
            for i, c, q, a, r, reason, conv, owner in rows
        ]

    def close(self) -> None:
        self._db.close()


def evidence_pattern(quote: str, max_chars: int = EVIDENCE_CHARS) -> str:
    """A regex that matches ``quote``: its first words up to ``max_chars`` characters
    (at least one word, cut to ``max_chars`` when that word alone is longer), escaped,
    joined by ``\\s+``. ValueError for a quote of only whitespace."""
    words = quote.split()
    if not words:
        raise ValueError("a quote of only whitespace gives no evidence")
    picked = [words[0][:max_chars]]
    used = len(picked[0])
    for word in words[1:]:
        if used + 1 + len(word) > max_chars:
            break
        picked.append(word)
        used += 1 + len(word)
    return r"\s+".join(re.escape(word) for word in picked)


def _key(question: str) -> str:
    return " ".join(question.split()).casefold()


def latest(ratings: list[Feedback]) -> list[Feedback]:
    """The latest rating of each question, in the order the questions were last rated."""
    last: dict[str, Feedback] = {}
    for item in ratings:
        last.pop(_key(item.question), None)
        last[_key(item.question)] = item
    return list(last.values())


def eval_item(item: Feedback) -> dict[str, Any] | None:
    """The eval-set line of one rating (module docstring), or None for a thumbs-down."""
    if item.rating != "up":
        return None
    line: dict[str, Any] = {
        "id": f"feedback-{item.id}",
        "question": item.question,
        "lang": detect_language(item.question),
    }
    citations = item.answer.citations
    if item.answer.abstained or not citations:
        return {**line, "expected_sources": [], "expected_evidence": "", "answerable": False}
    sources = list(dict.fromkeys(c.source for c in citations))
    return {
        **line,
        "expected_sources": sources,
        "expected_evidence": evidence_pattern(citations[0].quote),
        "answerable": True,
    }


def eval_items(ratings: list[Feedback]) -> list[dict[str, Any]]:
    """Eval-set lines from the latest rating of each question (module docstring)."""
    return [line for item in latest(ratings) if (line := eval_item(item)) is not None]


def review_items(ratings: list[Feedback]) -> list[dict[str, Any]]:
    """The latest thumbs-down of each question, for a person to give the expected
    source: id, question, the answer given, whether it abstained, its cited files and
    the reason."""
    return [
        {
            "id": f"feedback-{item.id}",
            "question": item.question,
            "answer": item.answer.answer,
            "abstained": item.answer.abstained,
            "cited_sources": list(dict.fromkeys(c.source for c in item.answer.citations)),
            "reason": item.reason,
        }
        for item in latest(ratings)
        if item.rating == "down"
    ]


def dumps(lines: list[dict[str, Any]]) -> str:
    """JSONL: one object a line, UTF-8 as is."""
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
