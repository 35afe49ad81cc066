"""Who holds a store's write lock: the processes to name when a writer has waited too long.

SQLite does not say who holds a lock. In WAL mode the write lock is a POSIX lock on one byte of the
`-shm` file (byte 120, the first of its lock slots), so the kernel knows: Linux lists every POSIX
lock, with its pid, in /proc/locks. Asking with F_GETLK would mean opening the `-shm` file, and
closing that descriptor would drop every POSIX lock this process holds on it (SQLite's among them),
so the list is read instead. Elsewhere (no /proc) nothing is named.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["describe_processes", "write_lock_holders"]

_WAL_WRITE_LOCK_BYTE = 120  # WALINDEX_LOCK_OFFSET: the write lock is the first lock slot
_PROC_LOCKS = Path("/proc/locks")


def write_lock_holders(database: Path) -> list[int]:
    """The pids holding the WAL write lock of `database` (empty when none or when this cannot tell)."""
    try:
        status = os.stat(f"{database}-shm")
        table = _PROC_LOCKS.read_text()
    except OSError:
        return []
    device = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    holders: list[int] = []
    for line in table.splitlines():
        fields = line.split()
        if "->" in fields:  # a waiter on the lock above, not a holder
            continue
        try:
            kind, mode, pid, where, start, end = fields[1], fields[3], int(fields[4]), *fields[5:8]
            covers = int(start) <= _WAL_WRITE_LOCK_BYTE and (end == "EOF" or int(end) >= _WAL_WRITE_LOCK_BYTE)
        except (IndexError, ValueError):
            continue
        if kind == "POSIX" and mode == "WRITE" and where == device and covers and pid not in holders:
            holders.append(pid)
    return holders


def describe_processes(pids: list[int]) -> str:
    """`process 1234 (python train.py)`, for each pid; the command line when it can be read."""
    described = []
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            command = ""
        command = " ".join(command.split())  # `python -c` scripts hold newlines
        if len(command) > 80:
            command = command[:77] + "..."
        if pid == os.getpid():
            described.append(f"this process ({pid})")
        else:
            described.append(f"process {pid}" + (f" ({command})" if command else ""))
    return ", ".join(described)
