"""The conversation store: each conversation bound to its owner, another owner's
indistinguishable from a missing one; databases of before owners are migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rag.errors import ConversationNotFoundError
from rag.query.conversation import LOCAL_OWNER, ConversationStore
from rag.types import Answer

ANSWER = Answer(answer="It was the H800 [1].", citations=[], abstained=False)


def test_a_conversation_is_visible_to_its_owner_only(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite")
    store.add("c1", "key:a", "Which chip?", "Which chip?", ANSWER)
    store.add("c1", "key:a", "And the cost?", "And the cost? (chip)", ANSWER)
    assert store.exists("c1", "key:a") and not store.exists("c1", "key:b")
    assert store.standalone_questions("c1", "key:a") == ["Which chip?", "And the cost? (chip)"]
    assert [t["n"] for t in store.turns("c1", "key:a")] == [0, 1]
    # another owner: reading gives what a missing id gives, appending is refused
    assert store.turns("c1", "key:b") == store.turns("nope", "key:b") == []
    with pytest.raises(ConversationNotFoundError) as foreign:
        store.standalone_questions("c1", "key:b")
    assert str(foreign.value) == "no conversation 'c1'"
    with pytest.raises(ConversationNotFoundError):
        store.add("c1", "key:b", "Mine now?", "Mine now?", ANSWER)
    assert store.delete("c1", "key:b") == 0
    assert len(store.turns("c1", "key:a")) == 2  # nothing of the owner's was touched
    assert store.standalone_questions("new", "key:b") == []  # a new id is anyone's to start
    assert store.delete("c1", "key:a") == 2 and not store.exists("c1", "key:a")


def test_a_database_of_before_owners_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE turns (conversation_id TEXT, n INTEGER, question TEXT, standalone TEXT, "
        "answer TEXT, created REAL, PRIMARY KEY (conversation_id, n))"
    )
    for cid in ("0123abcd", "slack:C7:1700000000.000100"):
        db.execute(
            "INSERT INTO turns VALUES (?, 0, 'q', 'q', ?, 0)", (cid, ANSWER.model_dump_json())
        )
    db.commit()
    db.close()
    store = ConversationStore(path)
    # an API conversation of before owners belongs to nobody: no caller can read it
    for owner in (LOCAL_OWNER, "key:a", ""):
        assert store.turns("0123abcd", owner) == []
        with pytest.raises(ConversationNotFoundError):
            store.add("0123abcd", owner, "q", "q", ANSWER)
    # a Slack thread stays its own
    slack = "slack:C7:1700000000.000100"
    assert len(store.turns(slack, slack)) == 1
    store.close()
    assert len(ConversationStore(path).turns(slack, slack)) == 1  # migrated once
