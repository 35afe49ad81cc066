"""Who still captures an execution: a kernel lock held by each process that has the run open.

A run left `open` in the store by a process that died (SIGKILL, the OOM killer, a node lost) must be
closed by the next process that opens the workspace, and one still running must be left alone.
A pid cannot tell them apart: pids are reused, a container's main process is pid 1 in every
container, and a process in another pid namespace has a pid that means nothing here. A lock can:
each process capturing an execution holds a POSIX record lock (`fcntl`'s F_SETLK, via `lockf`) on
its own file under `<cache>/live/`, and the kernel releases it the moment the process ends, however
it ends, in whatever namespace it ran. A checker that can take every lock file of an execution
knows no owner is left.

A record lock, not `flock`: an `flock` belongs to the open file, which a forked child shares, so a
DataLoader worker forked a moment before its parent was killed held the parent's lock until it got
to close its copy (not yet scheduled: the next Contexta saw the dead run alive), and a child forked
by native code, which runs no Python at-fork handler, held it for as long as it lived. A record lock
belongs to the process that took it and no child inherits it. Its one trap, that closing any
descriptor of the file drops the process's lock, is why this process never opens its own lock
files to test them (`_own`).

The file stays while the run is open and is removed once the run's close is in the store; a process
that dies leaves its file behind, unlocked, for the checker to find and remove.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

__all__ = [
    "OwnerLock",
    "acquire_owner_lock",
    "locked_executions",
    "owners_alive",
    "remove_owner_locks",
    "remove_unplaced_files",
]

_SUFFIX = ".lock"
# Locks this process holds, so a forked child can close its copies of their descriptors.
_held: set[OwnerLock] = set()
# Names of the files this process has locked or is locking (final and `.unplaced`): a check here
# answers for them without opening them, since closing its descriptor would drop this process's lock.
# A name is added before its file exists and removed after the file is gone, so a file a check finds
# and does not see here is another process's. Names, not paths: a second Contexta may spell the
# workspace differently (a symlink), and each name is unique (execution, pid, random).
_own: set[str] = set()
_held_lock = threading.Lock()


class OwnerLock:
    """This process's claim on one execution: an open, locked file until `release()`."""

    def __init__(self, path: Path, descriptor: int):
        self.path = path
        self._descriptor: int | None = descriptor
        self._pid = os.getpid()

    def release(self) -> None:
        """The run's close is stored: remove the file, then let go of the lock (in that order, so a
        checker never takes the lock of a file that is about to be removed and calls a live run dead)."""
        with _held_lock:
            _held.discard(self)
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None or self._pid != os.getpid():
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(descriptor)
        with _held_lock:
            _own.discard(self.path.name)

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited descriptor (the lock is the parent's alone; this
        only keeps the child from carrying a descriptor it has no use for)."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            try:
                os.close(descriptor)
            except OSError:
                pass


_UNPLACED = ".unplaced"  # a lock file being made: locked first, then renamed to its name


def acquire_owner_lock(directory: Path, execution_id: str) -> OwnerLock | None:
    """Hold a lock that says this process captures `execution_id`; None where locks cannot be had
    (a read-only cache, a file system without locks): the checker then falls back to pid and host.

    The file is locked under a name no checker looks at and then renamed to its own, so a checker
    never finds a live owner's file unlocked."""
    name = f"{execution_id}.{os.getpid()}-{os.urandom(3).hex()}"
    unplaced, path = directory / f".{name}{_UNPLACED}", directory / f"{name}{_SUFFIX}"
    with _held_lock:
        _own.update((unplaced.name, path.name))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(unplaced, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        with _held_lock:
            _own.difference_update((unplaced.name, path.name))
        return None
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(unplaced, path)
    except OSError:
        try:
            unplaced.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(descriptor)
        with _held_lock:
            _own.difference_update((unplaced.name, path.name))
        return None
    lock = OwnerLock(path, descriptor)
    with _held_lock:
        _own.discard(unplaced.name)
        _held.add(lock)
    return lock


def _owned_here(path: Path) -> bool:
    with _held_lock:
        return path.name in _own


def _lock_files(directory: Path, execution_id: str) -> list[Path]:
    try:
        return sorted(directory.glob(f"{execution_id}.*{_SUFFIX}"))
    except OSError:
        return []


def owners_alive(directory: Path, execution_id: str, *, exclude_pid: int | None = None) -> bool | None:
    """True while some process holds a lock of `execution_id`; False when it left lock files and
    none is held (every owner ended); None when it left none to judge by. `exclude_pid` leaves out
    the files of one process (the one asking, whose own lock says nothing about the others)."""
    files = [
        path
        for path in _lock_files(directory, execution_id)
        if exclude_pid is None or not path.name.startswith(f"{execution_id}.{exclude_pid}-")
    ]
    if not files:
        return None
    for path in files:
        if _owned_here(path):
            return True  # this process holds it (and testing it would drop it)
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # its owner just closed the run and removed it
        except OSError:
            return True  # cannot tell: never call a run dead on a guess
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True  # held (EAGAIN or EACCES), or cannot tell
        finally:
            os.close(descriptor)  # taken only to test it: closing lets go at once
    return False


def locked_executions(directory: Path) -> set[str]:
    """The executions that have lock files in `directory` (held or left behind)."""
    try:
        names = [path.name for path in directory.glob(f"*{_SUFFIX}")]
    except OSError:
        return set()
    return {name.partition(".")[0] for name in names}


def remove_unplaced_files(directory: Path) -> None:
    """Remove lock files a process died making (locked, not yet renamed): no lock is held on them."""
    try:
        unplaced = list(directory.glob(f".*{_UNPLACED}"))
    except OSError:
        return
    for path in unplaced:
        if _owned_here(path):
            continue  # being made by this process
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # being made right now
        else:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        finally:
            os.close(descriptor)


def remove_owner_locks(directory: Path, execution_id: str) -> None:
    """Remove the lock files dead owners left behind (after their run was marked interrupted)."""
    for path in _lock_files(directory, execution_id):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def _after_fork_in_child() -> None:
    """The child holds none of its parent's locks: its checks may open (and close) the parent's files."""
    global _held_lock
    _held_lock = threading.Lock()
    for lock in list(_held):
        lock.forget_after_fork()
    _held.clear()
    _own.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
