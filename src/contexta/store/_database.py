"""The SQLite file behind the canonical store: opening, checking, migrating, and short transactions.

Every thread gets its own connection (sqlite3 connections must not cross threads) and a forked child
opens its own (a parent's connection is never used after fork). WAL mode lets readers run while a
writer commits; writers serialise through `BEGIN IMMEDIATE` and a bounded wait for the write lock, so
several processes can capture into one workspace without `database is locked` reaching the user, and a
lock held too long is reported with the process that holds it. Every SQLite call runs inside a fork
gate section (`_fork_guard.py`), so a forked child never inherits a connection mid-statement. A store
opened `read_only` never writes: not the file, not the files beside it (`_read_only.py`).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from contexta.errors import CaptureWarning, StoreError
from contexta.store._fork_guard import ForkGate, forked_mid_statement
from contexta.store._lock_holders import describe_processes, write_lock_holders
from contexta.store._open_failures import open_failure, read_obstacle
from contexta.store._read_only import FileState, read_only_uri
from contexta.store._schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

__all__ = ["StoreDatabase"]

# How long a read waits inside SQLite for a lock (rare in WAL mode: another process recovering the log).
BUSY_TIMEOUT_S = 60.0
# How long a writer waits for another writer's lock before its transaction is refused (`store_locked`,
# naming the holder); a warning names the holder once it has waited LOCK_WARN_S. Eight processes
# capturing into one store wait milliseconds; only a stuck or very long transaction reaches these.
LOCK_WAIT_S = 60.0
LOCK_WARN_S = 10.0
# Each attempt to take the write lock waits at most this long inside SQLite, then leaves the fork
# gate (a fork never waits for a writer that is only queueing for the lock) and tries again.
LOCK_ATTEMPT_S = 0.1

# What `follow_moved_file` found at the path: nothing (a new store was created there), a store another
# process created after the same deletion, or some other file.
RECREATED, RECREATED_ELSEWHERE, REPLACED = "recreated", "recreated_elsewhere", "replaced"
# Errors that mean the file at the path is not a store this process can use (not: it is busy).
_UNUSABLE = ("store_corrupt", "store_foreign", "store_version_unsupported")


class StoreDatabase:
    """One store file; `read()` and `transaction()` hand out this thread's connection."""

    def __init__(self, path: Path, *, read_only: bool = False):
        self.path = path
        self.read_only = read_only
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._checked = False
        self._generation = 0
        self._gate = ForkGate(self._after_fork_in_child)
        # The schema version this process migrated the file from, when it did (for `contexta migrate`).
        self.migrated_from: int | None = None

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
        if self.read_only:
            return self._open_read_only()
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
            raise open_failure(self.path, error, read_only=False) from None
        except BaseException:
            connection.close()
            raise
        return connection

    # -- reading without writing -----------------------------------------------------------------

    def _open_read_only(self) -> sqlite3.Connection:
        """A connection that cannot write, and creates nothing beside the file (see `_read_only.py`)."""
        self._refuse_directory()
        try:
            os.stat(self.path)
        except FileNotFoundError:
            raise StoreError(f"there is no Contexta store at {self.path}", code="store_missing") from None
        except PermissionError:
            raise StoreError(
                f"cannot read {self.path}: {read_obstacle(self.path) or 'permission denied'}; "
                "check permissions",
                code="store_not_readable",
            ) from None
        state = FileState.of(self.path)
        uri, immutable = read_only_uri(self.path)
        try:
            connection = sqlite3.connect(
                uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.DatabaseError as error:
            raise open_failure(self.path, error, read_only=True) from None
        try:
            if not self._checked:
                self._refuse_foreign_database(connection)
                self._refuse_old_schema(connection)
                self._checked = True
        except sqlite3.DatabaseError as error:
            connection.close()
            raise open_failure(self.path, error, read_only=True) from None
        except BaseException:
            connection.close()
            raise
        self._local.file_state = state if immutable else None
        return connection

    def _schema_version(self, connection: sqlite3.Connection) -> int:
        """The file's schema version; `store_version_unsupported` when this Contexta is older."""
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has store schema {version}, newer than this Contexta ({SCHEMA_VERSION}); "
                "upgrade contexta",
                code="store_version_unsupported",
            )
        return version

    def _refuse_old_schema(self, connection: sqlite3.Connection) -> None:
        version = self._schema_version(connection)
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has store schema {version}, older than this Contexta's ({SCHEMA_VERSION}), "
                "and is open read-only; migrate it once with write access: `contexta migrate "
                "--workspace <workspace>`, or open it for capture (Contexta(workspace=...))",
                code="store_needs_migration",
                details={"path": str(self.path), "version": version},
            )

    def _stale_read_only_connection(self) -> bool:
        """An immutable connection whose file changed, or beside which a write-ahead log appeared: its
        picture of the store is out of date (see `_read_only.py`)."""
        opened: FileState | None = getattr(self._local, "file_state", None)
        if opened is None:
            return False
        now = FileState.of(self.path)
        return not opened.same_file(now) or (now is not None and now.has_log)

    def _refuse_torn_read(self) -> None:
        opened: FileState | None = getattr(self._local, "file_state", None)
        if opened is not None and not opened.same_file(FileState.of(self.path)):
            self._local.file_state = FileState(0, 0, -1, 0, False)  # reopen on the next read
            raise StoreError(
                f"{self.path} was written while it was being read (without locks: nothing could be "
                "created beside it); run the command again",
                code="store_changed_while_read",
                details={"path": str(self.path)},
            )

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
        version = self._schema_version(connection)
        if version == SCHEMA_VERSION:
            return
        # Another process may be migrating the same file right now: wait for it like any writer.
        self._until_unlocked(lambda: connection.execute("BEGIN IMMEDIATE"))
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    connection.execute(statement)
            connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            connection.execute("COMMIT")
            if version < SCHEMA_VERSION:
                self.migrated_from = int(version)
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    # -- use -----------------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection for queries (WAL readers never wait for writers)."""
        with self._gate.section():
            if self.read_only and self._stale_read_only_connection():
                stale: sqlite3.Connection | None = getattr(self._local, "connection", None)
                if stale is not None:
                    self._retire(stale)
            connection = self._connection()
            try:
                yield connection
            except sqlite3.DatabaseError as error:
                if self.read_only:
                    self._refuse_torn_read()
                raise StoreError(f"reading {self.path} failed: {error}", code="store_read_failed") from error
            if self.read_only:
                self._refuse_torn_read()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction (`BEGIN IMMEDIATE`): committed on success, rolled back on error.
        Waits at most LOCK_WAIT_S for another writer's lock, then raises `store_locked`."""
        if self.read_only:
            raise StoreError(
                f"{self.path} is open read-only; writing needs a Contexta(workspace=...)",
                code="store_read_only",
            )
        wait = _LockWait(self.path)
        while True:
            with self._gate.section():
                connection = self._connection()
                if self._try_begin(connection):
                    try:
                        yield connection
                    except BaseException:
                        connection.execute("ROLLBACK")
                        raise
                    connection.execute("COMMIT")
                    return
            wait.pause()  # outside the gate: a fork need not wait for a writer queueing for the lock

    def _try_begin(self, connection: sqlite3.Connection) -> bool:
        """`BEGIN IMMEDIATE`, waiting at most LOCK_ATTEMPT_S inside SQLite; False if still locked."""
        connection.execute(f"PRAGMA busy_timeout={int(LOCK_ATTEMPT_S * 1000)}")
        try:
            connection.execute("BEGIN IMMEDIATE")
            return True
        except sqlite3.OperationalError as error:
            if not _is_lock_error(error):
                raise
            return False
        finally:
            connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")

    def _until_unlocked(self, statement: Callable[[], object]) -> None:
        """Run `statement`, retrying while another connection holds the lock it needs (busy_timeout
        covers most waits; some locks SQLite refuses without waiting), at most LOCK_WAIT_S."""
        wait = _LockWait(self.path)
        while True:
            try:
                statement()
                return
            except sqlite3.OperationalError as error:
                if not _is_lock_error(error):
                    raise
            wait.pause()

    # -- the file moved under a live store (deleted, renamed away, replaced) ----------------------
    # A connection keeps using the file it opened: after `rm contexta.db*` or a `mv`, SQLite goes on
    # committing into a file no reader will open, and every commit succeeds. The store sink asks
    # before and after each batch, which costs a stat.

    def file_moved(self) -> bool:
        """True when the path no longer names the file this thread's connection has open (deleted,
        renamed away, or replaced by another file): what it commits would reach no reader."""
        with self._gate.section():  # SQLite calls run in a fork gate section (see _fork_guard.py)
            connection = self._connection()
            known = getattr(self._local, "file_identity", None)
            if known is None or known[0] is not connection:
                # First asked since this connection opened: the files it opened are the ones there now.
                self._note_file_identity(connection)
                # Opened after the store file was deleted, it created an empty file, which this process
                # (having checked the schema once) would not migrate: follow it like a deletion.
                return bool(connection.execute("PRAGMA user_version").fetchone()[0] == 0)
            return bool(known[1] != _identity_at(self.path))

    def _note_file_identity(self, connection: sqlite3.Connection) -> None:
        wal = _identity_at(Path(f"{self.path}-wal"))
        self._local.file_identity = (connection, _identity_at(self.path), wal)

    def follow_moved_file(self) -> str:
        """Let go of the moved file and open the store the path names now; returns `RECREATED` (there
        was none: a new, empty store was created), `RECREATED_ELSEWHERE` (another process created it
        after the same deletion) or `REPLACED` (some other store was put there). Raises StoreError
        (`store_replaced_unusable`) when the file there is not a usable Contexta store.

        Creation is serialised by an `flock` on a lock file beside the store, so processes that see
        the same deletion create one store, not one each; the one that creates it writes the new
        file's identity into the lock file, for the others to tell it from a replacement."""
        known = getattr(self._local, "file_identity", None)
        old_wal = None if known is None else known[2]
        self.close()  # every thread lets go of the moved file (others on their next use)
        with self._gate.section():
            return self._follow_moved_file(old_wal)

    def _follow_moved_file(self, old_wal: tuple[int, int] | None) -> str:
        self._checked = False  # whatever is there now is checked and migrated before use
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        lock = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            found = _identity_at(self.path)
            wal = _identity_at(Path(f"{self.path}-wal"))
            if wal is not None and (found is None or wal == old_wal):
                # The write-ahead log there belongs to the file that is gone: SQLite would replay its
                # pages over the file at the path (a new one, or the one put in its place).
                self._set_aside_write_ahead_log()
            noted = os.pread(lock, 64, 0).decode("ascii", "replace").split()
            connection = self._open_moved_to()
            self._note_file_identity(connection)
            identity = self._local.file_identity[1]
            (empty,) = connection.execute("SELECT NOT EXISTS (SELECT 1 FROM projects)").fetchone()
            if found is None or empty:
                outcome = RECREATED
                if identity is not None:
                    os.ftruncate(lock, 0)
                    os.pwrite(lock, f"{identity[0]} {identity[1]}".encode("ascii"), 0)
            elif identity is not None and noted == [str(part) for part in identity]:
                outcome = RECREATED_ELSEWHERE
            else:
                outcome = REPLACED
        finally:
            os.close(lock)
        return outcome

    def _open_moved_to(self) -> sqlite3.Connection:
        try:
            return self._connection()
        except StoreError as error:
            if error.code not in _UNUSABLE:
                raise
            raise StoreError(
                f"the store file {self.path} was replaced while this process captured, by a file that "
                f"is not a usable Contexta store ({error.message}); what this process captures is "
                "parked in the outbox until the file is fixed: move it aside (a new store is then "
                "created) or run `contexta repair`, then `contexta replay`",
                code="store_replaced_unusable",
                details={"path": str(self.path)},
            ) from None

    def _set_aside_write_ahead_log(self) -> None:
        """Keep a moved store's `-wal` and `-shm` aside, under names SQLite never opens."""
        stamp = time.time_ns()
        for suffix in ("-wal", "-shm"):
            orphan = Path(f"{self.path}{suffix}")
            try:
                os.replace(orphan, f"{self.path}{suffix}.orphaned-{stamp}")
            except FileNotFoundError:
                pass

    def close(self) -> None:
        """Release this store: the calling thread's connection closes now, other threads' on their next
        use; any later query reopens lazily."""
        if self._pid != os.getpid():
            return
        with self._gate.section():
            self._generation += 1
            connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
            if connection is not None:
                self._retire(connection)

    def close_all(self) -> None:
        """Close every connection of this process (at Contexta.close, when the writer has stopped)."""
        if self._pid != os.getpid():
            return
        with self._gate.section():
            self._close_all()

    def _close_all(self) -> None:
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

    # -- fork ----------------------------------------------------------------------------------

    def _after_fork_in_child(self, quiet: bool) -> None:
        """In a forked child, before any of its threads uses this store (see `_fork_guard.py`): the
        parent's connections are idle when `quiet`, and closing them frees SQLite's inherited lock
        bookkeeping; otherwise one may be mid-transaction, and is kept, never closed."""
        inherited = self._connections
        self._local = threading.local()
        self._connections = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        if not quiet:
            _KEPT_FROM_PARENT.extend(inherited)
            return
        for connection in inherited:
            try:
                connection.close()
            except sqlite3.Error:
                pass


# Connections a child inherited mid-statement: closing one would roll back, through the WAL index it
# shares with its parent, the transaction the parent is still committing. Kept here, never closed.
_KEPT_FROM_PARENT: list[sqlite3.Connection] = []


def _seconds(duration: float) -> str:
    return f"{duration:.1f}s" if duration < 10 else f"{duration:.0f}s"


def _is_lock_error(error: sqlite3.OperationalError) -> bool:
    text = str(error)
    return "locked" in text or "busy" in text


class _LockWait:
    """One writer's wait for a lock: short pauses, a warning naming the holder after LOCK_WARN_S, and
    `store_locked` after LOCK_WAIT_S."""

    def __init__(self, path: Path):
        self.path = path
        self.started = time.monotonic()
        self.warned = False

    def pause(self) -> None:
        waited = time.monotonic() - self.started
        holders = None
        if forked_mid_statement():
            holders = write_lock_holders(self.path)
            if not holders:  # held inside this process, by a connection no thread of it will finish
                raise StoreError(
                    f"{self.path} cannot be written from this process: it was forked while a thread "
                    "of its parent was inside a store transaction that outlasted the fork's wait, and "
                    "SQLite's record of that lock came along with no thread to release it (captured "
                    "records are parked for `contexta replay`); fork while no long store query or "
                    "transaction runs, or start workers with the 'spawn' or 'forkserver' method",
                    code="store_locked_by_fork",
                    details={"path": str(self.path)},
                )
        if waited >= LOCK_WAIT_S:
            holders = write_lock_holders(self.path) if holders is None else holders
            holder = describe_processes(holders) or "another connection"
            raise StoreError(
                f"{self.path} stayed locked by {holder} for {_seconds(waited)}; a transaction that "
                "long is stuck: stop that process, or let it finish and try again (captured records "
                "refused meanwhile are parked for `contexta replay`)",
                code="store_locked",
                details={"path": str(self.path), "holders": holders, "waited_s": round(waited, 1)},
            )
        if waited >= LOCK_WARN_S and not self.warned:
            self.warned = True
            holder = describe_processes(write_lock_holders(self.path)) or "another connection"
            warnings.warn(
                f"contexta: waiting {_seconds(waited)} for the write lock of {self.path}, held by "
                f"{holder} (a writer gives up after {_seconds(LOCK_WAIT_S)})",
                CaptureWarning,
                stacklevel=2,
            )
        time.sleep(0.001)


def _identity_at(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file `path` names, or None if there is none (a stat; never an open,
    which would drop this process's SQLite locks on the file when closed)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return (status.st_dev, status.st_ino)
