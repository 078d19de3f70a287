"""Domain errors. Only the API layer turns them into HTTP responses.

    CiteqaError
     ├── CorpusError           the corpus folder is missing, empty or unreadable
     ├── IndexNotBuiltError    no index where the settings point
     ├── IndexMismatchError    the index was built with other settings or another format
     ├── IndexCorruptError     the index files disagree with their manifest
     ├── ModelLoadError        an embedding model could not be loaded
     ├── VectorStoreError      a vector store (Milvus) cannot be reached, opened or used
     ├── BudgetExceededError   a request's work outlasted its time budget
     └── InputError            a request asks for something invalid (field, message)
          └── UnknownDocumentError   no document with that id
               └── DocumentGoneError   that document was removed from the corpus

Every message says what to do about it.
"""

from __future__ import annotations

__all__ = [
    "BudgetExceededError",
    "CiteqaError",
    "ConfigError",
    "CorpusError",
    "DocumentGoneError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotBuiltError",
    "InputError",
    "ModelLoadError",
    "UnknownDocumentError",
    "VectorStoreError",
]


class CiteqaError(Exception):
    """Base class of every error citeqa raises on purpose."""


class CorpusError(CiteqaError):
    """The corpus cannot be read."""


class IndexNotBuiltError(CiteqaError):
    """There is no built index at the configured location."""


class IndexMismatchError(CiteqaError):
    """The built index does not match the current configuration."""


class IndexCorruptError(CiteqaError):
    """The index files are damaged or disagree with the manifest."""


class ModelLoadError(CiteqaError):
    """An embedding model could not be loaded."""


class ConfigError(CiteqaError):
    """A configuration file (such as the tuned constants) is missing or malformed."""


class VectorStoreError(CiteqaError):
    """A Milvus store (a server by URI, or a Milvus Lite data directory) cannot be reached,
    is held by another process, or lacks the collection asked for."""


class InputError(CiteqaError):
    """A request is invalid; ``field`` names the part to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class UnknownDocumentError(InputError):
    """No document has this id."""

    def __init__(self, doc_id: str, field: str = "doc_id") -> None:
        super().__init__(
            field, f"no document with id {doc_id!r}; GET /documents lists the ids that exist."
        )
        self.doc_id = doc_id


class DocumentGoneError(UnknownDocumentError):
    """A document that was in the corpus and was removed: its links answer 410 Gone."""

    def __init__(self, doc_id: str, removed_at: str) -> None:
        InputError.__init__(
            self,
            "doc_id",
            f"document {doc_id!r} was removed from the corpus on {removed_at}; "
            "its citations no longer resolve.",
        )
        self.doc_id = doc_id


class BudgetExceededError(CiteqaError):
    """A request's work took longer than its time budget (answered 503)."""
