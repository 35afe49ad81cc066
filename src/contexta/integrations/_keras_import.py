"""Why Keras could not be imported, as a `MissingDependencyError` (also an `ImportError`, like every
optional feature's) that says what to install or set.

Keras 3 imports its backend when `keras` itself is imported, so "keras is missing" and "keras is
here but its backend is not" (TensorFlow is the default, and often absent) need different advice.
"""

from __future__ import annotations

import os

from contexta.errors import MissingDependencyError

__all__ = ["keras_import_error", "keras_version_error"]

_INSTALL = "pip install 'contexta[keras]' (or pip install 'keras>=3')"


def keras_import_error(error: ImportError) -> MissingDependencyError:
    """The error to raise when `import keras` failed with `error`."""
    if error.name == "keras":
        return MissingDependencyError(
            f"contexta.integrations.keras needs Keras 3, which is not installed: {_INSTALL}, "
            "with a backend (torch, jax or tensorflow)",
            code="dependency_missing",
            details={"package": "keras", "extra": "keras", "reason": str(error)},
        )
    backend = os.environ.get("KERAS_BACKEND") or "tensorflow (Keras's default)"
    return MissingDependencyError(
        f"Keras is installed but its backend {backend} could not be imported ({error}); install it, "
        "or set KERAS_BACKEND=torch (or jax) in the environment before keras is first imported",
        code="keras_backend_missing",
        details={"package": error.name or "", "backend": backend, "reason": str(error)},
    )


def keras_version_error(version: str) -> MissingDependencyError | None:
    """The error to raise for a Keras older than 3 (its callbacks differ), or None when it fits."""
    major = version.partition(".")[0]
    if major.isdigit() and int(major) >= 3:
        return None
    return MissingDependencyError(
        f"contexta.integrations.keras needs Keras 3 or later, found {version}: {_INSTALL}",
        code="dependency_version_unsupported",
        details={"package": "keras", "version": version, "extra": "keras"},
    )
