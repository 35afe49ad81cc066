"""How a reader opens the store without writing anything, and notices a writer that changed it.

A WAL database is read through its write-ahead log and the log's index (`-wal`, `-shm`). When both
exist (a writer has the store open, or one died), `mode=ro` reads them as SQLite does for any
reader, with its locks, even where this user may not write them. When there is no `-wal`, no
connection has the store open and the file alone holds every commit; but `mode=ro` would then have
to create the two files (refused on a read-only mount or directory, and left behind, owned by the
reader, where it is allowed). So the file is read `immutable=1`: without locks and without creating
anything. A writer may still start meanwhile; it writes into a new `-wal` and leaves the file alone
until it checkpoints. The reader compares the file's identity before each read (and reopens when a
`-wal` appeared or the file changed) and after it (a read the file changed under is refused, to be
run again, rather than answered from a torn state).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileState", "read_only_uri"]


@dataclass(frozen=True, slots=True)
class FileState:
    """What says that the store file (and whether a write-ahead log exists) is as it was."""

    device: int
    inode: int
    size: int
    modified_ns: int
    has_log: bool

    @classmethod
    def of(cls, path: Path) -> FileState | None:
        try:
            status = os.stat(path)
        except OSError:
            return None
        return cls(
            status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, os.path.exists(f"{path}-wal")
        )

    def same_file(self, other: FileState | None) -> bool:
        """The file itself is unchanged (a log that appeared meanwhile does not change what was read)."""
        return other is not None and (self.device, self.inode, self.size, self.modified_ns) == (
            other.device,
            other.inode,
            other.size,
            other.modified_ns,
        )


def read_only_uri(path: Path) -> tuple[str, bool]:
    """The SQLite URI that opens `path` for reading without writing beside it, and whether it is
    `immutable` (no `-wal`: nothing else has the store open)."""
    immutable = not os.path.exists(f"{path}-wal")
    uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    return (uri + "&immutable=1", True) if immutable else (uri, False)
