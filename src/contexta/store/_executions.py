"""Finding a run's executions: the latest one (what `run:{project}.{run}` means), or the n-th."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from contexta.contract._refs import is_execution_id
from contexta.contract._timestamps import instant_key, parse_timestamp
from contexta.errors import ContextaError
from contexta.store._database import StoreDatabase

__all__ = [
    "ExecutionResolver",
    "execution_by_number",
    "execution_started_by",
    "holds_name_of_before",
    "latest_execution_id",
    "latest_execution_start",
]

# The latest execution is the one that started last; executions started at the same instant are
# ordered by when they were first stored.
_LATEST = "SELECT execution_id FROM runs WHERE run_ref = ? ORDER BY started_key DESC, rowid DESC LIMIT 1"


def latest_execution_id(connection: sqlite3.Connection, run_ref: str) -> str | None:
    """The id of the latest execution of `run_ref`, or None when the store has none."""
    row = connection.execute(_LATEST, (run_ref,)).fetchone()
    return None if row is None else str(row[0])


def execution_by_number(connection: sqlite3.Connection, run_ref: str, number: int) -> str | None:
    """The id of the `number`-th execution of `run_ref` (1 is the first to start), or None."""
    if number < 1:
        return None
    row = connection.execute(
        "SELECT execution_id FROM runs WHERE run_ref = ? AND execution_number = ?", (run_ref, number)
    ).fetchone()
    return None if row is None else str(row[0])


def latest_execution_start(database: StoreDatabase, run_ref: str) -> tuple[str, int] | None:
    """(id, start in ns since the epoch) of the latest stored execution of `run_ref`, or None: what a
    run opened with `resume=True` joins, unless this process opened a later one itself."""
    with database.read() as connection:
        row = connection.execute(
            "SELECT execution_id, started_at FROM runs WHERE run_ref = ? "
            "ORDER BY started_key DESC, rowid DESC LIMIT 1",
            (run_ref,),
        ).fetchone()
    if row is None:
        return None
    started = parse_timestamp(row[1])
    return str(row[0]), int(started.timestamp()) * 1_000_000_000 + started.microsecond * 1_000


class ExecutionResolver:
    """The execution a stored document belongs to, within one write transaction.

    A document that names its execution (a captured record's ref, a scope's or an artifact's
    `execution_id`) belongs to that one, even before the execution's run row is stored (a batch
    replayed from the outbox may bring records before their run's opening), unless the store holds
    that id under another run. One that names none (written by hand, or by a version before
    executions) belongs to the execution of its run that had started by its time (`at`), else to
    the latest. `aliases` maps ids a replayed log uses for executions stored under other ids.
    Answers are remembered for the transaction: a batch asks about the same few runs many times.
    """

    def __init__(self, connection: sqlite3.Connection, aliases: Mapping[str, str] | None = None):
        self._connection = connection
        self._aliases = aliases if aliases is not None else {}
        self._known: dict[tuple[str | None, str | None, str | None], str] = {}

    def __call__(self, run_ref: str | None, claimed: str | None, at: str | None = None) -> str:
        key = (run_ref, claimed, at)
        found = self._known.get(key)
        if found is None:
            found = self._resolve(run_ref, claimed, at)
            self._known[key] = found
        return found

    def forget(self) -> None:
        """A run row was just stored: which execution is the latest may have changed."""
        self._known.clear()

    def _resolve(self, run_ref: str | None, claimed: str | None, at: str | None) -> str:
        if run_ref is None:
            return ""
        if claimed is not None:
            claimed = self._aliases.get(claimed, claimed)
            row = self._connection.execute(
                "SELECT run_ref FROM runs WHERE execution_id = ?", (claimed,)
            ).fetchone()
            if (row is None and is_execution_id(claimed)) or (row is not None and row[0] == run_ref):
                return claimed
        if at is not None:
            found = execution_started_by(self._connection, run_ref, at)
            if found is not None:
                return found
        return latest_execution_id(self._connection, run_ref) or ""


def execution_started_by(connection: sqlite3.Connection, run_ref: str, at: str) -> str | None:
    """The execution of `run_ref` that started last at or before `at` (a timestamp), or None."""
    try:
        key = instant_key(at)
    except ContextaError:
        return None
    row = connection.execute(
        "SELECT execution_id FROM runs WHERE run_ref = ? AND started_key <= ? "
        "ORDER BY started_key DESC, rowid DESC LIMIT 1",
        (run_ref, key),
    ).fetchone()
    return None if row is None else str(row[0])


_NAMED_TABLES = {"runs": "run_ref", "projects": "project_ref"}


def holds_name_of_before(database: StoreDatabase, table: str, ref: str, typed: str) -> bool:
    """True when the store holds `ref` (a run's or a project's) as a previous version stored it, by
    its normalised name and without the name as typed, and no other typed name holds it: a name
    typed now that normalises to it then keeps it, so upgrading never splits a project or a run."""
    column = _NAMED_TABLES[table]
    with database.read() as connection:
        kept, others = connection.execute(
            f"SELECT total(display_name IS NULL OR display_name = ?), "
            f"total(display_name IS NOT NULL AND display_name != ?) FROM {table} WHERE {column} = ?",
            (typed, typed, ref),
        ).fetchone()
    # Stored untyped (or already kept for this very name since), and held by no other typed name.
    return bool(kept > 0 and others == 0)
