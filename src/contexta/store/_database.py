"""The SQLite file behind the canonical store: opening, checking, migrating, and short transactions.

Every thread gets its own connection (sqlite3 connections must not cross threads) and a forked child
opens its own (a parent's connection is never used after fork). WAL mode lets readers run while a
writer commits; writers serialise through `BEGIN IMMEDIATE` and a generous busy timeout, so several
processes can capture into one workspace without `database is locked` reaching the user.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from contexta.errors import StoreError
from contexta.store._schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

__all__ = ["StoreDatabase"]

BUSY_TIMEOUT_S = 60.0


class StoreDatabase:
    """One store file; `read()` and `transaction()` hand out this thread's connection."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._checked = False
        self._generation = 0

    # -- connections ---------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: drop the parent's connections without closing them
            self._local = threading.local()
            self._connections = []
            self._lock = threading.Lock()
            self._pid = os.getpid()
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None and getattr(self._local, "generation", -1) != self._generation:
            # close() was called (from some thread): each thread retires its own connection here.
            self._retire(connection)
            connection = None
        if connection is None:
            connection = self._open()
            self._local.connection = connection
            self._local.generation = self._generation
            with self._lock:
                self._connections.append(connection)
        return connection

    def _retire(self, connection: sqlite3.Connection) -> None:
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)
        self._local.connection = None
        try:
            connection.close()
        except sqlite3.Error:
            pass

    def _open(self) -> sqlite3.Connection:
        self._refuse_directory()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            if not self._checked:
                self._refuse_foreign_database(connection)  # before anything that writes to the file
            # Switching a new file to WAL takes an exclusive lock without consulting the busy handler,
            # so processes creating one store at the same moment must retry it themselves.
            self._until_unlocked(lambda: connection.execute("PRAGMA journal_mode=WAL"))
            connection.execute("PRAGMA synchronous=NORMAL")
            if not self._checked:
                self._migrate(connection)
                self._checked = True
        except sqlite3.DatabaseError as error:
            connection.close()
            raise StoreError(
                f"{self.path} is not a usable Contexta store ({error}); "
                "move it aside or run `contexta repair`",
                code="store_corrupt",
                details={"path": str(self.path)},
            ) from None
        except BaseException:
            connection.close()
            raise
        return connection

    def _refuse_directory(self) -> None:
        # Only a stat: opening and closing the database file ourselves would drop every POSIX lock this
        # process holds on it (fcntl locks belong to the process), and another process could then
        # checkpoint and delete the WAL under our live connections. A file that is not SQLite at all is
        # caught by SQLite itself ("file is not a database").
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a Contexta store", code="store_foreign")

    def _refuse_foreign_database(self, connection: sqlite3.Connection) -> None:
        # One read transaction, so the three answers come from one snapshot: read one by one, they can
        # straddle another process's migration (no id yet, then its tables) and look foreign.
        connection.execute("BEGIN")
        try:
            application_id = connection.execute("PRAGMA application_id").fetchone()[0]
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            (tables,) = connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()
        finally:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        if application_id not in (0, APPLICATION_ID):
            raise StoreError(
                f"{self.path} belongs to another application (application_id {application_id}); "
                "it is not a Contexta store",
                code="store_foreign",
                details={"path": str(self.path)},
            )
        if application_id == 0 and version == 0 and tables:
            raise StoreError(
                f"{self.path} is an SQLite database with tables of its own; it is not a Contexta store",
                code="store_foreign",
                details={"path": str(self.path)},
            )

    def _migrate(self, connection: sqlite3.Connection) -> None:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has store schema {version}, newer than this Contexta ({SCHEMA_VERSION}); "
                "upgrade contexta",
                code="store_version_unsupported",
            )
        if version == SCHEMA_VERSION:
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    connection.execute(statement)
            connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    # -- use -----------------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection for queries (WAL readers never wait for writers)."""
        connection = self._connection()
        try:
            yield connection
        except sqlite3.DatabaseError as error:
            raise StoreError(f"reading {self.path} failed: {error}", code="store_read_failed") from error

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction (`BEGIN IMMEDIATE`): committed on success, rolled back on error."""
        connection = self._connection()
        self._begin(connection)
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _begin(self, connection: sqlite3.Connection) -> None:
        self._until_unlocked(lambda: connection.execute("BEGIN IMMEDIATE"))

    def _until_unlocked(self, statement: Callable[[], object]) -> None:
        """Run `statement`, retrying while another connection holds the lock it needs.

        busy_timeout covers most waits; a locked error beyond it (or one SQLite raises without waiting)
        is retried here, never shown to the user, until a deadline far beyond any honest transaction."""
        deadline = time.monotonic() + 10 * BUSY_TIMEOUT_S
        pause = 0.001
        while True:
            try:
                statement()
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{self.path} stayed locked by another writer", code="store_locked"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)

    def close(self) -> None:
        """Release this store: the calling thread's connection closes now, other threads' on their next
        use; any later query reopens lazily."""
        if self._pid != os.getpid():
            return
        self._generation += 1
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            self._retire(connection)

    def close_all(self) -> None:
        """Close every connection of this process (at Contexta.close, when the writer has stopped)."""
        if self._pid != os.getpid():
            return
        self._generation += 1
        with self._lock:
            connections, self._connections = self._connections, []
        self._local = threading.local()
        if connections:
            # The last connection to close copies the write-ahead log into the database inside
            # sqlite3's close, which holds the GIL (tens of ms after a large run: a stalled event
            # loop); run as a statement, the same copy releases the GIL.
            try:
                connections[0].execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass
        for connection in connections:
            try:
                connection.close()
            except sqlite3.Error:
                pass
