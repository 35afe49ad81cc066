"""Contexta: local-first observability for ML systems."""

from typing import TYPE_CHECKING, Any

from contexta._workspace_reader import Workspace
from contexta.errors import ContextaError

if TYPE_CHECKING:
    from contexta._facade import Contexta
    from contexta.backup import backup_workspace, restore_workspace


def __getattr__(name: str) -> Any:
    # Capture (its queue, writer, sinks and hooks) is imported with the first use of `Contexta`, so a
    # command that only reads a workspace (`contexta runs`) never loads it.
    if name == "Contexta":
        from contexta._facade import Contexta

        return Contexta
    if name in ("backup_workspace", "restore_workspace"):  # they read the capture log: loaded on use
        from contexta import backup

        return getattr(backup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # Completion (IPython, notebooks) lists `Contexta` before its first use, too.
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"

__all__ = ["Contexta", "ContextaError", "Workspace", "__version__", "backup_workspace", "restore_workspace"]
