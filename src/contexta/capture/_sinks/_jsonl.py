"""The local capture log: one append-only JSONL file per family under `<workspace>/cache/capture/`."""

from __future__ import annotations

import os
from pathlib import Path

from contexta.capture._batch import FAMILIES, CaptureBatch
from contexta.errors import ValidationError

__all__ = ["LocalJsonlSink"]

_FILE_NAMES = {"RECORD": "record.jsonl", "ARTIFACT": "artifact.jsonl", "CONTEXT": "context.jsonl"}


class LocalJsonlSink:
    """Appends each batch to the capture log with one `write()` per file.

    Files are opened once with O_APPEND and written unbuffered, so a batch lands in one system call:
    several processes (ranks, DataLoader workers) can share a log without interleaving inside a line,
    and a crash can tear at most the last line. A torn tail left by an earlier crash is closed with a
    newline before appending, so it stays one unreadable line instead of corrupting the next one.
    """

    is_capture_log = True  # sinks marked `after_capture_log` write a batch only after this one has

    def __init__(
        self, directory: str | os.PathLike[str], *, name: str = "local-jsonl", durability: str = "flush"
    ):
        if durability not in ("flush", "fsync"):
            raise ValidationError(
                f"durability must be 'flush' or 'fsync', got {durability!r}", code="config_value_invalid"
            )
        self.name = name
        self.directory = Path(os.path.abspath(directory))
        self.durability = durability
        self._fds: dict[str, int] = {}
        self._pid = os.getpid()
        self._dirty: set[str] = set()
        self._torn: set[str] = set()

    def file_path_for(self, family: str) -> Path:
        """The log file of `family` (`"RECORD"`, `"ARTIFACT"` or `"CONTEXT"`)."""
        try:
            return self.directory / _FILE_NAMES[family.upper()]
        except (KeyError, AttributeError):
            raise ValidationError(
                f"unknown record family {family!r}; use one of {', '.join(FAMILIES)}", code="family_unknown"
            ) from None

    def _fd(self, family: str) -> int:
        if self._pid != os.getpid():  # forked: the parent's descriptors are not ours to share
            self._fds = {}
            self._dirty = set()
            self._torn = set()
            self._pid = os.getpid()
        fd = self._fds.get(family)
        if fd is None:
            path = self.file_path_for(family)
            path.parent.mkdir(parents=True, exist_ok=True)
            # Read-write (not write-only) so the torn-tail check can read the last byte.
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            _terminate_torn_tail(fd)
            self._fds[family] = fd
        return fd

    def write(self, batch: CaptureBatch) -> None:
        for family in FAMILIES:
            data = batch.encoded(family, self.name)
            if data:
                self._append(family, data)
                self._dirty.add(family)

    def _append(self, family: str, data: bytes) -> None:
        """Append one batch's lines, all or nothing: a write the disk cut short (full, over a size
        limit) is taken back, so a batch the writer counts as failed leaves no half of itself behind
        and the next batch does not start inside a broken line."""
        fd = self._fd(family)
        if family in self._torn:  # an earlier failure could not be taken back: close its line first
            _terminate_torn_tail(fd)
            self._torn.discard(family)
        start = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
        except OSError:
            end = os.fstat(fd).st_size
            try:
                if end > start:
                    os.ftruncate(fd, start)  # shrinking needs no space
            except OSError:
                self._torn.add(family)
            raise

    def flush(self) -> None:
        """Nothing is buffered in user space; with `durability="fsync"` the files are synced to disk."""
        if self.durability == "fsync" and self._pid == os.getpid():
            for family in self._dirty:
                os.fsync(self._fds[family])
            self._dirty.clear()

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        if self._pid != os.getpid():
            return
        for fd in fds.values():
            try:
                os.close(fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"LocalJsonlSink({str(self.directory)!r}, name={self.name!r})"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _terminate_torn_tail(fd: int) -> None:
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")
