"""Rebuilding the canonical store from the capture log, for when the store is lost or damaged.

The capture log is written before the store (the store sink waits for it), so it holds everything the
store had from live capture, and more after a crash. Repair replays the log's three files, merged into
capture order, through the same store sink live capture uses, into a new database file; then it moves
the old store aside (kept, never deleted) and puts the new one in its place. Rotated files count as
the log too: `record.jsonl.1`, `record.jsonl.2.gz`, `record.jsonl-20250101` (logrotate's names, by
number or date, compressed or not) are read beside `record.jsonl`, since a log rotated while runs
captured holds the beginning of those runs. History written by hand
(`metadata_store.put_*`, `record_store.append`) is not in the log: it stays in the kept copy.
Run it while no process is capturing into the workspace.
"""

from __future__ import annotations

import heapq
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contexta._liveness import owners_alive
from contexta.capture._batch import CaptureBatch
from contexta.capture._entries import entries_from_lines
from contexta.capture._log_reader import iter_capture_log
from contexta.contract._timestamps import instant_key
from contexta.errors import ContextaError
from contexta.store._database import StoreDatabase
from contexta.store._recovery import close_interrupted_deployment, close_interrupted_execution
from contexta.store._sink import StoreSink

__all__ = ["RepairReport", "rebuild_store"]

_LOG_FILES = ("context.jsonl", "record.jsonl", "artifact.jsonl")  # scopes first when times tie
_BATCH = 4_096
_DATABASE_FILES = ("", "-wal", "-shm")


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What `repair()` rebuilt, what it had to skip, and where the previous store was kept."""

    runs: int
    records: int
    artifacts: int
    interrupted_runs: tuple[str, ...]
    skipped_lines: dict[str, tuple[int, ...]]
    previous_store: Path | None


def _lines(path: Path, rank: int, skipped: list[int]) -> Iterator[tuple[str, int, int, dict[str, Any]]]:
    if not path.exists():
        return
    for number, parsed, terminated in iter_capture_log(path):
        if parsed is None or not terminated or "captured_at" not in parsed or "family" not in parsed:
            skipped.append(number)
            continue
        try:
            key = instant_key(parsed["captured_at"])
        except ContextaError:
            skipped.append(number)
            continue
        yield key, rank, number, parsed


def _log_files(capture_dir: Path, name: str) -> list[Path]:
    """The log file `name` and its rotated siblings (`name.1`, `name.2.gz`, `name-20250101`, ...)."""
    rotated = re.compile(rf"{re.escape(name)}(?:[.-][0-9]+)+(?:\.gz)?")
    siblings = sorted(path for path in capture_dir.glob(f"{name}?*") if rotated.fullmatch(path.name))
    return [*siblings, capture_dir / name]


def _replay(capture_dir: Path, database: StoreDatabase) -> tuple[dict[str, tuple[int, ...]], int, int]:
    sink = StoreSink(database, name="repair", warn_open_elsewhere=False)
    files = [(rank, path) for rank, name in enumerate(_LOG_FILES) for path in _log_files(capture_dir, name)]
    skipped: dict[str, list[int]] = {path.name: [] for _, path in files}
    streams = [_lines(path, rank, skipped[path.name]) for rank, path in files]
    records = artifacts = 0
    pending: list[dict[str, Any]] = []
    for _, _, _, line in heapq.merge(*streams, key=lambda item: item[:3]):
        records += line["family"] == "RECORD"
        artifacts += line["family"] == "ARTIFACT"
        pending.append(line)
        if len(pending) >= _BATCH:
            sink.write(CaptureBatch(entries_from_lines(pending)))
            pending = []
    if pending:
        sink.write(CaptureBatch(entries_from_lines(pending)))
    return {name: tuple(numbers) for name, numbers in skipped.items() if numbers}, records, artifacts


def _close_runs_left_open(database: StoreDatabase, live_dir: Path | None) -> tuple[str, ...]:
    """Runs the log opened but never closed, whose processes are gone: closed `failed` /
    `interrupted` with what they left open, at their last activity in the log (the end times the
    log recorded for everything else are kept as they are). A run whose owner still holds its lock
    is left open: it is still being captured."""
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


def rebuild_store(database_path: Path, capture_dir: Path, live_dir: Path | None = None) -> RepairReport:
    """Rebuild the store at `database_path` from the capture log in `capture_dir` (`live_dir`: where
    capturing processes hold their owner locks, see contexta/_liveness.py)."""
    partial = database_path.with_name(f"{database_path.name}.repair-{os.getpid()}")
    for suffix in _DATABASE_FILES:
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    rebuilt = StoreDatabase(partial)
    try:
        skipped, records, artifacts = _replay(capture_dir, rebuilt)
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
    return RepairReport(int(runs), records, artifacts, interrupted, skipped, previous)
