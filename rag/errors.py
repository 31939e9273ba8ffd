"""Every error the engine raises on purpose, in one tree.

    RagError                    base: a message meant for the user
    ├── ConfigError             a setting has a bad value
    ├── QuestionError           an empty or oversized question
    ├── CorpusError             the corpus folder is missing or unusable
    ├── IndexMissingError       no published index yet (run `rag index`)
    ├── IndexMismatchError      the index was built with another embedding model
    ├── IndexCorruptError       a file of the published index is missing or garbled
    ├── StoreUnavailableError   the vector store (a Chroma server) cannot be reached
    ├── IndexLockedError        another indexer holds the lock on the index folder
    └── CitationError           a citation does not match its source file

The CLI turns them into a message and an exit code (``exit_code``); the API into
problem+json (api/problems.py).
"""


class RagError(Exception):
    """Base class: ``str(err)`` is a complete sentence for the user."""

    exit_code = 1


class ConfigError(RagError):
    """A setting has a bad value (the message names it)."""

    exit_code = 2


class QuestionError(RagError):
    """An empty or oversized question, or a bad ``top_k``."""

    exit_code = 2


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
    what its format says): the message names the file; ``rag index --rebuild`` makes a
    new version."""

    exit_code = 3


class StoreUnavailableError(RagError):
    """The vector store cannot be reached or refused a request (a Chroma server that
    is down, or answers with an error): the message names the server."""

    exit_code = 6


class IndexLockedError(RagError):
    """Another indexer holds the index folder's writer lock."""

    exit_code = 4


class CitationError(RagError):
    """A citation does not match its source file."""

    exit_code = 1
