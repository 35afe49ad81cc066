"""Contexta: local-first observability for ML systems."""

from typing import TYPE_CHECKING, Any

from contexta._workspace_reader import Workspace
from contexta.errors import ContextaError

if TYPE_CHECKING:
    from contexta._backup import BackupResult, RestoreResult, backup_workspace, restore_workspace
    from contexta._facade import Contexta
    from contexta._sync import SyncReport, sync_workspace


_BACKUP_NAMES = frozenset(("BackupResult", "RestoreResult", "backup_workspace", "restore_workspace"))


def __getattr__(name: str) -> Any:
    # Capture (its queue, writer, sinks and hooks) is imported with the first use of `Contexta`, so a
    # command that only reads a workspace (`contexta runs`) never loads it.
    if name == "Contexta":
        from contexta._facade import Contexta

        return Contexta
    if name in _BACKUP_NAMES:  # they read the capture log: loaded on use
        from contexta import _backup

        return getattr(_backup, name)
    if name in ("SyncReport", "sync_workspace"):  # capture's log reader and the store's writer
        from contexta import _sync

        return getattr(_sync, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # Completion (IPython, notebooks) lists `Contexta` before its first use, too.
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"

__all__ = [
    "BackupResult",
    "Contexta",
    "ContextaError",
    "RestoreResult",
    "SyncReport",
    "Workspace",
    "__version__",
    "backup_workspace",
    "restore_workspace",
    "sync_workspace",
]
