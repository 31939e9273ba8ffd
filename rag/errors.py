"""Every error the engine raises on purpose, in one tree.

    RagError                    base: a message meant for the user
    ├── ConfigError             a setting has a bad value
    ├── QuestionError           an empty or oversized question
    ├── ConversationNotFoundError  no such conversation of this caller
    ├── CorpusError             the corpus folder is missing or unusable
    ├── IndexMissingError       no published index yet (run `rag index`)
    ├── IndexMismatchError      the index was built with another embedding model
    ├── IndexCorruptError       the published index is damaged (a file missing or garbled,
    │                           CURRENT naming no version, parts that disagree)
    ├── StoreUnavailableError   the vector store (a Chroma server) cannot be reached
    ├── IndexLockedError        another indexer holds the lock on the index folder
    ├── DiskFullError           a write failed for lack of space (the folder named)
    ├── PortInUseError          ``rag serve``'s address and port are taken
    └── CitationError           a citation does not match its source file

The CLI turns them into a message and an exit code (``exit_code``); the API into
problem+json (api/problems.py).
"""


def describe(exc: BaseException, limit: int = 200) -> str:
    """``Type: message`` of a foreign exception on one line, at most ``limit``
    characters: how the messages of this tree quote what a library raised (a
    message of the CLI is one line)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RagError(Exception):
    """Base class: ``str(err)`` is a complete sentence for the user."""

    exit_code = 1


class ConfigError(RagError):
    """A setting has a bad value (the message names it)."""

    exit_code = 2


class QuestionError(RagError):
    """An empty or oversized question, or a bad ``top_k``."""

    exit_code = 2


class ConversationNotFoundError(RagError):
    """No conversation of this id belongs to the caller: it does not exist, or it is
    someone else's (the message is the same either way)."""

    exit_code = 2

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"no conversation '{conversation_id}'")
        self.conversation_id = conversation_id


class CorpusError(RagError):
    """The corpus folder is missing or is not a folder."""

    exit_code = 2


class IndexMissingError(RagError):
    """Nothing is published in the index folder: run ``rag index``."""

    exit_code = 3


class IndexMismatchError(RagError):
    """The index was built with another embedding model than the settings name."""

    exit_code = 3


class IndexCorruptError(RagError):
    """A file of the published index version cannot be read (missing, truncated, not
    what its format says), ``CURRENT`` names no version, or the parts disagree (a
    file's count, the vector store's, against the manifest's): the message names the
    file; ``rag index --rebuild`` makes a new version."""

    exit_code = 3


class StoreUnavailableError(RagError):
    """The vector store cannot be reached or refused a request (a Chroma server that
    is down, or answers with an error): the message names the server."""

    exit_code = 6


class IndexLockedError(RagError):
    """Another indexer holds the index folder's writer lock."""

    exit_code = 4


class DiskFullError(RagError):
    """A build could not write for lack of space; the message names the folder and
    what is free. The partial build is already removed."""

    exit_code = 7


class PortInUseError(RagError):
    """``rag serve`` cannot listen: another process (often another ``rag serve``)
    holds the address and port; the message names them and how to choose another."""

    exit_code = 8


class CitationError(RagError):
    """A citation does not match its source file."""

    exit_code = 1
