"""The canonical store in PostgreSQL: connections, the schema, and short transactions, with the same
`read()` / `transaction()` shape as the SQLite file (`StoreDatabase`), so the store's writers and
the query package run on either.

Each thread gets its own connection (psycopg 3, autocommit, so `read()` and `transaction()` decide
where transactions begin and end, as with SQLite). The statements are the store's SQLite ones, put
into PostgreSQL's form once each (`_pg_sql.py`); the connection adapts values so both give back the
same Python values: floats go as exact decimal text (a `numeric` column keeps every digit), numerics
come back as int or float, ints are always 64-bit. A forked child never touches its parent's
connections: closing one would end the parent's session on the shared socket, so the child only
forgets them. The URL's password is used to connect and never printed (`redacted_url`).

Writers on several machines never deadlock on the store's own rows: every batch first takes its
range of capture-order numbers from the one row all writers share (`counters`) and holds that row
until it commits, so batches commit in the order of their numbers (a reader that follows new records
by their numbers never misses one committed late) and take every other lock after it. The price:
batches from many writers commit one at a time (8 processes together store about 280,000 records/s,
one alone about 400,000; see docs/benchmarks.md).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from contexta._optional import require_module
from contexta.config import redacted_url
from contexta.errors import StoreError
from contexta.store._pg_schema import PG_MIGRATIONS, PG_SCHEMA, PG_SCHEMA_VERSION
from contexta.store._pg_sql import to_postgres

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresConnection", "PostgresDatabase"]

# Serialises creating the schema among processes that open a new database at once.
_SCHEMA_LOCK_KEY = 0x43545841  # "CTXA", as the SQLite file's application_id
_CONNECT_TIMEOUT_S = 10
# Connections of a parent process, kept (never closed) in a forked child: see the module docstring.
_FORGOTTEN: list[Any] = []


class PostgresConnection:
    """A psycopg connection that takes the store's SQLite statements (see `_pg_sql.py`)."""

    dialect = "postgresql"

    def __init__(self, connection: psycopg.Connection[Any]):
        self.raw = connection

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        statement = to_postgres(sql)
        values = _ordered(parameters, statement.order)
        cursor = self.raw.cursor()
        cursor.execute(statement.text, values if values else None, prepare=False)
        return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        statement = to_postgres(sql)
        cursor = self.raw.cursor()
        cursor.executemany(statement.text, [_ordered(row, statement.order) or () for row in rows])
        return cursor

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


def _ordered(parameters: Sequence[Any] | None, order: tuple[int, ...] | None) -> Sequence[Any] | None:
    if parameters is None or order is None:
        return parameters
    return [parameters[index] for index in order]


class PostgresDatabase:
    """One PostgreSQL database holding a store; `read()` and `transaction()` hand out this thread's
    connection, as `StoreDatabase` does for the SQLite file."""

    dialect = "postgresql"

    def __init__(self, url: str, *, read_only: bool = False):
        self.url = url
        self.path = None  # no file: the SQLite-only checks (moved files, backups) do not apply
        self.read_only = read_only
        self.migrated_from: int | None = None
        self._local = threading.local()
        self._connections: list[PostgresConnection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._checked = False

    def __repr__(self) -> str:
        return f"PostgresDatabase({redacted_url(self.url)!r})"

    # -- connections ---------------------------------------------------------------------------

    def _connection(self) -> PostgresConnection:
        if self._pid != os.getpid():  # forked: keep the parent's connections, never use or close them
            _FORGOTTEN.extend(self._connections)
            self._local = threading.local()
            self._connections = []
            self._lock = threading.Lock()
            self._pid = os.getpid()
        connection: PostgresConnection | None = getattr(self._local, "connection", None)
        if connection is not None and connection.raw.closed:
            self._retire(connection)
            connection = None
        if connection is None:
            connection = self._open()
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _open(self) -> PostgresConnection:
        psycopg = require_module("psycopg", "a PostgreSQL store (store.url)", extra="postgres")

        try:
            raw = psycopg.connect(self.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S)
        except psycopg.Error as error:
            raise StoreError(
                f"cannot connect to the PostgreSQL store {redacted_url(self.url)}: {_first_line(error)}",
                code="store_unreachable",
                details={"url": redacted_url(self.url)},
            ) from None
        _adapt(raw)
        connection = PostgresConnection(raw)
        if not self._checked:
            try:
                self._migrate(connection)
            except BaseException:
                raw.close()
                raise
            self._checked = True
        return connection

    def _retire(self, connection: PostgresConnection) -> None:
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)
        self._local.connection = None
        try:
            connection.close()
        except Exception:
            pass

    def _migrate(self, connection: PostgresConnection) -> None:
        """Create the schema in an empty database (once, whoever comes first), bring an older one up to
        date (`PG_MIGRATIONS`); refuse a database that holds other tables or a newer schema."""
        raw = connection.raw
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            version = _stored_version(raw)
            if version is None:
                foreign = raw.execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
                ).fetchone()
                if foreign is not None and foreign[0]:
                    raise StoreError(
                        f"{redacted_url(self.url)} holds tables that are not a contexta store; "
                        "point store.url at an empty database",
                        code="store_foreign",
                    )
                if self.read_only:
                    raise StoreError(
                        f"{redacted_url(self.url)} holds no contexta store yet", code="store_missing"
                    )
                raw.execute("CREATE TABLE contexta_schema(version BIGINT NOT NULL)")
                for statement in PG_SCHEMA:
                    raw.execute(statement.replace("%", "%%"))
                raw.execute("INSERT INTO contexta_schema(version) VALUES (%s)", (PG_SCHEMA_VERSION,))
            elif version > PG_SCHEMA_VERSION:
                raise StoreError(
                    f"{redacted_url(self.url)} holds a store of schema {version}, newer than this version "
                    f"of contexta reads ({PG_SCHEMA_VERSION}); upgrade contexta",
                    code="store_version_unsupported",
                )
            elif version < PG_SCHEMA_VERSION and not self.read_only:
                for step in range(version + 1, PG_SCHEMA_VERSION + 1):
                    for statement in PG_MIGRATIONS[step]:
                        raw.execute(statement)
                raw.execute("INSERT INTO contexta_schema(version) VALUES (%s)", (PG_SCHEMA_VERSION,))

    # -- use -----------------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[PostgresConnection]:
        """This thread's connection for queries."""
        import psycopg

        connection = self._connection()
        try:
            yield connection
        except psycopg.OperationalError as error:
            self._retire(connection)
            raise StoreError(
                f"reading the PostgreSQL store {redacted_url(self.url)} failed: {_first_line(error)}",
                code="store_unreachable",
            ) from error
        except psycopg.Error as error:
            raise StoreError(
                f"reading the PostgreSQL store failed: {_first_line(error)}", code="store_read_failed"
            ) from error

    @contextmanager
    def transaction(self) -> Iterator[PostgresConnection]:
        """A short write transaction: committed on success, rolled back on error."""
        import psycopg

        if self.read_only:
            raise StoreError(
                f"{redacted_url(self.url)} is open read-only; writing needs a Contexta(...)",
                code="store_read_only",
            )
        connection = self._connection()
        try:
            connection.raw.execute("BEGIN")
        except psycopg.OperationalError as error:
            self._retire(connection)
            raise StoreError(
                f"cannot reach the PostgreSQL store {redacted_url(self.url)}: {_first_line(error)}",
                code="store_unreachable",
            ) from error
        try:
            yield connection
        except BaseException as error:
            self._roll_back(connection)
            if isinstance(error, psycopg.OperationalError):
                raise StoreError(
                    f"writing to the PostgreSQL store {redacted_url(self.url)} failed: {_first_line(error)}",
                    code="store_unreachable",
                ) from error
            if isinstance(error, psycopg.Error):  # the server refused this write (a constraint, a value)
                raise StoreError(
                    f"the PostgreSQL store refused a write: {_first_line(error)}",
                    code="store_write_failed",
                    details={"sqlstate": error.sqlstate or ""},
                ) from error
            raise
        try:
            connection.raw.execute("COMMIT")
        except psycopg.OperationalError as error:
            self._retire(connection)
            raise StoreError(
                f"committing to the PostgreSQL store {redacted_url(self.url)} failed (the batch may or "
                f"may not be stored; record refs make delivering it again safe): {_first_line(error)}",
                code="store_unreachable",
            ) from error

    def _roll_back(self, connection: PostgresConnection) -> None:
        try:
            if not connection.raw.closed and connection.in_transaction:
                connection.raw.execute("ROLLBACK")
        except Exception:
            self._retire(connection)

    # -- the SQLite file's questions, which a server store answers once and for all -------------

    def file_moved(self) -> bool:
        return False

    def follow_moved_file(self) -> str:
        raise StoreError("a PostgreSQL store has no file to follow", code="store_no_file")

    def close(self) -> None:
        """Close this thread's connection."""
        connection: PostgresConnection | None = getattr(self._local, "connection", None)
        if connection is not None and self._pid == os.getpid():
            self._retire(connection)

    def close_all(self) -> None:
        """Close every connection this process opened (from any thread)."""
        if self._pid != os.getpid():
            return
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.close()
            except Exception:
                pass
        self._local = threading.local()


def _stored_version(raw: psycopg.Connection[Any]) -> int | None:
    exists = raw.execute("SELECT to_regclass('contexta_schema') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = raw.execute("SELECT max(version) FROM contexta_schema").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _adapt(raw: psycopg.Connection[Any]) -> None:
    """Values in and out as the SQLite store gives them (see the module docstring)."""
    from psycopg.adapt import Dumper, Loader
    from psycopg.types.json import set_json_loads
    from psycopg.types.numeric import Int8Dumper
    from psycopg.types.string import StrDumperUnknown

    numeric_oid = raw.adapters.types["numeric"].oid

    class ExactFloatDumper(Dumper):
        oid = numeric_oid

        def dump(self, obj: Any) -> bytes:
            if math.isnan(obj):
                return b"NaN"
            if obj in (float("inf"), float("-inf")):
                return b"Infinity" if obj > 0 else b"-Infinity"
            text = repr(obj)
            if "e" in text:  # 1e+20 would be stored as the integer 100000000000000000000
                text = format(Decimal(text), "f")
            return (text if "." in text else text + ".0").encode()

    class IntOrFloatLoader(Loader):
        def load(self, data: Any) -> Any:
            text = bytes(data)
            if text == b"NaN":
                return float("nan")
            if text in (b"Infinity", b"-Infinity"):
                return float(text.decode().replace("Infinity", "inf"))
            if b"." in text or b"e" in text or b"E" in text:
                return float(text)
            return int(text)

    set_json_loads(orjson.loads, raw)  # what JSON columns decode with (the stdlib's is several times slower)

    class TextWithoutNulDumper(StrDumperUnknown):
        """PostgreSQL text cannot hold NUL, which SQLite keeps: a NUL is stored (and looked up) as
        U+FFFD, so a value carrying one never costs its batch."""

        def dump(self, obj: str) -> Any:
            return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)

    raw.adapters.register_dumper(str, TextWithoutNulDumper)
    raw.adapters.register_dumper(float, ExactFloatDumper)
    raw.adapters.register_dumper(int, Int8Dumper)
    raw.adapters.register_loader("numeric", IntOrFloatLoader)
