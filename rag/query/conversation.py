"""Conversations: the turns of each conversation, kept in SQLite. A follow-up is
condensed into a standalone question by rag/query/condense.py before it is asked.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from rag.types import Answer


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
