"""The outbox: batches a sink refused, parked on disk so they can be delivered later.

Each parked batch is one file `<outbox>/<sink name>/<time>-<pid>-<seq>.jsonl` whose first line says
which sink refused it and why, followed by the batch's entries as capture-log lines. A file is
written under a temporary name and renamed into place, so a crash never leaves half a batch behind.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from contexta.capture._batch import CaptureBatch, entries_from_lines, entry_to_line
from contexta.contract._refs import normalize_name
from contexta.contract._timestamps import utc_now

__all__ = ["Outbox", "ReplayReport"]


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What `replay_outbox()` did: batches delivered, batches still parked, and why."""

    delivered_batches: int
    delivered_records: int
    remaining_batches: int
    errors: tuple[str, ...] = ()


class Outbox:
    def __init__(self, directory: Path):
        self.directory = directory
        self._sequence = itertools.count(1)

    def park(self, sink_name: str, batch: CaptureBatch, error: BaseException) -> Path:
        """Write `batch` for `sink_name` to the outbox; returns the file (OSError if the disk refuses)."""
        folder = self.directory / normalize_name(sink_name, "sink name")
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{time.time_ns()}-{os.getpid()}-{next(self._sequence)}"
        header = {
            "sink": sink_name,
            "error": f"{type(error).__name__}: {error}",
            "parked_at": utc_now(),
            "records": len(batch),
        }
        lines = [orjson.dumps(header)] + [orjson.dumps(entry_to_line(entry, sink_name)) for entry in batch]
        partial = folder / f".{stem}.partial"
        partial.write_bytes(b"\n".join(lines) + b"\n")
        final = folder / f"{stem}.jsonl"
        os.replace(partial, final)
        return final

    def parked(self, sink_name: str | None = None) -> list[Path]:
        if not self.directory.exists():
            return []
        folders = (
            [self.directory / normalize_name(sink_name, "sink name")]
            if sink_name
            else sorted(p for p in self.directory.iterdir() if p.is_dir())
        )
        return sorted(
            (path for folder in folders if folder.exists() for path in folder.glob("*.jsonl")),
            key=lambda path: tuple(int(part) for part in path.stem.split("-")),
        )

    def replay(self, deliver: Callable[[str, CaptureBatch], None]) -> ReplayReport:
        """Hand every parked batch, oldest first, to `deliver(sink_name, batch)`; delete it once delivered.

        A file is claimed by renaming it before delivery, so two processes replaying at once never
        deliver the same batch twice.
        """
        delivered = records = 0
        errors: list[str] = []
        for path in self.parked():
            claimed = path.with_suffix(f".claimed-{os.getpid()}")
            try:
                os.rename(path, claimed)
            except FileNotFoundError:
                continue  # another process claimed it
            try:
                raw = claimed.read_bytes().splitlines()
                header = orjson.loads(raw[0])
                batch = CaptureBatch(
                    entries_from_lines(orjson.loads(line) for line in raw[1:] if line.strip()),
                    batch_id=f"outbox:{header['sink']}:{path.stem}",
                )
                deliver(str(header["sink"]), batch)
            except Exception as error:
                os.rename(claimed, path)
                errors.append(f"{path.name}: {type(error).__name__}: {error}")
                continue
            claimed.unlink()
            delivered += 1
            records += len(batch)
        return ReplayReport(delivered, records, len(self.parked()), tuple(errors))
