"""Conversations: a follow-up ("And how much did it cost?") is condensed into a
standalone question, and the turns of each conversation are kept in SQLite.

Without an LLM, condensing carries over the names, model names and numbers of the
conversation's earlier questions (``condense``); with one, the LLM rewrites the
question (``Condenser``), falling back to the heuristic when it fails.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.query.llm import prompt
from rag.text.normalise import normalise
from rag.types import Answer

log = logging.getLogger("rag.chat")

_WORD = re.compile(r"\w[\w-]*")
_QUESTION_WORDS = {
    "What",
    "Who",
    "Whom",
    "Which",
    "When",
    "Where",
    "Why",
    "How",
    "And",
    "Is",
    "Are",
    "Did",
    "Does",
    "Do",
    "Can",
    "Could",
    "Tell",
    "The",
    "In",
    "Of",
    "Apa",
    "Siapa",
    "Berapa",
    "Bagaimana",
    "Mengapa",
    "Di",
    "Dan",
}
_FOLLOW_UP_MAX_WORDS = 9
_NOT_ENTITIES = {normalise(w) for w in _QUESTION_WORDS}


def entities(question: str) -> list[str]:
    """Names (capitalised words, in any script with capitals), model names and numbers
    of a question, as written
    (in NFC), each once by its normalised form (``DeepSeek`` and ``DEEPSEEK`` are one
    name; a question word such as ``What`` or ``Siapa`` is none)."""
    found: dict[str, str] = {}
    for match in _WORD.finditer(unicodedata.normalize("NFC", question)):
        word = match.group().rstrip("-")
        if not (word[0].isupper() or any(ch.isdigit() for ch in word)):
            continue
        key = normalise(word)
        if key not in _NOT_ENTITIES:
            found.setdefault(key, word)
    return list(found.values())


def condense(question: str, history: list[str]) -> str:
    """A standalone question: a short follow-up that names nothing of its own
    inherits the entities of the latest earlier question that has some (compared in
    normalised form: an entity the follow-up already names is not added again)."""
    if not history:
        return question
    own = entities(question)
    if own and len(question.split()) > 3:
        return question
    if len(question.split()) > _FOLLOW_UP_MAX_WORDS:
        return question
    named = {normalise(e) for e in own}
    for earlier in reversed(history):
        carried = [e for e in entities(earlier) if normalise(e) not in named]
        if carried:
            return f"{question} ({' '.join(carried)})"
    return question


class Condenser:
    """Standalone questions: by ``llm`` (a llama-index LLM, or None) when one is
    configured, in the question's language; else, or when it fails or answers with
    nothing or more than ``max_chars`` characters, by ``condense``."""

    def __init__(self, llm: Any, max_chars: int) -> None:
        self.llm = llm
        self.max_chars = max_chars

    def standalone(self, question: str, history: Sequence[str]) -> str:
        """``question`` as a standalone question, given the conversation's earlier
        standalone questions ``history`` (oldest first; the last six go to an LLM)."""
        history = list(history)
        fallback = condense(question, history)
        if self.llm is None or not history:
            return fallback
        from llama_index.core.llms import ChatMessage, MessageRole

        text = prompt("condense.txt").format(
            history="\n".join(f"- {h}" for h in history[-6:]), question=question
        )
        try:
            reply = self.llm.chat([ChatMessage(role=MessageRole.USER, content=text)])
        except Exception as exc:  # the heuristic is always there
            log.warning("LLM condense failed (%s); carrying entities over", exc)
            return fallback
        standalone = " ".join(str(reply.message.content or "").split())
        if not standalone or len(standalone) > self.max_chars:
            return fallback
        return standalone


class ConversationStore:
    """Turns of each conversation, in SQLite (``Settings.data_dir``
    /conversations.sqlite): the question, the standalone question it was answered
    as, and the Answer JSON. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        # WAL: readers never wait for the writer; NORMAL: no fsync per turn (a crash may
        # lose the last turns, never corrupt the file)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS turns (conversation_id TEXT, n INTEGER, "
                "question TEXT, standalone TEXT, answer TEXT, created REAL, "
                "PRIMARY KEY (conversation_id, n))"
            )

    def standalone_questions(self, conversation_id: str) -> list[str]:
        """The standalone questions of the conversation's turns, in order (what a
        follow-up is condensed against)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT standalone FROM turns WHERE conversation_id = ? ORDER BY n",
                (conversation_id,),
            ).fetchall()
        return [r[0] for r in rows]

    def add(self, conversation_id: str, question: str, standalone: str, answer: Answer) -> None:
        """Append a turn to the conversation (created by its first turn)."""
        with self._lock, self._db:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM turns WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            self._db.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    count,
                    question,
                    standalone,
                    answer.model_dump_json(),
                    time.time(),
                ),
            )

    def turns(self, conversation_id: str) -> list[dict[str, object]]:
        """The conversation's turns in order: question, standalone question, Answer JSON."""
        with self._lock:
            rows = self._db.execute(
                "SELECT n, question, standalone, answer, created FROM turns "
                "WHERE conversation_id = ? ORDER BY n",
                (conversation_id,),
            ).fetchall()
        return [
            {
                "n": n,
                "question": question,
                "standalone_question": standalone,
                "answer": json.loads(answer),
                "created": created,
            }
            for n, question, standalone, answer, created in rows
        ]

    def delete(self, conversation_id: str) -> int:
        """Remove a conversation; returns how many turns it had."""
        with self._lock, self._db:
            cursor = self._db.execute(
                "DELETE FROM turns WHERE conversation_id = ?", (conversation_id,)
            )
        return cursor.rowcount

    def close(self) -> None:
        """Close the database."""
        self._db.close()
