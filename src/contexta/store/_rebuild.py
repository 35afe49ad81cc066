"""Rebuilding the store into a new file and putting it in place of the old one, kept aside.

What fills the new file is the caller's (the capture side replays its log, see its
`rebuild_store`); this module owns the files: the new database is written beside the old one under
a name of its own, the changes people made to runs after capture are replayed from the run journal
(tags, notes, archiving, deletes: `_run_journal.py`), runs left open by processes that are gone are
closed as interrupted, and only then is the old store moved aside (kept, never deleted) and the new
one moved into its place.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contexta._liveness import owners_alive
from contexta.store._database import StoreDatabase
from contexta.store._recovery import close_interrupted_deployment, close_interrupted_execution
from contexta.store._run_changes import replay_journal

__all__ = ["RebuiltStore", "rebuild_database"]

_DATABASE_FILES = ("", "-wal", "-shm")


@dataclass(frozen=True, slots=True)
class RebuiltStore:
    """What `rebuild_database` put in place."""

    runs: int  # executions the new store holds
    interrupted_runs: tuple[str, ...]  # runs left open by processes that are gone, closed now
    previous_store: Path | None  # where the old store was moved, if there was one


def _close_runs_left_open(database: StoreDatabase, live_dir: Path | None) -> tuple[str, ...]:
    """Runs the history opened but never closed, whose processes are gone: closed `failed` /
    `interrupted` with what they left open, at their last recorded activity (the end times recorded
    for everything else are kept as they are). A run whose owner still holds its lock is left open:
    it is still being captured."""
    closed = []
    with database.transaction() as connection:
        rows = connection.execute("SELECT execution_id, run_ref FROM runs WHERE status = 'open'").fetchall()
        for execution_id, run_ref in rows:
            if live_dir is not None and owners_alive(live_dir, execution_id):
                continue
            if close_interrupted_execution(connection, execution_id):
                closed.append(run_ref)
        deployments = connection.execute(
            "SELECT deployment_ref, owner_id FROM deployments WHERE status = 'open'"
        ).fetchall()
        for deployment_ref, owner_id in deployments:
            if live_dir is not None and owner_id is not None and owners_alive(live_dir, owner_id):
                continue
            close_interrupted_deployment(connection, deployment_ref)
    return tuple(closed)


def rebuild_database(
    database_path: Path, fill: Callable[[StoreDatabase], None], live_dir: Path | None = None
) -> RebuiltStore:
    """Build a new store with `fill` and put it at `database_path` (`live_dir`: where capturing
    processes hold their owner locks, see contexta/_liveness.py)."""
    partial = database_path.with_name(f"{database_path.name}.repair-{os.getpid()}")
    for suffix in _DATABASE_FILES:
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    rebuilt = StoreDatabase(partial)
    try:
        fill(rebuilt)
        replay_journal(rebuilt, database_path)
        interrupted = _close_runs_left_open(rebuilt, live_dir)
        with rebuilt.read() as connection:
            (runs,) = connection.execute("SELECT count(*) FROM runs").fetchone()
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one self-contained file to move
    finally:
        rebuilt.close_all()
    previous: Path | None = None
    if database_path.exists():
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        previous = database_path.with_name(f"{database_path.name}.before-repair-{stamp}")
        for suffix in _DATABASE_FILES:
            old = Path(f"{database_path}{suffix}")
            if old.exists():
                os.replace(old, f"{previous}{suffix}")
    os.replace(partial, database_path)
    for suffix in _DATABASE_FILES[1:]:
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    return RebuiltStore(int(runs), interrupted, previous)
