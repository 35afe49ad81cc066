"""Keeping `fork()` out of SQLite: a child never inherits a store connection in the middle of a statement.

SQLite keeps its lock bookkeeping per process, per database file (os_unix.c's inode list and WAL-index
node), and every connection of the process to that file shares it. A child forked while a parent
thread was inside a transaction inherits that bookkeeping saying "a connection of this process holds
the WAL write lock", with no thread left to release it: every new connection of the child gets
SQLITE_BUSY for ever (the POSIX lock itself is not inherited, so no other process sees it). Closing
the inherited connection would be worse: its rollback rewrites the WAL index the parent shares, under
the parent's live transaction. And a thread inside any SQLite call at fork may hold a mutex of the
connection that nothing in the child would ever unlock.

So every statement on a store connection runs inside a `ForkGate` section, and `os.fork()` (the
`before` hook) waits, at most `FORK_WAIT_S`, until no section is running and holds new ones back
until the fork is done. The child then finds every inherited connection idle: it closes them (their
close releases nothing the parent holds: POSIX locks belong to the process, and an idle connection has
no transaction to roll back), so SQLite frees the inherited bookkeeping and the child's own connections
take real locks of their own. Only if the wait ran out (a read that outlasts it) does the child keep
the inherited connections unclosed; a write that then finds the lock held inside this process is
refused at once (`store_locked_by_fork`), never retried for minutes.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["FORK_WAIT_S", "ForkGate", "forked_mid_statement"]

# How long a fork waits for statements in flight (commits take milliseconds; a large report's
# query may take seconds).
FORK_WAIT_S = 10.0

_GATES: weakref.WeakSet[ForkGate] = weakref.WeakSet()
_HELD: list[ForkGate] = []  # the gates the forking thread holds between `before` and `after`
_forked_mid_statement = False


def forked_mid_statement() -> bool:
    """True in a process forked while a store connection of its parent was mid-statement (the fork
    did not wait long enough): lock state SQLite keeps in-process may be held by no thread at all."""
    return _forked_mid_statement


class ForkGate:
    """Sections that use SQLite, and the fork that waits for them to end."""

    def __init__(self, after_fork_in_child: Callable[[bool], None]):
        # Called in the child, with whether every section had ended at the fork, before any thread of
        # the child can enter a section again.
        self._after_fork_in_child = after_fork_in_child
        # Re-entrant: a signal handler may run in the forking thread while `_hold` holds it.
        self._condition = threading.Condition(threading.RLock())
        self._active = 0
        self._forking = False
        self._forking_thread: int | None = None
        self._depth = threading.local()  # this thread's nested sections (a read inside a transaction)
        self._quiet = True
        _GATES.add(self)

    @contextmanager
    def section(self) -> Iterator[None]:
        """Run SQLite calls; a fork in another thread waits for the section to end."""
        depth: int = getattr(self._depth, "value", 0)
        if depth == 0:
            with self._condition:
                # The forking thread itself never waits (a signal handler running in it mid-fork).
                while self._forking and self._forking_thread != threading.get_ident():
                    self._condition.wait()
                self._active += 1
        self._depth.value = depth + 1
        try:
            yield
        finally:
            self._depth.value = depth
            if depth == 0:
                with self._condition:
                    self._active -= 1
                    if self._forking and self._active == 0:
                        self._condition.notify_all()

    # -- the fork ------------------------------------------------------------------------------

    def hold_for_fork(self, deadline: float) -> None:
        """Wait for the sections in flight (not the forking thread's own) to end; keep new ones out.
        The condition's lock stays held across the fork, so no thread is inside it at the fork."""
        own = 1 if getattr(self._depth, "value", 0) else 0  # _active counts threads, not depth
        self._condition.acquire()
        self._forking = True
        self._forking_thread = threading.get_ident()
        while self._active > own:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._condition.wait(remaining)
        self._quiet = self._active == 0

    def release_in_parent(self) -> None:
        self._forking = False
        self._forking_thread = None
        self._condition.notify_all()
        self._condition.release()

    def reset_in_child(self) -> bool:
        """The child's only thread is the one that forked: the others' sections are gone with them."""
        quiet = self._quiet
        self._active = 1 if getattr(self._depth, "value", 0) else 0
        try:
            self._after_fork_in_child(quiet)
        except Exception:  # never leave the gate shut: the child's threads would wait on it for ever
            return False
        return quiet

    def release_in_child(self) -> None:
        self._forking = False
        self._forking_thread = None
        self._condition.notify_all()
        self._condition.release()


def _before_fork() -> None:
    deadline = time.monotonic() + FORK_WAIT_S
    for gate in list(_GATES):
        gate.hold_for_fork(deadline)
        _HELD.append(gate)


def _after_fork_in_parent() -> None:
    for gate in _HELD:
        gate.release_in_parent()
    _HELD.clear()


def _after_fork_in_child() -> None:
    global _forked_mid_statement
    # Every store lets go of its inherited connections before any is opened again: SQLite's
    # bookkeeping of a file is freed only when the last inherited connection to it is closed.
    for gate in _HELD:
        if not gate.reset_in_child():
            _forked_mid_statement = True
    for gate in _HELD:
        gate.release_in_child()
    _HELD.clear()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)
