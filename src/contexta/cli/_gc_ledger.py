"""gc's ledger: the executions it set out to reclaim, and the artifact copies they may leave unused.

Each gc appends one line here (synced) before it changes anything, so a gc killed halfway is finished
by the next one: an execution in the ledger that is no longer in the store has its lines taken out of
sealed log segments and its parked batches removed, and a listed artifact copy no manifest points at
any more is deleted. Lines of a reclaimed execution still in an active segment when it ran are taken
out by a later gc, once that segment is sealed. An execution gc kept after all (opened again, or
live) is still in the store, so its lines are never touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from contexta.contract import utc_now

__all__ = ["Ledger", "ledger_path"]


def ledger_path(cache_dir: Path) -> Path:
    return cache_dir / "gc" / "reclaimed.jsonl"


@dataclass(slots=True)
class Ledger:
    """What every gc of this workspace set out to reclaim (read back whole; a torn last line, from a
    kill mid-append, is skipped: its gc had not begun changing anything)."""

    path: Path
    executions: set[str] = field(default_factory=set)
    artifact_files: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, path: Path) -> Ledger:
        ledger = cls(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return ledger
        for raw in data.splitlines():
            try:
                entry = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                ledger.executions.update(map(str, entry.get("executions", ())))
                ledger.artifact_files.update(map(str, entry.get("artifact_files", ())))
        return ledger

    def append(self, executions: list[str], artifact_files: list[str]) -> None:
        """Write down (synced) what this gc is about to reclaim."""
        if not executions and not artifact_files:
            return
        entry = {"at": utc_now(), "executions": executions, "artifact_files": artifact_files}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            # A newline first: a line torn by an earlier kill stays its own (skipped) line.
            os.write(descriptor, b"\n" + orjson.dumps(entry) + b"\n")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        self.executions.update(executions)
        self.artifact_files.update(artifact_files)
