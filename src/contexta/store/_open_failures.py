"""What to tell someone whose store would not open: damaged, not theirs to write, or not readable.

Only a file SQLite finds damaged deserves "run `contexta repair`": repair moves the store aside and
rebuilds it from the capture log, which is the wrong advice for an intact store that merely sits on a
read-only mount or belongs to another user (and would fail there anyway). Permission and read-only
failures say what is in the way and what to do instead.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from contexta.errors import StoreError

__all__ = ["open_failure", "read_obstacle", "write_obstacle"]

_DAMAGED = ("SQLITE_NOTADB", "SQLITE_CORRUPT")
_NO_ACCESS = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")


def _error_name(error: sqlite3.Error) -> str:
    return getattr(error, "sqlite_errorname", "") or ""


def _on_read_only_mount(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def write_obstacle(path: Path) -> str | None:
    """Why this process cannot write the store at `path` (its file, or the files SQLite keeps beside
    it), or None when nothing visible is in the way."""
    directory = path.parent
    if _on_read_only_mount(directory):
        return f"{directory} is on a read-only file system"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"this user (uid {os.getuid()}) may not create files in {directory}"
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = candidate.stat().st_mode
        except OSError:
            continue
        if not os.access(candidate, os.W_OK):
            return f"{candidate} is not writable by this user (mode {stat.filemode(mode)})"
    return None


def read_obstacle(path: Path) -> str | None:
    """Why this process cannot read the store at `path`, or None when nothing visible is in the way."""
    if not os.access(path.parent, os.X_OK):
        return f"this user (uid {os.getuid()}) may not enter {path.parent}"
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if candidate.exists() and not os.access(candidate, os.R_OK):
            mode = stat.filemode(candidate.stat().st_mode)
            return f"{candidate} is not readable by this user (mode {mode})"
    return None


def open_failure(path: Path, error: sqlite3.Error, *, read_only: bool) -> StoreError:
    """The `StoreError` for a store that SQLite would not open (or check, or migrate)."""
    name = _error_name(error)
    details = {"path": str(path), "sqlite_error": name or type(error).__name__}
    if name.startswith(_DAMAGED) or (not name and "not a database" in str(error)):
        return StoreError(
            f"{path} is not a usable Contexta store ({error}); move it aside or run `contexta repair`",
            code="store_corrupt",
            details=details,
        )
    if name.startswith(_NO_ACCESS):
        if read_only:
            return _unreadable(path, error, details)
        why = write_obstacle(path) or str(error)
        return StoreError(
            f"cannot write to {path}: {why}; open it read-only (the `contexta` read commands do) or "
            "check permissions",
            code="store_not_writable",
            details=details,
        )
    return StoreError(f"cannot open {path}: {error}", code="store_open_failed", details=details)


def _unreadable(path: Path, error: sqlite3.Error, details: dict[str, str]) -> StoreError:
    why = read_obstacle(path)
    if why is not None:
        advice = "check permissions"
    elif Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists():
        why = (
            f"its write-ahead log ({path}-wal) has no index (-shm) beside it, and a reader needs write "
            f"access to {path.parent} to build one"
        )
        advice = "open the workspace once where it is writable (any capture into it) to settle the log"
    else:
        why, advice = str(error), "check permissions"
    return StoreError(f"cannot read {path}: {why}; {advice}", code="store_not_readable", details=details)
