"""ChatService: questions in, verified Answers out, with conversations kept in SQLite.

A follow-up ("And how much did it cost?") is condensed into a standalone question by
carrying over the names, model names and numbers of the conversation's earlier
questions, which works with no LLM.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.answer import Answer, Answerer, ExtractiveAnswerer, message, pieces
from rag.citations import SourceTexts, verify
from rag.config import Settings
from rag.corpus import detect_language
from rag.embedding import count_tokens, load_embedding, model_id
from rag.errors import ConversationNotFoundError, IndexCorruptError, QuestionError
from rag.indexer import LoadedIndex, current_version, open_index
from rag.llm import LLMAnswerer, build_llm, prompt
from rag.retriever import Retriever, SearchResult

log = logging.getLogger("rag.chat")

_ENTITY = re.compile(r"\b(?:[A-Z][\w-]*|\w*\d\w*)\b")
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


def entities(question: str) -> list[str]:
    """Names (capitalised Latin words), model names and numbers of a question."""
    found = [m.group() for m in _ENTITY.finditer(question)]
    return list(dict.fromkeys(e for e in found if e not in _QUESTION_WORDS))


def condense(question: str, history: list[str]) -> str:
    """A standalone question: a short follow-up that names nothing of its own
    inherits the entities of the latest earlier question that has some."""
    if not history:
        return question
    own = entities(question)
    if own and len(question.split()) > 3:
        return question
    if len(question.split()) > _FOLLOW_UP_MAX_WORDS:
        return question
    for earlier in reversed(history):
        carried = [e for e in entities(earlier) if e not in own]
        if carried:
            return f"{question} ({' '.join(carried)})"
    return question


def validate_question(question: str, max_chars: int) -> str:
    stripped = question.strip()
    if not stripped:
        raise QuestionError("the question is empty; ask something about the corpus")
    if len(stripped) > max_chars:
        raise QuestionError(
            f"the question is {len(stripped)} characters long, over the limit of {max_chars}"
        )
    return stripped


LOCAL_OWNER = "local"
"""Who owns the conversations of the command line, and of a service without API keys
when no browser session says otherwise."""


class ConversationStore:
    """Turns of each conversation, in SQLite, each conversation bound to its ``owner``
    (an opaque string the edge derives: an API key's HMAC, a Slack thread, a browser
    session, ``LOCAL_OWNER``). Every read and write names the owner, and a conversation
    of another owner behaves exactly like one that does not exist. Rows stored before
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
        """The standalone questions so far, oldest first, only the ``last`` ones when
        given ([] for a new conversation); ConversationNotFoundError when the id is
        another owner's."""
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
        """Append a turn (the first one creates the conversation, owned by ``owner``)."""
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
        """Remove a conversation of ``owner``; returns how many turns it had."""
        with self._lock, self._db:
            cursor = self._db.execute(
                "DELETE FROM turns WHERE conversation_id = ? AND owner = ?",
                (conversation_id, owner),
            )
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()


@dataclass
class Turn:
    answer: Answer
    search: SearchResult
    standalone: str


@dataclass
class Engine:
    """What one published index version needs to answer: opened together."""

    index: LoadedIndex
    retriever: Retriever
    answerer: Answerer
    users: int = 0
    """Requests answering with this engine right now (ChatService.engine_in_use)."""
    retired: bool = False
    """A newer version is served: close once the last user is done."""


Listener = Callable[[str, object], None]
"""Receives ``("citations", list[Citation])`` and ``("delta", str)`` while a question is
answered; the final Answer is what ``respond`` returns."""


class ChatService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedding = load_embedding(settings.embedding)
        self.model = model_id(self.embedding)
        self.llm = build_llm(settings)
        self.sources = SourceTexts(settings.corpus_dir)
        self.conversations = ConversationStore(settings.data_dir / "conversations.sqlite")
        self._lock = threading.Lock()
        self._users = threading.Lock()
        self.problem: str | None = None
        """Why a newer published version is not served (None when all is well)."""
        self._failed: str | None = None
        self.engine = self._open()

    def _open(self) -> Engine:
        index = open_index(self.settings, expected_model=self.model)
        retriever = Retriever(index, self.embedding, self.settings)
        extractive = ExtractiveAnswerer(index, self.settings, retriever.scorer)
        answerer: Answerer = extractive
        if self.llm is not None:
            answerer = LLMAnswerer(self.llm, extractive, retriever.embed_query, self.settings)
        return Engine(index, retriever, answerer)

    def _condense(self, question: str, history: list[str]) -> str:
        """The standalone question: by the LLM when one is configured (in the
        question's language), else, or when it fails, by carrying entities over."""
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
        if not standalone or len(standalone) > self.settings.max_question_chars:
            return fallback
        return standalone

    def validate(self, question: str, history: list[str] | None = None) -> str:
        """The question stripped, when it and the explicit ``history`` are within the
        limits: characters, then tokens of the embedding model (what a question
        costs). QuestionError naming the limit and the count otherwise."""
        question = validate_question(question, self.settings.max_question_chars)
        tokens = count_tokens(self.embedding, question)
        if tokens > self.settings.max_question_tokens:
            raise QuestionError(
                f"the question is {tokens} tokens long (tokens of the embedding model), over "
                f"the limit of {self.settings.max_question_tokens}; ask a shorter question"
            )
        if history:
            total = sum(count_tokens(self.embedding, h) for h in history)
            if total > self.settings.max_history_tokens:
                raise QuestionError(
                    f"the earlier user messages are {total} tokens long together (tokens of "
                    f"the embedding model), over the limit of "
                    f"{self.settings.max_history_tokens}; send fewer earlier messages"
                )
        return question

    def reload_if_changed(self) -> bool:
        """Switch to a newly published index version; True when it switched. When
        CURRENT or the new version is damaged, the loaded version keeps serving and
        ``problem`` says what is wrong (logged once); a damaged version is not retried
        until CURRENT names another."""
        try:
            if not self._changed():
                return False
            with self._lock:
                if not self._changed():
                    return False
                version = current_version(self.settings.index_dir)
                try:
                    engine = self._open()
                except IndexCorruptError:
                    self._failed = version
                    raise
                self.problem = self._failed = None
                with self._users:
                    old, self.engine = self.engine, engine
                    old.retired = True
                    idle = old.users == 0
                if idle:
                    old.index.close()
                return True
        except IndexCorruptError as exc:
            if str(exc) != self.problem:
                log.error("still serving index version %s: %s", self.engine.index.version, exc)
            self.problem = str(exc)
        return False

    def _changed(self) -> bool:
        version = current_version(self.settings.index_dir)
        if version is None:
            raise IndexCorruptError(f"{self.settings.index_dir / 'CURRENT'} is missing")
        if version == self.engine.index.version:
            self.problem = None
            return False
        return version != self._failed

    @contextlib.contextmanager
    def engine_in_use(self) -> Iterator[Engine]:
        """The engine of the newest published version, kept open until the block ends:
        a switch to a newer version closes the old engine (its Chroma client, files,
        threads, memory maps) when its last user leaves, never under a request."""
        self.reload_if_changed()
        with self._users:
            engine = self.engine
            engine.users += 1
        try:
            yield engine
        finally:
            with self._users:
                engine.users -= 1
                idle = engine.retired and engine.users == 0
            if idle:
                engine.index.close()

    def ask(
        self,
        question: str,
        conversation_id: str | None = None,
        top_k: int | None = None,
        owner: str = LOCAL_OWNER,
    ) -> Answer:
        """Answer a question (a follow-up when ``conversation_id`` names a conversation
        of ``owner``)."""
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
    ) -> Turn:
        """Like ``ask``, also returning what retrieval found (see ``_respond``)."""
        with self.engine_in_use() as engine:
            return self._respond(
                engine, question, conversation_id, top_k, history, listener, owner, cancelled
            )

    def _respond(
        self,
        engine: Engine,
        question: str,
        conversation_id: str | None = None,
        top_k: int | None = None,
        history: list[str] | None = None,
        listener: Listener | None = None,
        owner: str = LOCAL_OWNER,
        cancelled: threading.Event | None = None,
    ) -> Turn:
        """Like ``ask``, also returning what retrieval found.

        ``history`` gives the earlier user messages explicitly (the OpenAI-compatible
        route, whose clients send the whole conversation); such turns are not stored.
        ``listener`` receives the citations and the answer text in pieces as soon as
        they are known (with an LLM: the passages given to it, then its checked
        stream); joined, the pieces equal the final answer unless a citation failed
        its check at the end (then the returned Answer is the truth).
        ``owner`` owns the conversation: another owner's ``conversation_id`` raises
        ConversationNotFoundError before any work, as a missing one would at the edge.
        ``cancelled`` (set when the client went away) stops the work at the LLM's next
        delta with AnswerCancelled, closing its stream; nothing is stored then. When the
        turn cannot be stored (a full disk), the answer still comes back, with the
        warning ``conversation_not_saved`` (logged).
        """
        started = time.perf_counter()
        question = self.validate(question, history)
        if top_k is not None and top_k <= 0:
            raise QuestionError(f"top_k must be > 0, got {top_k}")
        remember = history is None
        turns = self.settings.history_turns
        if history is None:
            history = (
                self.conversations.standalone_questions(conversation_id, owner, last=turns)
                if conversation_id
                else []
            )
        else:  # only the latest turns: condensing each against the ones before is O(n^2)
            history = history[-turns:]
            history = [condense(h, history[:i]) for i, h in enumerate(history)]
        standalone = self._condense(question, history)
        if count_tokens(self.embedding, standalone) > self.settings.max_question_tokens:
            standalone = question  # what was carried over made it too long to embed
        detected = detect_language(question)
        known = detected if detected != "und" else None
        search = engine.retriever.search(standalone, top_k, lang=known)
        lang = known or "en"
        t_answer = time.perf_counter()
        streamed: list[str] = []
        on_delta = None
        if listener is not None and isinstance(engine.answerer, LLMAnswerer):
            listener("citations", engine.answerer.passage_citations(search))

            def on_delta(piece: str) -> None:
                streamed.append(piece)
                listener("delta", piece)

        draft = engine.answerer.answer(standalone, search, lang, on_delta, cancelled)
        documents = engine.index.manifest["documents"]
        checked = verify(
            draft.text,
            draft.citations,
            self.sources,
            renumber=draft.mode != "llm",
            sha256_of=lambda source: documents.get(source, {}).get("sha256"),
        )
        answer_ms = (time.perf_counter() - t_answer) * 1000
        answer = Answer(
            answer=checked.text,
            citations=checked.citations,
            abstained=draft.abstained,
            mode=draft.mode,
            warnings=draft.warnings + checked.warnings,
            conversation_id=conversation_id or uuid.uuid4().hex,
            timings_ms={
                "embed": round(search.timings_ms["embed"], 2),
                "retrieve": round(search.timings_ms["retrieve"], 2),
                "answer": round(answer_ms, 2),
                "total": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        if not answer.abstained and not answer.citations:
            # every citation failed verification: say so rather than answer unsupported
            answer = answer.model_copy(
                update={"abstained": True, "answer": message("abstain", lang)}
            )
        if listener is not None and not streamed:
            listener("citations", answer.citations)
            for piece in pieces(answer.answer):
                listener("delta", piece)
        assert answer.conversation_id is not None
        if remember:
            try:
                self.conversations.add(answer.conversation_id, owner, question, standalone, answer)
            except (sqlite3.Error, OSError) as exc:  # a full disk, a broken database
                log.error("turn of conversation %s not saved: %s", answer.conversation_id, exc)
                warnings = [*answer.warnings, "conversation_not_saved"]
                answer = answer.model_copy(update={"warnings": warnings})
        return Turn(answer, search, standalone)

    def close(self) -> None:
        self.conversations.close()
        self.engine.index.close()
