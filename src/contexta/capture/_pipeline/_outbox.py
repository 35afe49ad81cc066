"""The outbox: batches a sink refused, parked on disk so they can be delivered later.

Each parked batch is one file `<outbox>/<sink name>/<time>-<pid>-<seq>.jsonl` whose first line says
which sink refused it and why, followed by the batch's entries as capture-log lines.

Parking is all or nothing. A file is written under a temporary name (`.<stem>.partial`) and renamed
into place; a write the disk refuses removes its partial file at once, so the space it took is free
for the next, smaller batch. A partial file whose writer died mid-write (killed) is removed by the
next park or replay: a writer holds a shared `flock` on the folder's lock file
(`<outbox>/.<sink name>.lock`) while a partial file of its own exists, and partial files are
swept only under that lock held exclusively, so a live writer's file is never taken from it.

Replay claims a parked file with an exclusive `flock` on the file itself, not by renaming it. The
kernel releases the lock however the replaying process ends (Ctrl-C, a kill), so a batch whose
delivery was cut short is still parked and the next replay delivers it; a file that another live
process is delivering is skipped, never taken from it. A delivered file is removed while still
locked. A sink that must not receive a batch twice keeps its own record of what it has: the store
records replayed batch ids in the same transaction as the batch, and the capture log notes where it
is about to append (see `OutboxNote`).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from contexta.capture._log._batch import CaptureBatch, entries_from_lines, entry_to_line
from contexta.capture._sinks._base import DeliveryNote
from contexta.contract._refs import normalize_name
from contexta.contract._timestamps import utc_now

__all__ = ["Outbox", "OutboxNote", "ReplayReport"]

_PARTIAL = ".partial"
_NOTE = ".note"
_OLD_CLAIM = ".claimed-"  # how an earlier Contexta claimed a file: by renaming it


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What `replay_outbox()` did: batches delivered, batches still parked, and why."""

    delivered_batches: int
    delivered_records: int
    remaining_batches: int
    errors: tuple[str, ...] = ()


class OutboxNote:
    """The `DeliveryNote` the outbox keeps: a small note a sink keeps beside a parked batch while
    delivering it.

    A delivery cut short (Ctrl-C, a kill) leaves the note behind, and the next attempt at the same
    batch reads it back: the capture log writes down where it is about to append, so a retry can
    tell which of the batch's lines are already in the log. The note is replaced whole (written
    aside and renamed), so a reader sees either the last note or the one before it, never half.
    """

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[str, Any] | None:
        """The note an earlier, unfinished attempt left; None if there is none."""
        try:
            note = orjson.loads(self.path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        return note if isinstance(note, dict) else None

    def write(self, note: dict[str, Any]) -> None:
        with _writing(self.path.parent):
            _write_whole(self.path, orjson.dumps(note))

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class Outbox:
    def __init__(self, directory: Path):
        self.directory = directory
        self._sequence = itertools.count(1)
        self._swept: set[Path] = set()  # folders this process has cleaned of abandoned partial files

    def park(self, sink_name: str, batch: CaptureBatch, error: BaseException) -> Path:
        """Write `batch` for `sink_name` to the outbox; returns the file. Raises OSError if the disk
        refuses, leaving nothing of the batch behind."""
        folder = self.directory / normalize_name(sink_name, "sink name")
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{time.time_ns()}-{os.getpid()}-{next(self._sequence)}"
        header = {
            "sink": sink_name,
            "error": f"{type(error).__name__}: {error}",
            "parked_at": utc_now(),
            "records": len(batch),
        }
        if batch.batch_id is not None:  # the id the sink was first given it under (see `replay`)
            header["batch_id"] = batch.batch_id
        lines = [orjson.dumps(header)] + [orjson.dumps(entry_to_line(entry, sink_name)) for entry in batch]
        final = folder / f"{stem}.jsonl"
        if folder not in self._swept:
            self._swept.add(folder)
            _sweep(folder)
        try:
            with _writing(folder):
                _write_whole(final, b"\n".join(lines) + b"\n")
        except OSError:
            _sweep(folder)  # a disk this full may hold a dead writer's partial file: free its space
            raise
        return final

    def _folders(self, sink_name: str | None = None) -> list[Path]:
        if not self.directory.exists():
            return []
        if sink_name:
            return [self.directory / normalize_name(sink_name, "sink name")]
        return sorted(p for p in self.directory.iterdir() if p.is_dir())

    def parked(self, sink_name: str | None = None) -> list[Path]:
        return sorted(
            (
                path
                for folder in self._folders(sink_name)
                if folder.exists()
                for path in folder.glob("*.jsonl")
            ),
            key=lambda path: tuple(int(part) for part in path.stem.split("-")),
        )

    def redeliver_own(
        self,
        sink_name: str,
        deliver: Callable[[str, CaptureBatch, DeliveryNote], None],
        refused_for_good: Callable[[Exception], bool] = lambda _: False,
    ) -> bool:
        """Deliver the batches this process parked for `sink_name`, oldest first, stopping at the first
        that fails, so they reach the sink in the order they were captured; True once none is left.
        A batch whose failure `refused_for_good` names (the sink can never take it) stays parked and
        is passed over, never waited for."""
        own = f"-{os.getpid()}-"
        refused: set[Path] = set()
        for path in self.parked(sink_name):
            if own not in path.name:
                continue
            try:
                if _replay_one(path, deliver) is None and path.exists():
                    return False  # being delivered by someone else: wait for it, in order
            except Exception as error:
                if not refused_for_good(error):
                    raise
                refused.add(path)
        return not any(own in path.name and path not in refused for path in self.parked(sink_name))

    def replay(self, deliver: Callable[[str, CaptureBatch, DeliveryNote], None]) -> ReplayReport:
        """Hand every parked batch, oldest first, to `deliver(sink_name, batch, note)`; remove it once
        delivered. A batch that fails stays parked; one another process is delivering is skipped."""
        for folder in self._folders():
            _sweep(folder)
        delivered = records = 0
        errors: list[str] = []
        for path in self.parked():
            try:
                count = _replay_one(path, deliver)
            except Exception as error:
                errors.append(f"{path.name}: {type(error).__name__}: {error}")
                continue
            if count is not None:
                delivered += 1
                records += count
        return ReplayReport(delivered, records, len(self.parked()), tuple(errors))


def _replay_one(path: Path, deliver: Callable[[str, CaptureBatch, DeliveryNote], None]) -> int | None:
    """Deliver one parked file under its lock; its record count, or None if it was not ours to deliver."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None  # delivered by another process since the listing
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # another live process is delivering it
        if os.fstat(descriptor).st_nlink == 0:
            return None  # delivered and removed by the process that held the lock before us
        with os.fdopen(os.dup(descriptor), "rb") as handle:
            raw = handle.read().splitlines()
        header = orjson.loads(raw[0])
        batch = CaptureBatch(
            entries_from_lines(orjson.loads(line) for line in raw[1:] if line.strip()),
            # A sink that was given the batch under an id before it was parked (a PostgreSQL store
            # whose commit may have gone through before the connection dropped) gets the same id, so
            # the store keeps it once.
            batch_id=str(header.get("batch_id") or f"outbox:{header['sink']}:{path.stem}"),
        )
        note = OutboxNote(_note_path(path))
        deliver(str(header["sink"]), batch, note)
        path.unlink()  # still locked: nobody can have started on it meanwhile
        note.discard()
        return len(batch)
    finally:
        os.close(descriptor)  # releases the claim, however this ends


def _note_path(parked: Path) -> Path:
    return parked.with_name(f".{parked.stem}{_NOTE}")


def _lock_path(folder: Path) -> Path:
    # Beside the folder, not in it: a delivered-out folder is empty.
    return folder.with_name(f".{folder.name}.lock")


@contextlib.contextmanager
def _writing(folder: Path) -> Iterator[None]:
    """Hold the folder's lock shared while writing a partial file, so no sweep takes it from us."""
    descriptor = os.open(_lock_path(folder), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH)
        yield
    finally:
        os.close(descriptor)


def _write_whole(final: Path, data: bytes) -> None:
    """Put `data` at `final` in one piece: written and synced aside, then renamed. On any failure
    the partial file is removed, so nothing of it is left to hold the disk's space."""
    partial = final.with_name(f".{final.name.removesuffix('.jsonl')}{_PARTIAL}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)  # a power loss after the rename must not leave an empty batch
        finally:
            os.close(descriptor)
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _sweep(folder: Path) -> None:
    """Remove what dead processes left in `folder`: partial files (only while no live process writes
    one: the lock taken exclusively), notes of batches already delivered, and files an earlier
    Contexta claimed by renaming, whose process is gone, which are parked again."""
    if not folder.is_dir():
        return
    try:
        descriptor = os.open(_lock_path(folder), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # someone is writing: their partial file is not abandoned; sweep another time
        for path in folder.iterdir():
            name = path.name
            try:
                if name.endswith(_PARTIAL) or _delivered_note(folder, name):
                    path.unlink(missing_ok=True)
                elif _OLD_CLAIM in name:
                    _restore_old_claim(path)
            except OSError:
                continue
    finally:
        os.close(descriptor)


def _delivered_note(folder: Path, name: str) -> bool:
    """A delivery note whose batch is no longer parked (delivered; removed just before its note)."""
    return name.endswith(_NOTE) and not (folder / f"{name[1 : -len(_NOTE)]}.jsonl").exists()


def _restore_old_claim(path: Path) -> None:
    stem, _, pid = path.name.partition(_OLD_CLAIM)
    if not pid.isdigit() or _process_exists(int(pid)):
        return
    os.replace(path, path.with_name(f"{stem}.jsonl"))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
