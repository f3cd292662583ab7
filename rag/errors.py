"""User-facing errors: one root, a few branches grouped by what the caller does.

    RagError                    anything the user can fix or should be told about
    ├── ConfigError             bad setting, unknown backend/encoding/prompt, bad template
    ├── IngestError             a path that cannot be read at all (single files are warnings)
    ├── IndexStoreError         missing, corrupt or too-new index; database busy
    ├── QueryError              a query with nothing searchable in it
    ├── BackendError            the model endpoint failed (``retryable`` says if trying again may help)
    └── ValidationFailed        output that does not fit its schema, even after the repair retry

The CLI prints ``str(err)`` on one line and exits with ``err.exit_code``; only bugs show tracebacks.
"""

from __future__ import annotations


class RagError(Exception):
    """Root of every error we expect and explain to the user."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.context = context

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(RagError):
    exit_code = 2


class IngestError(RagError):
    pass


class IndexStoreError(RagError):
    pass


class QueryError(RagError):
    exit_code = 2


class BackendError(RagError):
    """The model endpoint failed. ``retryable`` is the retry policy's verdict."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None, **context: object) -> None:
        super().__init__(message, **context)
        self.retryable = retryable
        self.status = status


class ValidationFailed(RagError):
    pass
