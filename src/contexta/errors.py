"""The ContextaError family: every failure a caller can act on carries a stable code.

Codes are part of the public contract (tests and users match on them); messages say what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ArtifactStorageError",
    "CaptureError",
    "CaptureWarning",
    "ClosedScopeError",
    "ConfigurationError",
    "ConflictError",
    "ContextaError",
    "LifecycleError",
    "MissingDependencyError",
    "NotFoundError",
    "StoreError",
    "ValidationError",
]


class ContextaError(Exception):
    """Base of every error Contexta raises on purpose; `code` is stable, `message` is for people."""

    default_code = "contexta_error"

    def __init__(self, message: str, *, code: str | None = None, details: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments need help to survive pickling (multiprocessing sends errors back).
        return (_rebuild_error, (type(self), self.message, self.code, self.details))


def _rebuild_error(
    cls: type[ContextaError], message: str, code: str, details: dict[str, Any]
) -> ContextaError:
    return cls(message, code=code, details=details)


class ConfigurationError(ContextaError):
    """A configuration value, key or environment override is not usable."""

    default_code = "configuration_invalid"


class ValidationError(ContextaError, ValueError):
    """Input given to a capture call or a contract model breaks a rule of the contract."""

    default_code = "validation_failed"


class LifecycleError(ContextaError):
    """A call came at the wrong moment: capture outside a run, use after close."""

    default_code = "lifecycle_invalid"


class ClosedScopeError(LifecycleError):
    """The scope this call was made on has already been closed."""

    default_code = "scope_closed"


class NotFoundError(ContextaError, LookupError):
    """A referenced run, stage, artifact or other subject does not exist."""

    default_code = "not_found"


class ConflictError(ContextaError):
    """The call would clash with something that already exists (a duplicate open name)."""

    default_code = "conflict"


class CaptureError(ContextaError):
    """The capture pipeline could not do what was asked (flush timed out, sinks failed)."""

    default_code = "capture_failed"


class StoreError(ContextaError):
    """The canonical store cannot be read or written."""

    default_code = "store_failed"


class ArtifactStorageError(StoreError):
    """The object storage that keeps artifact copies (`artifacts.url = "s3://..."`) refused or failed
    a request. `code` says which, so a caller can tell what to fix: `artifact_bucket_missing`,
    `artifact_credentials_refused`, `artifact_endpoint_unreachable`, `artifact_digest_mismatch` (the
    stored bytes are not the registered ones), else `artifact_storage_failed`."""

    default_code = "artifact_storage_failed"


class MissingDependencyError(ContextaError, ImportError):
    """An optional feature needs a package that is not installed (exporting to Parquet needs
    pyarrow); the message names the package and the extra that brings it. Also an `ImportError`, so
    code that already guards an optional import catches it."""

    default_code = "dependency_missing"


class CaptureWarning(UserWarning):
    """Issued when captured data could not be delivered (a sink failed, records were dropped), or
    when capture meets something the user should know now (the same run open in two processes)."""
