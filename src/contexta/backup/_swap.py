"""Putting a restored workspace in place of the old one, atomically where the kernel allows.

Linux's `renameat2(RENAME_EXCHANGE)` swaps two directories in one step: at every instant the
workspace path names either the old workspace or the restored one, never nothing (a process that
opened the workspace at that moment would otherwise create a new, empty one there). Where the call
is missing (another OS, an old kernel or libc, a file system without it), two renames do the same
with a moment between them, and the second is undone if it fails. Either way the old workspace is
kept beside the new one, under a `.before-restore-<time>` name: nothing captured is ever deleted by
a restore; the user removes it once satisfied.
"""

from __future__ import annotations

import ctypes
import errno
import os
import time
from pathlib import Path

from contexta.backup._files import sync_directory

__all__ = ["put_in_place"]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# The kernel, the libc or the file system does not offer the exchange: fall back to two renames.
_NO_EXCHANGE = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step; False when this system cannot (nothing was changed then)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    number = ctypes.get_errno()
    if number in _NO_EXCHANGE:
        return False
    raise OSError(number, os.strerror(number), str(second))


def _aside_name(target: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate = target.with_name(f"{target.name}.before-restore-{stamp}")
    number = 1
    while candidate.exists():
        number += 1
        candidate = target.with_name(f"{target.name}.before-restore-{stamp}-{number}")
    return candidate


def put_in_place(staging: Path, target: Path) -> Path | None:
    """Make `staging` (a sibling of `target`) the directory at `target`. The old `target`, when it held
    anything, is kept at the returned path; None when there was nothing to keep."""
    parent = target.parent
    if not target.exists():
        os.rename(staging, target)
        sync_directory(parent)
        return None
    if not any(target.iterdir()):
        target.rmdir()  # an empty directory: nothing to keep
        os.rename(staging, target)
        sync_directory(parent)
        return None
    aside = _aside_name(target)
    if _exchange(staging, target):
        os.rename(staging, aside)  # `staging` now names the old workspace
    else:
        os.rename(target, aside)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(aside, target)
            raise
    sync_directory(parent)
    return aside
