"""Optional packages (pyarrow, pandas, polars) imported when a feature first needs them.

Capture and `import contexta` never need them, so they are not dependencies: they come with the
`export` extra. A feature asks here for the module it needs and gets it, or a `MissingDependencyError`
saying which package is missing and how to install it, rather than an ImportError traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from contexta.errors import MissingDependencyError

__all__ = ["require_module"]


def require_module(
    module: str, feature: str, *, package: str | None = None, extra: str = "export"
) -> ModuleType:
    """The module `module`, imported; `MissingDependencyError(dependency_missing)` naming `package`
    (default: the module's top-level name) and the extra `extra` when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        name = package or module.partition(".")[0]
        raise MissingDependencyError(
            f"{feature} needs the package {name!r}, which is not installed: "
            f"pip install 'contexta[{extra}]' (or pip install {name})",
            code="dependency_missing",
            details={"package": name, "extra": extra, "reason": str(error)},
        ) from None
