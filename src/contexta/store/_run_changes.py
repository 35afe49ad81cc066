"""Making a run change (tag, untag, note, archive, unarchive, delete) in the store, live or replayed.

The same function applies a change the moment it is made (`change_runs`, which also journals it)
and when a rebuilt store replays the journal (`replay_journal`), so both give the same store. What
each change writes (see `_schema.py`, schema 5):
- `tag` / `untag` update the run's `tags` (what readers filter on) and its `tag_edits` (what capture
  re-applies when it writes the run's captured tags again, e.g. at the run's close);
- `note` appends `{"at", "text"}` to `notes`; `archive` / `unarchive` set or clear `archived_at`;
- `delete` removes each execution's rows (as gc does) and marks the run's latest execution again.
An execution the store no longer holds is skipped: a replayed journal may name one the log lost.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from contexta._liveness import owners_alive
from contexta.store._database import StoreDatabase
from contexta.store._rows import dumps_or_none, loads_or_none
from contexta.store._run_journal import RunChange, append_to_journal, journal_path, read_journal

__all__ = ["AppliedChange", "DeletedRun", "capturing_process", "change_runs", "replay_journal"]


@dataclass(frozen=True, slots=True)
class AppliedChange:
    """What a change did: the executions it changed (that the store held), and for a delete the rows
    it removed by table, the metric points among them, and the artifact copies left unused."""

    change: RunChange
    executions: tuple[str, ...]
    rows: dict[str, int]
    points: int = 0


@dataclass(frozen=True, slots=True)
class DeletedRun:
    """What `delete_run` removed from the store: the executions of `run_ref`, their rows by table
    and metric points. `artifact_files` are the workspace's artifact copies no manifest points at
    any more, and the executions' lines are still in the capture log: `contexta gc` removes both."""

    run_ref: str
    executions: tuple[str, ...]
    rows: dict[str, int]
    metric_points: int
    artifact_files: tuple[str, ...]

    @classmethod
    def from_applied(cls, applied: AppliedChange) -> DeletedRun:
        change = applied.change
        return cls(change.run_ref, applied.executions, applied.rows, applied.points, change.artifact_files)


def capturing_process(connection: sqlite3.Connection, execution_id: str, live_dir: Path | None) -> str | None:
    """Which process may still capture into `execution_id` ("process 123 on host h"), or None when
    none can: the execution is closed and no process holds its owner lock. An execution still open
    counts as captured even when nothing here can tell (its owner on another host)."""
    row = connection.execute(
        "SELECT status, owner_pid, owner_host FROM runs WHERE execution_id = ?", (execution_id,)
    ).fetchone()
    if row is None:
        return None
    status, pid, host = row
    held = None if live_dir is None else owners_alive(live_dir, execution_id)
    if status != "open" and not held:
        return None
    who = "an unknown process" if pid is None else f"process {pid}"
    if pid == os.getpid():
        who = f"this process ({pid})"
    return f"{who} on host {host or 'unknown'}"


class _PreviewDoneError(Exception):
    """Rolls a dry run's transaction back, carrying what it would have done."""

    def __init__(self, applied: AppliedChange):
        super().__init__("dry run")
        self.applied = applied


def change_runs(
    database: StoreDatabase,
    plan: Callable[[sqlite3.Connection], RunChange],
    *,
    dry_run: bool = False,
) -> AppliedChange:
    """Make the change `plan` decides, in one write transaction: `plan` reads the store under the
    write lock (so what it checks stays true) and returns the change or raises; the change is made,
    then journaled (synced) before the transaction commits, so the journal never lacks a change the
    store has. With `dry_run`, the change is made and rolled back: what it would do, exactly."""
    try:
        with database.transaction() as connection:
            change = plan(connection)
            applied = apply_change(connection, change)
            if dry_run:
                raise _PreviewDoneError(applied)
            if database.path is not None:  # a PostgreSQL store is the server's record of the change
                append_to_journal(journal_path(database.path), applied.change)
    except _PreviewDoneError as preview:
        return preview.applied
    return applied


def apply_change(connection: sqlite3.Connection, change: RunChange) -> AppliedChange:
    """Apply `change` to the executions of it the store holds, inside the caller's transaction."""
    held = tuple(
        execution
        for execution in change.executions
        if connection.execute("SELECT 1 FROM runs WHERE execution_id = ?", (execution,)).fetchone()
    )
    if change.action == "delete":
        return _delete(connection, change, held)
    for execution in held:
        if change.action in ("tag", "untag"):
            _edit_tags(connection, execution, change)
        elif change.action == "note":
            (notes,) = connection.execute(
                "SELECT notes FROM runs WHERE execution_id = ?", (execution,)
            ).fetchone()
            added = [*(loads_or_none(notes) or []), {"at": change.at, "text": change.text}]
            connection.execute(
                "UPDATE runs SET notes = ? WHERE execution_id = ?", (dumps_or_none(added), execution)
            )
        else:
            archived_at = change.at if change.action == "archive" else None
            connection.execute(
                "UPDATE runs SET archived_at = ? WHERE execution_id = ?", (archived_at, execution)
            )
    return AppliedChange(change, held, {"runs": len(held)})


def _edit_tags(connection: sqlite3.Connection, execution: str, change: RunChange) -> None:
    stored, edits_text = connection.execute(
        "SELECT tags, tag_edits FROM runs WHERE execution_id = ?", (execution,)
    ).fetchone()
    tags: dict[str, Any] = loads_or_none(stored) or {}
    edits: dict[str, Any] = loads_or_none(edits_text) or {}
    if change.action == "tag":
        tags.update(change.tags)
        edits.update(change.tags)
    else:
        for name in change.names:
            tags.pop(name, None)
            edits[name] = None  # a merge patch's "remove": a later capture write keeps it removed
    connection.execute(
        "UPDATE runs SET tags = ?, tag_edits = ? WHERE execution_id = ?",
        (orjson.dumps(tags).decode() if tags else None, orjson.dumps(edits).decode(), execution),
    )


def _delete(connection: sqlite3.Connection, change: RunChange, held: tuple[str, ...]) -> AppliedChange:
    # Imported here: gc's module, which `import contexta` does not load.
    from contexta.store._reclaim import delete_execution_rows

    rows: dict[str, int] = {}
    points = 0
    unused: list[str] = []
    for execution in held:
        deleted = delete_execution_rows(connection, execution)
        points += deleted.points
        unused += deleted.artifact_files
        for table, count in deleted.rows.items():
            rows[table] = rows.get(table, 0) + count
    # The latest execution may be among those deleted: the one that started last of the rest is now.
    connection.execute(
        "UPDATE runs SET latest = CASE WHEN rowid = (SELECT rowid FROM runs AS other WHERE other.run_ref = ? "
        "ORDER BY other.started_key DESC, other.rowid DESC LIMIT 1) THEN 1 ELSE 0 END WHERE run_ref = ?",
        (change.run_ref, change.run_ref),
    )
    journaled = RunChange(
        "delete",
        change.run_ref,
        change.executions,
        change.at,
        artifact_files=tuple(dict.fromkeys((*change.artifact_files, *unused))),
    )
    return AppliedChange(journaled, held, rows, points)


def replay_journal(database: StoreDatabase, store_file: Path) -> int:
    """Apply the journal of the store at `store_file` to `database` (a store being rebuilt from the
    capture log), in the order the changes were made; how many changes applied to some execution."""
    applied = 0
    with database.transaction() as connection:
        for change in read_journal(journal_path(store_file)):
            applied += bool(apply_change(connection, change).executions)
    return applied
