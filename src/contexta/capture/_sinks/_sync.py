"""Pushing a workspace captured offline (a laptop, a node without network) into a shared store.

`contexta sync --from WORKSPACE --to postgresql://...` reads the workspace's capture log, merged into
capture order exactly as repair reads it (`_repair.py`), and writes it through the store sink in
batches of `SYNC_BATCH` lines. Each batch is recorded in the target's `delivered_batches`, in the
same transaction, under `sync:<workspace id>:<batch number>:<lines through>`, so:

- running it twice writes nothing the second time;
- a sync cut short (Ctrl-C, SIGKILL, a dropped connection) loses at most the batch in flight, which
  was never committed, and the next run goes on from the first batch the target lacks;
- a log that grew since (the workspace captured more) gets only what is new: the merged stream is the
  same up to where the last sync stopped, and a batch the last sync delivered in part is continued
  from the line it stopped at.

The workspace id is a random id kept in the workspace (`metadata/workspace-id`), made on its first
sync: a workspace moved to another directory or machine keeps it. Runs that already reached the
target live (captured with `store.url` pointing at it) are not the job of sync: their parked batches
go there with `contexta sync` without `--to` (see `deliver_parked`).
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contexta.capture._log._batch import CaptureBatch
from contexta.capture._log._entries import entries_from_lines
from contexta.capture._sinks._repair import merged_log_lines
from contexta.capture._sinks._store import StoreSink
from contexta.store import StoreDatabase

__all__ = ["SYNC_BATCH", "SyncReport", "sync_capture_log", "workspace_id"]

SYNC_BATCH = 4_096
_ID_FILE = "workspace-id"
_SYNCED = re.compile(r"sync:([0-9a-f]{32}):(\d+):(\d+)")


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync did: lines of the capture log delivered now, and those the target already had."""

    workspace_id: str
    delivered_lines: int
    already_there_lines: int
    batches: int
    skipped_lines: dict[str, tuple[int, ...]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace_id,
            "delivered_lines": self.delivered_lines,
            "already_there_lines": self.already_there_lines,
            "batches": self.batches,
            "skipped_lines": {name: list(numbers) for name, numbers in self.skipped_lines.items()},
        }


def workspace_id(metadata_dir: Path) -> str:
    """The workspace's sync id, made (atomically, once) on first use."""
    path = metadata_dir / _ID_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if re.fullmatch(r"[0-9a-f]{32}", existing):
        return existing
    metadata_dir.mkdir(parents=True, exist_ok=True)
    made = uuid.uuid4().hex
    partial = path.with_name(f".{_ID_FILE}.{os.getpid()}")
    partial.write_text(made + "\n")
    try:
        os.link(partial, path)  # never replaces an id another process made meanwhile
    except FileExistsError:
        pass
    finally:
        partial.unlink(missing_ok=True)
    return path.read_text().strip()


def _delivered(database: StoreDatabase, source: str) -> dict[int, int]:
    """Batch number -> how many of its lines the target has, from the marks earlier syncs left."""
    done: dict[int, int] = {}
    with database.read() as connection:
        rows = connection.execute(
            "SELECT batch_id FROM delivered_batches WHERE batch_id >= ? AND batch_id < ?",
            (f"sync:{source}:", f"sync:{source};"),
        ).fetchall()
    for (batch_id,) in rows:
        matched = _SYNCED.fullmatch(str(batch_id))
        if matched is not None:
            number, through = int(matched[2]), int(matched[3])
            done[number] = max(done.get(number, 0), through)
    return done


def sync_capture_log(capture_dir: Path, database: StoreDatabase, source: str) -> SyncReport:
    """Deliver the capture log in `capture_dir` into `database` (see the module docstring)."""
    done = _delivered(database, source)
    sink = StoreSink(database, name="sync", warn_open_elsewhere=False)
    skipped: dict[str, list[int]] = {}
    delivered = already = batches = 0
    number = 0
    pending: list[dict[str, Any]] = []

    def deliver(lines: list[dict[str, Any]], number: int) -> None:
        nonlocal delivered, already, batches
        have = min(done.get(number, 0), len(lines))
        already += have
        if have == len(lines):
            return
        entries = entries_from_lines(lines[have:])
        batch = CaptureBatch(entries, batch_id=f"sync:{source}:{number}:{len(lines)}")
        sink.write(batch)
        delivered += len(lines) - have
        batches += 1

    for line in merged_log_lines(capture_dir, skipped):
        pending.append(line)
        if len(pending) >= SYNC_BATCH:
            deliver(pending, number)
            pending = []
            number += 1
    if pending:
        deliver(pending, number)
    return SyncReport(
        source,
        delivered,
        already,
        batches,
        {name: tuple(numbers) for name, numbers in skipped.items() if numbers},
    )
