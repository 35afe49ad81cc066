"""Rebuilding the canonical store from the capture log, for when the store is lost or damaged.

The capture log is written before the store (the store sink waits for it), so it holds everything the
store had from live capture, and more after a crash. Repair replays the log's three files, merged into
capture order, through the same store sink live capture uses, into a new database file; the store
then moves the old one aside (kept, never deleted) and puts the new one in its place
(`contexta.store.rebuild_database`). Rotated files count as
the log too: the log's own sealed segments (`record.000001.jsonl.zst`, compressed or not yet), and
`record.jsonl.1`, `record.jsonl.2.gz`, `record.jsonl-20250101` (logrotate's names, by number or
date, compressed or not) are read beside `record.jsonl`, since a log rotated while runs captured
holds the beginning of those runs. History written by hand
(`metadata_store.put_*`, `record_store.append`) is not in the log: it stays in the kept copy.
Run it while no process is capturing into the workspace.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contexta.capture._log._batch import CaptureBatch
from contexta.capture._log._entries import entries_from_lines
from contexta.capture._log._reader import iter_capture_log
from contexta.capture._log._segments import DamagedSegmentError, log_segments
from contexta.capture._sinks._store import StoreSink
from contexta.config import CAPTURE_LOG_FILES
from contexta.contract._timestamps import instant_key
from contexta.errors import ContextaError
from contexta.store import StoreDatabase, rebuild_database

__all__ = ["RepairReport", "rebuild_store"]

_BATCH = 4_096


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What `repair()` rebuilt, what it had to skip, and where the previous store was kept."""

    runs: int
    records: int
    artifacts: int
    interrupted_runs: tuple[str, ...]
    skipped_lines: dict[str, tuple[int, ...]]
    previous_store: Path | None


def _lines(
    files: list[Path], rank: int, skipped: dict[str, list[int]]
) -> Iterator[tuple[str, int, int, int, dict[str, Any]]]:
    """The lines of a run of one family's files, file after file (one open at a time), keyed for
    the merge: time, then the family's rank, then the file's place in the run, then the line's."""
    for place, path in enumerate(files):
        skipped_here = skipped.setdefault(path.name, [])
        number = 0
        try:
            for number, parsed, terminated in iter_capture_log(path):
                if parsed is None or not terminated or "captured_at" not in parsed or "family" not in parsed:
                    skipped_here.append(number)
                    continue
                try:
                    key = instant_key(parsed["captured_at"])
                except ContextaError:
                    skipped_here.append(number)
                    continue
                yield key, rank, place, number, parsed
        except DamagedSegmentError:  # the rest of a damaged compressed segment counts as one line
            skipped_here.append(number + 1)


def _log_runs(capture_dir: Path, family: str) -> list[list[Path]]:
    """The log of `family` as runs of files, each run in capture order: its segments (the active
    file last), and each file logrotate rotated away (`record.jsonl.1`, `record.jsonl.2.gz`,
    `record.jsonl-20250101`, ...) on its own, since their names do not say their order."""
    name = CAPTURE_LOG_FILES[family]
    rotated = re.compile(rf"{re.escape(name)}(?:[.-][0-9]+)+(?:\.gz)?")
    siblings = sorted(path for path in capture_dir.glob(f"{name}?*") if rotated.fullmatch(path.name))
    return [[path] for path in siblings] + [[segment.path for segment in log_segments(capture_dir, family)]]


def merged_log_lines(capture_dir: Path, skipped: dict[str, list[int]]) -> Iterator[dict[str, Any]]:
    """Every readable line of the capture log in `capture_dir`, all families and segments merged
    into capture order (what repair and sync replay); unreadable ones are noted in `skipped`."""
    streams = [
        _lines(files, rank, skipped)
        for rank, family in enumerate(CAPTURE_LOG_FILES)
        for files in _log_runs(capture_dir, family)
    ]
    for *_, line in heapq.merge(*streams, key=lambda item: item[:4]):
        yield line


def _replay(capture_dir: Path, database: StoreDatabase) -> tuple[dict[str, tuple[int, ...]], int, int]:
    sink = StoreSink(database, name="repair", warn_open_elsewhere=False)
    skipped: dict[str, list[int]] = {}
    records = artifacts = 0
    pending: list[dict[str, Any]] = []
    for line in merged_log_lines(capture_dir, skipped):
        records += line["family"] == "RECORD"
        artifacts += line["family"] == "ARTIFACT"
        pending.append(line)
        if len(pending) >= _BATCH:
            sink.write(CaptureBatch(entries_from_lines(pending)))
            pending = []
    if pending:
        sink.write(CaptureBatch(entries_from_lines(pending)))
    return {name: tuple(numbers) for name, numbers in skipped.items() if numbers}, records, artifacts


def rebuild_store(database_path: Path, capture_dir: Path, live_dir: Path | None = None) -> RepairReport:
    """Rebuild the store at `database_path` from the capture log in `capture_dir` (`live_dir`: where
    capturing processes hold their owner locks, see contexta/_liveness.py)."""
    replayed: list[tuple[dict[str, tuple[int, ...]], int, int]] = []
    rebuilt = rebuild_database(
        database_path, lambda database: replayed.append(_replay(capture_dir, database)), live_dir
    )
    skipped, records, artifacts = replayed[0]
    return RepairReport(
        rebuilt.runs, records, artifacts, rebuilt.interrupted_runs, skipped, rebuilt.previous_store
    )
