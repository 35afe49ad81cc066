"""Reclaiming earlier executions from the store, and saying how much of it each execution takes.

`contexta gc` decides which executions go (`contexta/_retention.py`); this module lists what it
decides from (`list_executions`), removes an execution's rows (`reclaim_executions`), gives the file
back to the file system (`compact_store`), and apportions the file to executions for `contexta du`
(`store_usage`).

Deleting is one transaction per execution, so a kill leaves each execution whole or gone. The checks
that make an execution reclaimable are made again inside that transaction, under the write lock: an
execution opened again since it was listed (`resume=True`), or whose owner lock is held, is kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from contexta._liveness import locked_executions, owners_alive
from contexta.errors import StoreError
from contexta.store._database import StoreDatabase

__all__ = [
    "CompactReport",
    "ExecutionSummary",
    "ReclaimedExecution",
    "StoreUsage",
    "any_owner_alive",
    "artifact_copies",
    "compact_store",
    "delete_execution_rows",
    "list_executions",
    "reclaim_executions",
    "store_file_bytes",
    "store_usage",
]

# Tables a run execution owns, by their `execution_id` column (metric chunks and explicit metric
# refs hang off their series, below). Relations (lineage between refs), deployments (a project's,
# naming a run) and projects are not an execution's and are kept.
_OWNED = ("records", "stages", "batches", "samples", "operations", "environments", "artifacts")
_SERIES_OF = "SELECT series_id FROM metric_series WHERE execution_id = ?"


@dataclass(frozen=True, slots=True)
class ExecutionSummary:
    """One execution as gc weighs it. `live` is True while some process holds its owner lock."""

    execution_id: str
    run_ref: str
    project_ref: str
    name: str
    status: str
    started_at: str
    ended_at: str | None
    execution_number: int
    latest: bool
    highest_number: bool
    live: bool

    @property
    def open(self) -> bool:
        return self.status == "open"


def list_executions(database: StoreDatabase, live_dir: Path | None) -> list[ExecutionSummary]:
    """Every run execution in the store, oldest (first started) first."""
    with database.read() as connection:
        rows = connection.execute(
            "SELECT r.execution_id, r.run_ref, r.project_ref, coalesce(r.display_name, r.name), r.status, "
            "r.started_at, r.ended_at, r.execution_number, r.latest, "
            "r.execution_number = (SELECT max(o.execution_number) FROM runs o WHERE o.run_ref = r.run_ref) "
            "FROM runs r ORDER BY r.started_key, r.rowid"
        ).fetchall()
    return [
        ExecutionSummary(
            str(row[0]),
            str(row[1]),
            str(row[2]),
            str(row[3]),
            str(row[4]),
            str(row[5]),
            None if row[6] is None else str(row[6]),
            int(row[7]),
            bool(row[8]),
            bool(row[9]),
            _live(live_dir, str(row[0])),
        )
        for row in rows
    ]


def _live(live_dir: Path | None, execution_id: str) -> bool:
    """True when a process holds the execution's owner lock (or it cannot be told: never reclaim on a
    guess)."""
    if live_dir is None:
        return False
    return owners_alive(live_dir, execution_id) is True


def any_owner_alive(live_dir: Path | None) -> bool:
    """True while some process captures into the workspace (holds an owner lock of a run)."""
    if live_dir is None:
        return False
    return any(owners_alive(live_dir, execution) is True for execution in locked_executions(live_dir))


@dataclass(frozen=True, slots=True)
class ReclaimedExecution:
    """What reclaiming one execution removed from the store, or why it was kept instead (`kept`).

    `artifact_files` are the stored copies (`<workspace>/artifacts/...`) its manifests pointed at that
    no remaining manifest points at: the caller may delete them."""

    execution_id: str
    rows: dict[str, int] = field(default_factory=dict)
    points: int = 0
    artifact_files: tuple[str, ...] = ()
    kept: str | None = None


def reclaim_executions(
    database: StoreDatabase, execution_ids: Iterable[str], live_dir: Path | None
) -> list[ReclaimedExecution]:
    """Delete each execution's rows (its run, scopes, records, metric series and points, artifact
    manifests, environment), one transaction each. An execution that is open, live, the latest of its
    name or the highest-numbered is kept (the reason is in `kept`); one no longer stored reports no rows."""
    return [_reclaim_one(database, execution_id, live_dir) for execution_id in execution_ids]


def _reclaim_one(database: StoreDatabase, execution_id: str, live_dir: Path | None) -> ReclaimedExecution:
    with database.transaction() as connection:
        row = connection.execute(
            "SELECT run_ref, status, latest, execution_number = (SELECT max(o.execution_number) FROM runs o "
            "WHERE o.run_ref = runs.run_ref) FROM runs WHERE execution_id = ?",
            (execution_id,),
        ).fetchone()
        kept = _reason_to_keep(row, live_dir, execution_id)
        if kept is not None:
            return ReclaimedExecution(execution_id, kept=kept)
        return delete_execution_rows(connection, execution_id)


def delete_execution_rows(connection: sqlite3.Connection, execution_id: str) -> ReclaimedExecution:
    """Delete one execution's rows (its run, scopes, records, metric series and points, artifact
    manifests, environment) inside the caller's write transaction, checking nothing: `gc` and
    `delete` each decide first whether it may go."""
    rows: dict[str, int] = {}
    (points,) = connection.execute(
        "SELECT coalesce(sum(point_count), 0) FROM metric_chunks WHERE series_id IN (" + _SERIES_OF + ")",
        (execution_id,),
    ).fetchone()
    for table in ("metric_chunks", "explicit_metric_refs"):
        rows[table] = connection.execute(
            f"DELETE FROM {table} WHERE series_id IN ({_SERIES_OF})", (execution_id,)
        ).rowcount
    rows["metric_series"] = connection.execute(
        "DELETE FROM metric_series WHERE execution_id = ?", (execution_id,)
    ).rowcount
    stored = [
        str(path)
        for (path,) in connection.execute(
            "SELECT DISTINCT stored_path FROM artifacts WHERE execution_id = ? AND stored_path IS NOT NULL",
            (execution_id,),
        )
    ]
    for table in _OWNED:
        rows[table] = connection.execute(
            f"DELETE FROM {table} WHERE execution_id = ?", (execution_id,)
        ).rowcount
    rows["runs"] = connection.execute("DELETE FROM runs WHERE execution_id = ?", (execution_id,)).rowcount
    unshared = tuple(
        path
        for path in stored
        if connection.execute("SELECT 1 FROM artifacts WHERE stored_path = ? LIMIT 1", (path,)).fetchone()
        is None
    )
    return ReclaimedExecution(execution_id, {k: v for k, v in rows.items() if v}, int(points), unshared)


def _reason_to_keep(row: tuple[object, ...] | None, live_dir: Path | None, execution_id: str) -> str | None:
    if row is None:
        return None  # not (or no longer) stored: nothing to delete here; the log may still hold lines
    _, status, latest, highest = row
    if status == "open":
        return "open"
    if _live(live_dir, execution_id):
        return "live"
    if latest:
        return "latest of its name"
    if highest:
        return "highest-numbered of its name"
    return None


@dataclass(frozen=True, slots=True)
class CompactReport:
    """How the store file was given back: `method` is `vacuum`, `incremental` or `none` (`reason` says
    why), and its bytes (file plus write-ahead log) before and after."""

    method: str
    reason: str
    bytes_before: int
    bytes_after: int


def store_file_bytes(path: Path) -> int:
    """The store file and the files SQLite keeps beside it (write-ahead log, shared memory)."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += Path(f"{path}{suffix}").stat().st_size
        except OSError:
            pass
    return total


def compact_store(database: StoreDatabase, *, others_capture: bool) -> CompactReport:
    """Give the pages freed by deletions back to the file system.

    A store made with `auto_vacuum=INCREMENTAL` gives them back with `PRAGMA incremental_vacuum`, which
    takes the write lock only for the moments it moves pages, so it runs while others capture. Stores
    are made without it (SQLite's default), and switching needs one `VACUUM`, which rewrites the whole
    file under the write lock: writers wait for all of it (and park their batches in the outbox after a
    minute). So `VACUUM` (switching the store to incremental on the way) runs only when no process
    holds a run open (`others_capture` False); otherwise the freed pages stay in the file, reused by
    the next writes, and a later gc with nothing capturing shrinks it."""
    before = store_file_bytes(database.path)
    with database.read() as connection:
        (mode,) = connection.execute("PRAGMA auto_vacuum").fetchone()
        (free_pages,) = connection.execute("PRAGMA freelist_count").fetchone()
    if int(mode) == 2:
        method, reason = "incremental", "the store reclaims freed pages incrementally"
        with database.transaction() as connection:
            connection.execute("PRAGMA incremental_vacuum").fetchall()  # runs one page per step
    elif others_capture:
        return CompactReport(
            "none",
            f"{free_pages} free pages stay in the file for later writes: a process is capturing, and "
            "VACUUM would hold the write lock for the whole rewrite; run gc when nothing captures",
            before,
            before,
        )
    else:
        method, reason = (
            "vacuum",
            "nothing captures: rewritten whole, and set to incremental vacuum from now on",
        )
        try:
            with database.read() as connection:
                connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
                _vacuum(connection)
        except StoreError as error:  # a process began writing meanwhile: its pages wait for the next gc
            return CompactReport("none", f"VACUUM could not run now ({error.message})", before, before)
    with database.read() as connection:
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # a reader holds the log; it is reused, not grown
    return CompactReport(method, reason, before, store_file_bytes(database.path))


def _vacuum(connection: sqlite3.Connection) -> None:
    """VACUUM outside any transaction (it cannot run inside one)."""
    if connection.in_transaction:
        connection.execute("COMMIT")
    connection.execute("VACUUM")


@dataclass(frozen=True, slots=True)
class StoreUsage:
    """The store's bytes on disk (`total`: file, write-ahead log, shared memory) and an estimate of
    each execution's share of them (`by_execution`); `shared` is the rest (projects, deployments,
    free pages, the write-ahead log, rows of no execution). `exact_tables` is False when SQLite has no
    `dbstat` table, and then every byte is shared."""

    total: int
    by_execution: dict[str, float]
    shared: float
    exact_tables: bool
    method: str


# How each table's bytes are split among executions: by a weight per execution.
_WEIGHTS = {
    "metric_chunks": (
        "SELECT s.execution_id, sum(length(c.positions) + coalesce(length(c.observed_ns), 0) + "
        "length(c.point_values) + length(c.steps) + 32) FROM metric_chunks c JOIN metric_series s "
        "ON s.series_id = c.series_id GROUP BY s.execution_id"
    ),
    "explicit_metric_refs": (
        "SELECT s.execution_id, count(*) FROM explicit_metric_refs e JOIN metric_series s "
        "ON s.series_id = e.series_id GROUP BY s.execution_id"
    ),
    "records": (
        "SELECT execution_id, sum(coalesce(length(document), 0) + length(record_ref) + 64) FROM records "
        "GROUP BY execution_id"
    ),
    **{
        table: f"SELECT execution_id, count(*) FROM {table} GROUP BY execution_id"
        for table in ("runs", "stages", "batches", "samples", "operations", "environments", "artifacts")
    },
    "metric_series": "SELECT execution_id, count(*) FROM metric_series GROUP BY execution_id",
}


def store_usage(database: StoreDatabase) -> StoreUsage:
    """How much of the store each execution takes: each table's bytes (with its indexes, from SQLite's
    `dbstat`) are exact; its split among executions is an estimate, by their share of its rows (metric
    points by the bytes of their chunks, records by their documents)."""
    total = store_file_bytes(database.path)
    by_execution: dict[str, float] = {}
    with database.read() as connection:
        try:
            sizes = connection.execute(
                "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d JOIN sqlite_master m ON m.name = d.name "
                "GROUP BY m.tbl_name"
            ).fetchall()
        except sqlite3.OperationalError:
            return StoreUsage(total, {}, float(total), False, "SQLite here has no dbstat: not apportioned")
        for table, size in sizes:
            query = _WEIGHTS.get(str(table))
            if query is None or not size:
                continue
            weights = {
                str(execution or ""): float(weight or 0) for execution, weight in connection.execute(query)
            }
            whole = sum(weights.values())
            if whole <= 0:
                continue
            for execution, weight in weights.items():
                if execution:
                    by_execution[execution] = by_execution.get(execution, 0.0) + size * weight / whole
    shared = total - sum(by_execution.values())
    return StoreUsage(
        total,
        by_execution,
        shared,
        True,
        "each table's bytes from SQLite's dbstat (exact), split among executions by their share of its "
        "rows (estimated)",
    )


def artifact_copies(database: StoreDatabase) -> dict[str, list[str]]:
    """The stored artifact copies (`<workspace>/artifacts/...`) and the executions whose manifests
    point at each (one copy serves every manifest of the same content)."""
    copies: dict[str, list[str]] = {}
    with database.read() as connection:
        for path, execution in connection.execute(
            "SELECT stored_path, execution_id FROM artifacts WHERE stored_path IS NOT NULL ORDER BY rowid"
        ):
            holders = copies.setdefault(str(path), [])
            if execution not in holders:
                holders.append(str(execution))
    return copies
