"""Why a document was refused or a store operation failed; every message names the file and the reason."""

from curbside.errors import CurbsideError


class RetrievalError(CurbsideError):
    """Base class for guideline-store errors."""


class IngestError(RetrievalError, ValueError):
    """A document cannot be ingested; the store is left unchanged."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


class UnsupportedFormatError(IngestError):
    """The file type is not one we read (PDF, DOCX, HTML, Markdown, plain text)."""


class CorruptDocumentError(IngestError):
    """The file claims a format but cannot be parsed as it."""


class EncryptedDocumentError(IngestError):
    """A password-protected PDF (or DOCX) that we cannot open."""


class EmptyDocumentError(IngestError):
    """The document has no extractable text (e.g. a scanned PDF without OCR)."""


class DocumentTooLargeError(IngestError):
    """The file exceeds the configured size limit."""


class UnsafeNameError(IngestError):
    """The file name has path components, traversal or control characters."""


class UndecodableTextError(IngestError):
    """A text file that is not valid UTF-8 (or UTF-16 with a byte-order mark)."""


class InvalidTopicError(IngestError):
    """The topic is not one of the tags in spec/topics.md."""


class DocumentNotFoundError(RetrievalError, KeyError):
    """No document with this doc_id in the store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "document not found"
