"""Conversations: the turns of each conversation, kept in SQLite. A follow-up is
condensed into a standalone question by rag/query/condense.py before it is asked.

Every conversation belongs to an owner (``ConversationStore``): the edge says who
is asking, and another owner's conversation behaves exactly like a missing one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from rag.errors import ConversationNotFoundError
from rag.types import Answer

LOCAL_OWNER = "local"
"""Who owns the conversations of the command line, and of a service without API keys
when no browser session says otherwise."""


class ConversationStore:
    """Turns of each conversation, in SQLite (``Settings.data_dir``
    /conversations.sqlite): the question, the standalone question it was answered
    as, and the Answer JSON. Safe to share between threads.

    Each conversation is bound to its ``owner``, an opaque string the edge derives (an
    API key's HMAC, a Slack thread's id, a browser session's owner id,
    ``LOCAL_OWNER``). Every read and write names the owner, and a conversation of
    another owner behaves exactly like one that does not exist. Rows stored before
    owners existed belong to nobody (Slack ones to their thread, whose id says it)."""

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
                "question TEXT, standalone TEXT, answer TEXT, created REAL, owner TEXT, "
                "PRIMARY KEY (conversation_id, n))"
            )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(turns)")}
            if "owner" not in columns:  # a database of before owners: migrate
                self._db.execute("ALTER TABLE turns ADD COLUMN owner TEXT")
                self._db.execute(
                    "UPDATE turns SET owner = conversation_id WHERE conversation_id LIKE 'slack:%'"
                )

    def _owner_of(self, conversation_id: str) -> tuple[bool, str | None]:
        row = self._db.execute(
            "SELECT owner FROM turns WHERE conversation_id = ? LIMIT 1", (conversation_id,)
        ).fetchone()
        return (row is not None, row[0] if row is not None else None)

    def _check(self, conversation_id: str, owner: str) -> None:
        found, owned_by = self._owner_of(conversation_id)
        if found and owned_by != owner:
            raise ConversationNotFoundError(conversation_id)

    def exists(self, conversation_id: str, owner: str) -> bool:
        """Whether ``owner`` has a conversation of this id."""
        with self._lock:
            return self._owner_of(conversation_id) == (True, owner)

    def standalone_questions(
        self, conversation_id: str, owner: str, last: int | None = None
    ) -> list[str]:
        """The standalone questions of the conversation's turns, oldest first (what a
        follow-up is condensed against), only the ``last`` ones when given ([] for a
        new conversation); ConversationNotFoundError when the id is another owner's."""
        with self._lock:
            self._check(conversation_id, owner)
            rows = self._db.execute(
                "SELECT standalone FROM turns WHERE conversation_id = ? ORDER BY n DESC LIMIT ?",
                (conversation_id, -1 if last is None else last),
            ).fetchall()
        return [r[0] for r in reversed(rows)]

    def add(
        self, conversation_id: str, owner: str, question: str, standalone: str, answer: Answer
    ) -> None:
        """Append a turn to the conversation (its first turn creates it, owned by
        ``owner``); ConversationNotFoundError when the id is another owner's."""
        with self._lock, self._db:
            self._check(conversation_id, owner)
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM turns WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            self._db.execute(
                "INSERT INTO turns (conversation_id, n, question, standalone, answer, created, "
                "owner) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    count,
                    question,
                    standalone,
                    answer.model_dump_json(),
                    time.time(),
                    owner,
                ),
            )

    def turns(self, conversation_id: str, owner: str) -> list[dict[str, object]]:
        """The conversation's turns in order: question, standalone question, Answer JSON
        ([] when ``owner`` has no such conversation)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT n, question, standalone, answer, created FROM turns "
                "WHERE conversation_id = ? AND owner = ? ORDER BY n",
                (conversation_id, owner),
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

    def delete(self, conversation_id: str, owner: str) -> int:
        """Remove a conversation of ``owner``; returns how many turns it had (0 when
        ``owner`` has no such conversation)."""
        with self._lock, self._db:
            cursor = self._db.execute(
                "DELETE FROM turns WHERE conversation_id = ? AND owner = ?",
                (conversation_id, owner),
            )
        return cursor.rowcount

    def close(self) -> None:
        """Close the database."""
        self._db.close()
