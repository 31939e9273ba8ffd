"""ChatService: the pipeline (rag/query/pipeline.py) with conversations kept in SQLite
and the index version switched when a new one is published, without a restart."""

from __future__ import annotations

import threading
import time
import uuid

from rag.config import Settings
from rag.index.reader import current_version, load_embedding, model_id
from rag.query.citations import SourceTexts
from rag.query.conversation import ConversationStore
from rag.query.llm import build_llm
from rag.query.pipeline import Listener, Pipeline, Turn, validate_question
from rag.types import Answer


class ChatService:
    """Questions in, verified Answers out, in conversations.

    ``settings`` are read once. Opening needs a published index built with the
    configured embedding model (IndexMissingError, IndexMismatchError otherwise; also
    IndexCorruptError, StoreUnavailableError). The embedding model, the LLM client and
    the cache of source texts live as long as the service; the ``pipeline`` is
    replaced when another index version is published. Safe to share between threads.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedding = load_embedding(settings.embedding)
        self.model = model_id(self.embedding)
        self.llm = build_llm(settings)
        self.sources = SourceTexts(settings.corpus_dir)
        self.conversations = ConversationStore(settings.data_dir / "conversations.sqlite")
        self._lock = threading.Lock()
        self.pipeline = self._open()

    def _open(self) -> Pipeline:
        return Pipeline.open(self.settings, self.embedding, self.llm, self.sources)

    def reload_if_changed(self) -> bool:
        """Switch to a newly published index version; True when it switched."""
        if current_version(self.settings.index_dir) == self.pipeline.index.version:
            return False
        with self._lock:
            if current_version(self.settings.index_dir) != self.pipeline.index.version:
                self.pipeline = self._open()
                return True
        return False

    def ask(
        self, question: str, conversation_id: str | None = None, top_k: int | None = None
    ) -> Answer:
        """Answer a question (a follow-up when ``conversation_id`` names a conversation;
        a new conversation otherwise, whose id the Answer carries)."""
        return self.respond(question, conversation_id, top_k).answer

    def respond(
        self,
        question: str,
        conversation_id: str | None = None,
        top_k: int | None = None,
        history: list[str] | None = None,
        listener: Listener | None = None,
    ) -> Turn:
        """Like ``ask``, also returning what retrieval found and the standalone
        question.

        ``history`` gives the earlier user messages explicitly (the OpenAI-compatible
        route, whose clients send the whole conversation); such turns are not stored.
        ``listener`` receives the citations and the answer text in pieces as soon as
        they are known (``Pipeline.answer_search``). Raises QuestionError for an empty
        or oversized question or ``top_k <= 0``.
        """
        started = time.perf_counter()
        question = validate_question(question, self.settings.max_question_chars)
        self.reload_if_changed()
        pipeline = self.pipeline
        remember = history is None
        if history is None:
            history = (
                self.conversations.standalone_questions(conversation_id) if conversation_id else []
            )
        else:
            history = pipeline.condenser.followups.standalone_history(history)
        turn = pipeline.answer(
            question,
            history=history,
            top_k=top_k,
            conversation_id=conversation_id or uuid.uuid4().hex,
            listener=listener,
            started=started,
        )
        if remember:
            conversation = turn.answer.conversation_id
            assert conversation is not None
            self.conversations.add(conversation, question, turn.standalone, turn.answer)
        return turn

    def close(self) -> None:
        """Close the conversation store."""
        self.conversations.close()
