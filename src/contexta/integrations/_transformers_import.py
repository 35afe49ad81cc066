"""The one place that imports `transformers`, so a missing install is a clear error, not a traceback.

`contexta.integrations.transformers` needs the framework at import (its callback subclasses
`transformers.TrainerCallback`); nothing in `import contexta` imports that module.
"""

from __future__ import annotations

from types import ModuleType

from contexta._optional import require_module

__all__ = ["import_transformers"]


def import_transformers() -> ModuleType:
    """The `transformers` module, or `MissingDependencyError(dependency_missing)` (also an ImportError)
    saying `pip install 'contexta[transformers]'`, as every optional feature of contexta does."""
    return require_module("transformers", "contexta.integrations.transformers", extra="transformers")
