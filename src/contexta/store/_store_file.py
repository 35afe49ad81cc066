"""Whether a workspace has a store to read, asked before anything opens (or creates) one."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from contexta.errors import NotFoundError, StoreError

__all__ = ["require_store_file"]


def require_store_file(root: Path, store: Path) -> None:
    """`NotFoundError` (nothing created) when there is no store there yet; `StoreError` when this
    user may not look into the directories that would hold it."""
    try:
        store.stat()
        return
    except PermissionError:
        raise StoreError(
            f"cannot read {store}: permission denied (check the permissions of {_first_closed(store)})",
            code="store_not_readable",
            details={"path": str(store)},
        ) from None
    except OSError as error:
        if error.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise
    how = (
        f"capture a run into it first (with Contexta(workspace={str(root)!r}).run(...)), "
        "or point at an existing workspace"
    )
    where = f"no workspace at {root}" if not root.exists() else f"no Contexta store in {root} yet"
    detail = "" if not root.exists() else f" ({store} does not exist)"
    raise NotFoundError(f"{where}{detail}: {how}", code="workspace_not_found", details={"path": str(root)})


def _first_closed(path: Path) -> Path:
    """The outermost directory on the way to `path` that this user may not enter (else `path`)."""
    for directory in reversed(path.parents):
        if not os.access(directory, os.X_OK):
            return directory
    return path
