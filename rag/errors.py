"""Every error the engine raises on purpose, in one tree.

    RagError                    base: a message meant for the user
    ├── ConfigError             a setting has a bad value
    ├── QuestionError           an empty or oversized question
    ├── ConversationNotFoundError  no such conversation of this caller
    ├── CorpusError             the corpus folder is missing or unusable
    ├── IndexMissingError       no published index yet (run `rag index`)
    ├── IndexMismatchError      the index was built with another embedding model
    ├── IndexCorruptError       the published index is damaged (a file missing or unreadable)
    ├── IndexLockedError        another indexer holds the lock on the index folder
    ├── DiskFullError           a write failed for lack of space (the folder named)
    ├── CitationError           a citation does not match its source file
    └── AnswerCancelled         the client went away; its answer was abandoned

The CLI turns them into a message and an exit code; the API into problem+json.
"""


class RagError(Exception):
    """Base class: ``str(err)`` is a complete sentence for the user."""

    exit_code = 1


class ConfigError(RagError):
    exit_code = 2


class QuestionError(RagError):
    exit_code = 2


class ConversationNotFoundError(RagError):
    """No conversation of this id belongs to the caller: it does not exist, or it is
    someone else's (the message is the same either way)."""

    exit_code = 2

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"no conversation '{conversation_id}'")
        self.conversation_id = conversation_id


class CorpusError(RagError):
    exit_code = 2


class IndexMissingError(RagError):
    exit_code = 3


class IndexMismatchError(RagError):
    exit_code = 3


class IndexCorruptError(RagError):
    """A file of the published version is missing, truncated or unreadable, ``CURRENT``
    names no version, or the parts disagree (the vector store's count against the
    manifest's). The message names the file; ``rag index --rebuild`` repairs it."""

    exit_code = 6


class IndexLockedError(RagError):
    exit_code = 4


class DiskFullError(RagError):
    """A build could not write for lack of space; the message names the folder and
    what is free. The partial build is already removed."""

    exit_code = 7


class CitationError(RagError):
    exit_code = 1


class AnswerCancelled(RagError):
    """Raised in the answering thread once the caller's ``cancelled`` event is set
    (the HTTP client disconnected): the LLM stream is closed, nothing is stored."""

    exit_code = 130
