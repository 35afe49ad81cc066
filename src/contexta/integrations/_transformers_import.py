"""The one place that imports `transformers`, so a missing install is a clear error, not a traceback.

`contexta.integrations.transformers` needs the framework at import (its callback subclasses
`transformers.TrainerCallback`); nothing in `import contexta` imports that module.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from contexta.errors import ConfigurationError

__all__ = ["import_transformers"]


def import_transformers() -> ModuleType:
    """The `transformers` module, or `ConfigurationError(dependency_missing)` saying how to install it."""
    try:
        return importlib.import_module("transformers")
    except ImportError as error:
        raise ConfigurationError(
            "contexta.integrations.transformers needs the package 'transformers', which is not installed: "
            "pip install 'contexta[transformers]' (or pip install transformers accelerate)",
            code="dependency_missing",
            details={"package": "transformers", "extra": "transformers", "reason": str(error)},
        ) from None
