"""Finding a run's executions: the latest one (what `run:{project}.{run}` means), or the n-th."""

from __future__ import annotations

import sqlite3

from contexta.contract._timestamps import parse_timestamp
from contexta.store._database import StoreDatabase

__all__ = ["ExecutionResolver", "execution_by_number", "latest_execution_id", "latest_execution_start"]

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
    """The execution a stored document belongs to, within one write transaction: the one its record
    ref (or its own field) names, when the run has it; else the run's latest ('' for no run). Answers
    are remembered for the transaction: a batch asks about the same few runs thousands of times."""

    def __init__(self, connection: sqlite3.Connection):
        self._connection = connection
        self._known: dict[tuple[str | None, str | None], str] = {}

    def __call__(self, run_ref: str | None, claimed: str | None) -> str:
        key = (run_ref, claimed)
        found = self._known.get(key)
        if found is None:
            found = self._resolve(run_ref, claimed)
            self._known[key] = found
        return found

    def forget(self) -> None:
        """A run row was just stored: which execution is the latest may have changed."""
        self._known.clear()

    def _resolve(self, run_ref: str | None, claimed: str | None) -> str:
        if run_ref is None:
            return ""
        if (
            claimed is not None
            and self._connection.execute(
                "SELECT 1 FROM runs WHERE execution_id = ? AND run_ref = ?", (claimed, run_ref)
            ).fetchone()
        ):
            return claimed
        return latest_execution_id(self._connection, run_ref) or ""
