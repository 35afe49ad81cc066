"""How a query reads the store: inside one read transaction, so its several SELECTs see one state of
the store even while a writer commits (WAL keeps the reader's snapshot).

A caller that asks several questions (a report, a dashboard page) opens `consistent_read(db)` around
them: every query on `db` from that thread then joins the block's transaction instead of starting its
own, so the answers agree with one another. A joined query never asks the store for its connection
again: a read-only store may replace a connection whose picture went stale between two reads (see
`store/_read_only.py`), which must not happen to the one the block is reading through.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from contexta.store import StoreDatabase

__all__ = ["consistent_read", "reading"]

# Per thread: id(store) -> the connection of the read transaction a block holds open on it.
_open = threading.local()


def _open_reads() -> dict[int, sqlite3.Connection]:
    reads: dict[int, sqlite3.Connection] | None = getattr(_open, "reads", None)
    if reads is None:
        reads = _open.reads = {}
    return reads


@contextmanager
def reading(db: StoreDatabase) -> Iterator[sqlite3.Connection]:
    """This thread's connection inside a read transaction: the open one of an enclosing
    `consistent_read` (or `reading`) on `db`, else a new one that ends with the block."""
    reads = _open_reads()
    joined = reads.get(id(db))
    if joined is not None:
        yield joined
        return
    with db.read() as connection:
        if connection.in_transaction:  # already inside the caller's transaction: it is consistent
            yield connection
            return
        connection.execute("BEGIN")
        reads[id(db)] = connection
        try:
            yield connection
        finally:
            del reads[id(db)]
            _end_read(connection)


def _end_read(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:  # a failed statement may already have ended it
        connection.execute("COMMIT")


@contextmanager
def consistent_read(db: StoreDatabase) -> Iterator[None]:
    """A block whose queries on `db` (from this thread) all answer from one state of the store.

    Use it around several questions that must agree, such as a run's stages and its diagnostics while
    the run is still being captured; each query alone is already consistent. Writes committed while the
    block is open are seen after it ends. Nested blocks join the outermost one.
    """
    with reading(db):
        yield
