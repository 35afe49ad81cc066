"""Where a workspace's bytes are, by kind (exact: file sizes) and by execution (apportioned), for
`contexta du` and `contexta gc`.

Exact: every kind's total is the sum of its files' sizes (`st_size`), and they add up to the
workspace. Estimated: an execution's share of the log (each segment's bytes split by its lines'
bytes: compressed lines are not separable), of the store (each table's bytes split by its rows), and
of a stored artifact copy or a parked batch that several executions share (split evenly, or by lines).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from contexta.config import UnifiedConfig
from contexta.store import ExecutionSummary, StoreDatabase, artifact_copies, store_usage

__all__ = ["ESTIMATES", "EXECUTION_PARTS", "KINDS", "WorkspaceUsage", "kind_sizes", "measure"]

# Kinds of bytes, each a set of files: the log's sealed segments (compressed or still plain), its active
# files, anything else in the capture directory (temporaries, logrotate's copies), the store (file,
# write-ahead log, shared memory), stored artifact copies, parked batches, and the rest of the workspace.
KINDS = (
    "log_sealed_compressed",
    "log_sealed_plain",
    "log_active",
    "log_other",
    "store",
    "artifacts",
    "outbox",
    "other",
)
# The parts an execution's share is given in: `log` (sealed segments, what gc can take back) and
# `log_active` (the active files, which gc never touches).
EXECUTION_PARTS = ("log", "log_active", "store", "artifacts", "outbox")

ESTIMATES = {
    "log": "each log segment's bytes split among executions by their lines' bytes (apportioned)",
    "artifacts": "a stored copy several executions' manifests point at is split evenly among them",
    "outbox": "each parked batch's bytes split among executions by their lines' bytes",
}


@dataclass(slots=True)
class WorkspaceUsage:
    """Bytes by kind (exact) and by execution (estimated); `unattributed` is what belongs to no stored
    execution (shared store pages, lines of executions not in the store, other files), by part."""

    root: Path
    by_kind: dict[str, int]
    by_execution: dict[str, dict[str, float]] = field(default_factory=dict)
    unattributed: dict[str, float] = field(default_factory=dict)
    store_method: str = ""

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def execution_total(self, execution_id: str, *, reclaimable: bool = False) -> float:
        """An execution's estimated bytes; `reclaimable` leaves out its lines in active segments."""
        parts = self.by_execution.get(execution_id, {})
        return sum(size for part, size in parts.items() if not (reclaimable and part == "log_active"))


def _files_under(directory: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for folder, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            try:
                status = os.lstat(path)
            except OSError:
                continue
            sizes[path] = status.st_size
    return sizes


def kind_sizes(config: UnifiedConfig) -> dict[str, int]:
    """Bytes by kind from file sizes alone (no file is read): what gc compares before and after."""
    from contexta.capture import log_segments
    from contexta.config import CAPTURE_LOG_FILES

    layout = config.workspace
    sizes = dict.fromkeys(KINDS, 0)
    counted: set[str] = set()
    segment_paths: dict[str, str] = {}
    for family in CAPTURE_LOG_FILES:
        for segment in log_segments(layout.capture_dir, family):
            kind = (
                "log_active"
                if segment.active
                else "log_sealed_compressed"
                if segment.compressed
                else "log_sealed_plain"
            )
            segment_paths[str(segment.path)] = kind
    for path, size in _files_under(layout.capture_dir).items():
        sizes[segment_paths.get(path, "log_other")] += size
        counted.add(path)
    for suffix in ("", "-wal", "-shm"):
        path = f"{layout.store_file}{suffix}"
        try:
            sizes["store"] += os.lstat(path).st_size
            counted.add(path)
        except OSError:
            pass
    for kind, directory in (("artifacts", layout.artifacts_dir), ("outbox", layout.outbox_dir)):
        for path, size in _files_under(directory).items():
            if path not in counted:
                sizes[kind] += size
                counted.add(path)
    for path, size in _files_under(layout.root).items():
        if path not in counted:
            sizes["other"] += size
    return sizes


def measure(
    config: UnifiedConfig, database: StoreDatabase, executions: list[ExecutionSummary]
) -> WorkspaceUsage:
    """Bytes by kind and by execution: reads the whole log (decompressing sealed segments) and asks
    the store for its tables' sizes."""
    from contexta.capture import log_usage, outbox_usage

    layout = config.workspace
    known = {execution.execution_id for execution in executions}
    usage = WorkspaceUsage(layout.root, kind_sizes(config))
    shares: dict[str, dict[str, float]] = {execution: {} for execution in known}
    unattributed: dict[str, float] = dict.fromkeys(EXECUTION_PARTS, 0.0)

    def add(execution: str | None, part: str, size: float) -> None:
        if execution in shares:
            shares[execution][part] = shares[execution].get(part, 0.0) + size
        else:
            unattributed[part] += size

    log = log_usage(layout.capture_dir)
    for segment in log.segments:
        part = "log_active" if segment.kind == "active" else "log"
        for execution, size in segment.apportioned().items():
            add(execution, part, size)
    unattributed["log"] += sum(log.other.values())
    store = store_usage(database)
    usage.store_method = store.method
    for execution, size in store.by_execution.items():
        add(execution, "store", size)
    unattributed["store"] += store.total - sum(
        size for execution, size in store.by_execution.items() if execution in shares
    )
    copies = artifact_copies(database)
    for path, size in _files_under(layout.artifacts_dir).items():
        holders = [execution for execution in copies.get(path, []) if execution in shares]
        for execution in holders:
            add(execution, "artifacts", size / len(holders))
        if not holders:
            unattributed["artifacts"] += size
    for parked in outbox_usage(layout.outbox_dir):
        for execution, size in parked.apportioned().items():
            add(execution, "outbox", size)
    usage.by_execution = shares
    usage.unattributed = unattributed
    return usage
