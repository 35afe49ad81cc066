"""The outbox's parked batches seen by execution: their space (`contexta du`) and removing the ones of
reclaimed executions (`contexta gc`).

A parked batch is removed whole, and only when every line of it belongs to executions being
reclaimed: a batch that also holds another execution's lines stays parked (a batch is delivered all
or nothing, so it is not cut). It is removed under the same exclusive `flock` replay takes on it, so a
batch being delivered right now is left alone.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from contexta.capture._log._compaction import SegmentUsage, execution_of_raw_line
from contexta.capture._pipeline._outbox import Outbox

__all__ = ["OutboxReclaim", "outbox_usage", "reclaim_outbox"]


def _files(outbox_dir: Path) -> list[Path]:
    found: list[Path] = []
    for folder, _, names in os.walk(outbox_dir):
        found.extend(Path(folder) / name for name in names)
    return sorted(found)


def _shares(data: bytes) -> dict[str | None, int]:
    lines = data.splitlines(keepends=True)
    shares: dict[str | None, int] = {}
    if lines:
        shares[None] = len(lines[0])  # the header: which sink refused the batch, and why
    for raw in lines[1:]:
        execution = execution_of_raw_line(raw)
        shares[execution] = shares.get(execution, 0) + len(raw)
    return shares


def outbox_usage(outbox_dir: str | os.PathLike[str]) -> list[SegmentUsage]:
    """Every file in the outbox with its size; a parked batch's bytes are split by execution in
    proportion to its lines (its header line and other files, such as locks and notes, name none)."""
    usage: list[SegmentUsage] = []
    parked = set(Outbox(Path(outbox_dir)).parked())
    for path in _files(Path(outbox_dir)):
        try:
            size = path.stat().st_size
            shares: dict[str | None, int] = _shares(path.read_bytes()) if path in parked else {None: size}
        except OSError:
            continue
        usage.append(SegmentUsage(path, "outbox", size, shares))
    return usage


@dataclass(frozen=True, slots=True)
class OutboxReclaim:
    """Parked batches removed (and their bytes), and those kept because they hold other executions'
    lines too or were being delivered."""

    batches_removed: int = 0
    bytes_removed: int = 0
    batches_kept_mixed: int = 0
    batches_kept_busy: int = 0


def reclaim_outbox(outbox_dir: str | os.PathLike[str], execution_ids: Collection[str]) -> OutboxReclaim:
    """Remove the parked batches whose every line belongs to `execution_ids`."""
    wanted = frozenset(execution_ids)
    removed = removed_bytes = mixed = busy = 0
    if not wanted:
        return OutboxReclaim()
    for path in Outbox(Path(outbox_dir)).parked():
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy += 1
                continue
            if os.fstat(descriptor).st_nlink == 0:
                continue  # delivered and removed by the replay that held the lock before us
            with os.fdopen(os.dup(descriptor), "rb") as handle:
                data = handle.read()
            executions = {key for key in _shares(data) if key is not None}
            if not executions or not executions <= wanted:
                if executions & wanted:
                    mixed += 1
                continue
            path.unlink(missing_ok=True)  # still locked: no replay can have started on it
            removed += 1
            removed_bytes += len(data)
        finally:
            os.close(descriptor)
    return OutboxReclaim(removed, removed_bytes, mixed, busy)
