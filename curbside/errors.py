"""Exceptions shared by every part of Curbside; each names the offending value."""


class CurbsideError(Exception):
    """Base class for errors a user or admin can act on; the CLI prints them without a traceback."""


class ModelNotFoundError(CurbsideError, FileNotFoundError):
    """The model name or path does not resolve to a loadable model."""


class ModelIntegrityError(CurbsideError):
    """A downloaded model package did not match its pinned sha256."""
