"""ChatService: the pipeline (rag/query/pipeline.py) with conversations kept in SQLite
and the index version switched when a new one is published, without a restart.

The pipeline of the previous version is closed (its Chroma client, files, threads,
memory maps) once no request uses it any more; a damaged new version, or garbage in
CURRENT, leaves the loaded version serving and says why (``problem``).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

from rag.config import Settings
from rag.errors import IndexCorruptError
from rag.index.reader import current_version, load_embedding, model_id
from rag.query.citations import SourceTexts
from rag.query.conversation import LOCAL_OWNER, ConversationStore
from rag.query.llm import build_llm
from rag.query.pipeline import Listener, Pipeline, Turn
from rag.types import Answer, WarningCode, warning

log = logging.getLogger("rag.chat")


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
        self._using = threading.Lock()
        self._users: dict[Pipeline, int] = {}
        """Requests answering with each pipeline right now (``pipeline_in_use``)."""
        self._retired: set[Pipeline] = set()
        """Pipelines of versions no longer served, closed when their last user leaves."""
        self.problem: str | None = None
        """Why a newer published version is not served (None when all is well)."""
        self._failed: str | None = None
        self.pipeline = self._open()

    def _open(self) -> Pipeline:
        return Pipeline.open(self.settings, self.embedding, self.llm, self.sources)

    def reload_if_changed(self) -> bool:
        """Switch to a newly published index version; True when it switched. When
        CURRENT or the new version is damaged, the loaded version keeps serving and
        ``problem`` says what is wrong (logged once); a damaged version is not retried
        until CURRENT names another. The old pipeline is closed once no request uses
        it."""
        try:
            if not self._changed():
                return False
            with self._lock:
                if not self._changed():
                    return False
                version = current_version(self.settings.index_dir)
                try:
                    pipeline = self._open()
                except IndexCorruptError:
                    self._failed = version
                    raise
                self.problem = self._failed = None
                with self._using:
                    old, self.pipeline = self.pipeline, pipeline
                    idle = not self._users.get(old)
                    if not idle:
                        self._retired.add(old)
                if idle:
                    old.index.close()
                return True
        except IndexCorruptError as exc:
            if str(exc) != self.problem:
                log.error("still serving index version %s: %s", self.pipeline.index.version, exc)
            self.problem = str(exc)
        return False

    def _changed(self) -> bool:
        """Whether CURRENT names a version other than the loaded one that has not
        already failed to open (IndexCorruptError when it names none)."""
        version = current_version(self.settings.index_dir)
        if version is None:
            raise IndexCorruptError(
                f"{self.settings.index_dir / 'CURRENT'} is missing; run `rag index`"
            )
        if version == self.pipeline.index.version:
            self.problem = None
            return False
        return version != self._failed

    @contextlib.contextmanager
    def pipeline_in_use(self) -> Iterator[Pipeline]:
        """The pipeline of the newest published version, kept open until the block
        ends: a switch to a newer version closes the old pipeline's index (its Chroma
        client, files, threads, memory maps) when its last user leaves, never under a
        request."""
        self.reload_if_changed()
        with self._using:
            pipeline = self.pipeline
            self._users[pipeline] = self._users.get(pipeline, 0) + 1
        try:
            yield pipeline
        finally:
            with self._using:
                self._users[pipeline] -= 1
                closing = False
                if not self._users[pipeline]:
                    del self._users[pipeline]
                    closing = pipeline in self._retired
                    self._retired.discard(pipeline)
            if closing:
                pipeline.index.close()

    @property
    def busy(self) -> int:
        """Requests answering right now, on any version."""
        with self._using:
            return sum(self._users.values())

    def validate(self, question: str, history: list[str] | None = None) -> str:
        """The question stripped, when it and the explicit ``history`` are within the
        limits (``Pipeline.validate``, ``Pipeline.validate_history``); QuestionError
        naming the limit and the count otherwise. Cheap: no model runs."""
        pipeline = self.pipeline
        question = pipeline.validate(question)
        pipeline.validate_history(history or [])
        return question

    def ask(
        self,
        question: str,
        conversation_id: str | None = None,
        top_k: int | None = None,
        owner: str = LOCAL_OWNER,
    ) -> Answer:
        """Answer a question (a follow-up when ``conversation_id`` names a conversation
        of ``owner``; a new conversation otherwise, whose id the Answer carries)."""
        return self.respond(question, conversation_id, top_k, owner=owner).answer

    def respond(
        self,
        question: str,
        conversation_id: str | None = None,
        top_k: int | None = None,
        history: list[str] | None = None,
        listener: Listener | None = None,
        owner: str = LOCAL_OWNER,
        cancelled: threading.Event | None = None,
        instructions: str | None = None,
    ) -> Turn:
        """Like ``ask``, also returning what retrieval found and the standalone
        question.

        ``history`` gives the earlier user messages explicitly (the OpenAI-compatible
        route, whose clients send the whole conversation); such turns are not stored,
        and they are limited to ``max_history_tokens`` together. Only the latest
        ``history_turns`` earlier questions are condensed against. ``listener``
        receives the citations and the answer text in pieces as soon as they are known
        (``Pipeline.answer_search``). ``owner`` owns the conversation: another owner's
        ``conversation_id`` raises ConversationNotFoundError before any work, as a
        missing one would at the edge. ``cancelled`` (set when the client went away)
        stops an LLM's answer at its next delta with AnswerCancelled, closing its
        stream; nothing is stored then. A turn that cannot be stored (a full disk)
        still returns its answer, with the warning ``conversation_not_saved``.
        ``instructions`` (an OpenAI ``system`` message) go to the LLM after the
        service's own rules (``LLMAnswerer.messages``); without an LLM they do nothing.

        Raises QuestionError for an empty or oversized question or history, or
        ``top_k <= 0``."""
        started = time.perf_counter()
        turns = self.settings.history_turns
        with self.pipeline_in_use() as pipeline:
            remember = history is None
            if history is None:
                history = (
                    self.conversations.standalone_questions(conversation_id, owner, last=turns)
                    if conversation_id
                    else []
                )
            else:  # only the latest turns: condensing each against the ones before is O(n^2)
                pipeline.validate_history(history)
                history = history[-turns:]
                history = pipeline.condenser.followups.standalone_history(history)
            turn = pipeline.answer(
                question,
                history=history,
                top_k=top_k,
                conversation_id=conversation_id or uuid.uuid4().hex,
                listener=listener,
                started=started,
                cancelled=cancelled,
                instructions=instructions,
            )
        if remember:
            turn = self._store(turn, question, owner)
        return turn

    def _store(self, turn: Turn, question: str, owner: str) -> Turn:
        """Append ``turn`` to its conversation; when that fails (a full disk, a broken
        database) the turn comes back with the warning ``conversation_not_saved``."""
        conversation = turn.answer.conversation_id
        assert conversation is not None
        try:
            self.conversations.add(
                conversation, owner, question.strip(), turn.standalone, turn.answer
            )
        except (sqlite3.Error, OSError) as exc:
            log.error("turn of conversation %s not saved: %s", conversation, exc)
            warnings = [*turn.answer.warnings, warning(WarningCode.CONVERSATION_NOT_SAVED)]
            answer = turn.answer.model_copy(update={"warnings": warnings})
            return replace(turn, answer=answer)
        return turn

    def close(self) -> None:
        """Close the conversation store and the served index."""
        self.conversations.close()
        self.pipeline.index.close()
