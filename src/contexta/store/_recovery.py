"""Runs whose process died: found when a workspace is opened, and closed so they are not open forever.

A run is `open` in the store from its first batch until its closing batch commits. A process killed
in between (by the scheduler, the OOM killer, a SIGKILL) never writes the close, and trackers that do
not look would show it running forever. Each capturing process holds a kernel lock for its run
(`contexta/_liveness.py`), which the kernel releases however the process ends and whatever pid
namespace it ran in; opening a `Contexta` takes the locks of every open run it can, and a run none
of whose owners still holds one was left by processes that are gone. It is closed `failed` with
`end_reason = 'interrupted'`, and so is every stage, batch, sample and operation it left open, each
ended at the run's last recorded activity (what the store saw last, not the moment someone noticed).
Runs stored before owner locks existed fall back to their pid and host: those of this host whose
process is gone are closed; those of other hosts are left alone (their processes cannot be checked).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import orjson

from contexta._liveness import locked_executions, owners_alive, remove_owner_locks, remove_unplaced_files
from contexta.contract._timestamps import format_ns, instant_key
from contexta.store._chunk_codec import read_column
from contexta.store._database import StoreDatabase

__all__ = [
    "INTERRUPTED",
    "close_interrupted_deployment",
    "close_interrupted_execution",
    "mark_interrupted_runs",
    "owner_alive",
    "process_alive",
]

INTERRUPTED = "interrupted"
# Scope tables and the column that holds each scope's start.
_SCOPE_STARTS = {
    "stages": "started_at",
    "batches": "started_at",
    "samples": "observed_at",
    "operations": "started_at",
}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:
        return False
    return True


def owner_alive(
    live_dir: Path | None,
    execution_id: str,
    owner_pid: int | None,
    owner_host: str | None,
    host: str,
) -> bool | None:
    """Whether a process still captures `execution_id`: True, False, or None when nothing here can
    tell (no lock files, and an owner on another host or without a pid)."""
    if live_dir is not None:
        held = owners_alive(live_dir, execution_id)
        if held is not None:
            return held
    if owner_pid is None or owner_host != host:
        return None
    if owner_pid == os.getpid():
        return True  # this process: a Contexta of its own may have the run open
    return process_alive(owner_pid)


def last_activity(connection: sqlite3.Connection, execution_id: str, started_at: str) -> str:
    """The latest time the store saw anything of an execution: a scope opening or closing, a record,
    a metric point; never before the run started."""
    times = [started_at]
    for table, start in _SCOPE_STARTS.items():
        times.extend(
            value
            for row in connection.execute(
                f"SELECT max({start}), max(ended_at) FROM {table} WHERE execution_id = ?", (execution_id,)
            )
            for value in row
            if value is not None
        )
    (recorded,) = connection.execute(
        "SELECT max(observed_at) FROM records WHERE execution_id = ?", (execution_id,)
    ).fetchone()
    if recorded is not None:
        times.append(recorded)
    # Each series' last chunk holds its latest points (chunks are written in capture order); points
    # replayed from the log or written by hand keep their times as text in `explicit`.
    newest = 0
    for observed, explicit, encoding, count in connection.execute(
        "SELECT c.observed_ns, c.explicit, c.encoding, c.point_count FROM metric_chunks c JOIN ("
        "  SELECT s.series_id, max(c2.seq_base) AS last_base FROM metric_series s"
        "  JOIN metric_chunks c2 ON c2.series_id = s.series_id WHERE s.execution_id = ?"
        "  GROUP BY s.series_id"
        ") last ON c.series_id = last.series_id AND c.seq_base = last.last_base",
        (execution_id,),
    ):
        if observed:
            newest = max(newest, *read_column(encoding, "q", observed, count))
        elif explicit:
            times.extend(orjson.loads(explicit)["observed_at"])
    if newest:
        times.append(format_ns(newest))
    return max(times, key=instant_key)


def close_interrupted_execution(connection: sqlite3.Connection, execution_id: str) -> bool:
    """Close an open execution whose owners are gone, with everything it left open, `failed` /
    `interrupted` at its last activity; False if it was no longer open (its owner closed it meanwhile)."""
    row = connection.execute(
        "SELECT started_at FROM runs WHERE execution_id = ? AND status = 'open'", (execution_id,)
    ).fetchone()
    if row is None:
        return False
    ended = last_activity(connection, execution_id, row[0])
    connection.execute(
        "UPDATE runs SET status = 'failed', ended_at = ?, end_reason = ? WHERE execution_id = ?",
        (ended, INTERRUPTED, execution_id),
    )
    for table in _SCOPE_STARTS:  # `ended` is at or after every scope's start (see last_activity)
        connection.execute(
            f"UPDATE {table} SET status = 'failed', ended_at = ?, end_reason = ? "
            "WHERE execution_id = ? AND status = 'open'",
            (ended, INTERRUPTED, execution_id),
        )
    return True


def close_interrupted_deployment(connection: sqlite3.Connection, deployment_ref: str) -> bool:
    """Close an open deployment whose process is gone `failed` / `interrupted` at its last activity;
    False if it was no longer open."""
    row = connection.execute(
        "SELECT started_at FROM deployments WHERE deployment_ref = ? AND status = 'open'", (deployment_ref,)
    ).fetchone()
    if row is None:
        return False
    times = [row[0]]
    (recorded,) = connection.execute(
        "SELECT max(observed_at) FROM records WHERE deployment_ref = ?", (deployment_ref,)
    ).fetchone()
    if recorded is not None:
        times.append(recorded)
    connection.execute(
        "UPDATE deployments SET status = 'failed', ended_at = ?, end_reason = ? WHERE deployment_ref = ?",
        (max(times, key=instant_key), INTERRUPTED, deployment_ref),
    )
    return True


def mark_interrupted_runs(
    database: StoreDatabase, live_dir: Path | None = None, host: str | None = None
) -> list[str]:
    """Close every open run, and every open deployment, whose owners are all gone (see the module
    docstring); the refs of the runs."""
    host = _hostname() if host is None else host
    with database.read() as connection:
        candidates = connection.execute(
            "SELECT execution_id, run_ref, owner_pid, owner_host FROM runs WHERE status = 'open'"
        ).fetchall()
        deployments = connection.execute(
            "SELECT deployment_ref, owner_id, owner_pid, owner_host FROM deployments "
            "WHERE status = 'open' AND owner_id IS NOT NULL"
        ).fetchall()
    gone = [
        (execution_id, run_ref)
        for execution_id, run_ref, pid, owner_host in candidates
        if owner_alive(live_dir, execution_id, pid, owner_host, host) is False
    ]
    marked = []
    for execution_id, run_ref in gone:
        with database.transaction() as connection:
            closed = close_interrupted_execution(connection, execution_id)
        if closed:
            marked.append(run_ref)
        if live_dir is not None:
            remove_owner_locks(live_dir, execution_id)
    for deployment_ref, owner_id, pid, owner_host in deployments:
        if owner_alive(live_dir, owner_id, pid, owner_host, host) is False:
            with database.transaction() as connection:
                close_interrupted_deployment(connection, deployment_ref)
            if live_dir is not None:
                remove_owner_locks(live_dir, owner_id)
    _close_scopes_left_in_ended_runs(database, live_dir, host)
    if live_dir is not None:
        open_owners = {row[0] for row in candidates} | {row[1] for row in deployments}
        _sweep_lock_files(live_dir, open_owners)
    return marked


def _close_scopes_left_in_ended_runs(database: StoreDatabase, live_dir: Path | None, host: str) -> None:
    """Close what ended runs still hold open: scopes a forked worker opened in its parent's run and
    never closed (it was killed, or the parent ended first). Nobody can close them any more once the
    run has ended and no process holds its lock; they end `failed` / `interrupted` at the later of
    their start and the run's end."""
    with database.read() as connection:
        ended = connection.execute(
            "SELECT DISTINCT runs.execution_id, runs.owner_pid, runs.owner_host, runs.ended_at FROM runs "
            "JOIN (SELECT execution_id FROM stages WHERE status = 'open' UNION "
            "SELECT execution_id FROM batches WHERE status = 'open' UNION "
            "SELECT execution_id FROM samples WHERE status = 'open' UNION "
            "SELECT execution_id FROM operations WHERE status = 'open') AS left_open "
            "ON left_open.execution_id = runs.execution_id WHERE runs.status != 'open'"
        ).fetchall()
    for execution_id, pid, owner_host, run_ended in ended:
        # A process still captures into it only if it holds its lock (it resumed the run): the pid
        # stored is the owner that closed it, which may well still live (a later notebook cell).
        if live_dir is not None:
            if owners_alive(live_dir, execution_id) is True:
                continue
        elif owner_alive(None, execution_id, pid, owner_host, host) is True:
            continue
        with database.transaction() as connection:
            for table, start in _SCOPE_STARTS.items():
                connection.execute(
                    # (no end: the comparison is NULL, so the start; typed, as PostgreSQL needs)
                    f"UPDATE {table} SET status = 'failed', end_reason = ?, ended_at = CASE "
                    f"WHEN CAST(? AS TEXT) > {start} THEN ? ELSE {start} END "
                    "WHERE execution_id = ? AND status = 'open'",
                    (INTERRUPTED, run_ended, run_ended, execution_id),
                )


def _sweep_lock_files(live_dir: Path, open_owners: set[str]) -> None:
    """Remove lock files no process holds of runs and deployments that are not open: a process that
    ended while it delivered their closings (at exit, on a signal) leaves them, and a process killed
    before its run reached the store leaves one nobody would ask about again."""
    for owner_id in locked_executions(live_dir) - open_owners:
        if owners_alive(live_dir, owner_id) is False:
            remove_owner_locks(live_dir, owner_id)
    remove_unplaced_files(live_dir)


def _hostname() -> str:
    # socket imported here: a few milliseconds every `import contexta` would pay for one call.
    import socket

    return socket.gethostname()
