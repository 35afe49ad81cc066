"""Reading the capture log from its end and as it grows, one complete line at a time, across the
segments it is sealed into.

A line counts once its newline is written: the writer appends whole batches in one `write()`, so an
unterminated last line is a write in progress (or a crash's torn tail) and is held back, never parsed
half. Lines that are not JSON objects are skipped, as `contexta.capture.read_capture_log` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from contexta.config import capture_log_family

if TYPE_CHECKING:
    from contexta.capture import LogSegment

__all__ = ["LogFollower", "last_lines"]

_BLOCK = 64 * 1024


def _parse(raw: bytes) -> dict[str, Any] | None:
    text = raw.strip()
    if not text:
        return None
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _complete_lines(data: bytes, at_file_start: bool) -> tuple[list[bytes], int]:
    """The newline-terminated lines of `data` (a piece of the file) and where the last one ends; the
    first piece is dropped unless `data` starts the file, since it may be the end of a longer line."""
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1]
    return (lines if at_file_start else lines[1:]), end


def _last_complete(handle: IO[bytes], count: int) -> tuple[list[dict[str, Any]], int]:
    """The last `count` readable complete lines of an open plain file, and the offset just past the
    last complete line. Reads backwards in blocks, so the cost is the lines asked for, not the size
    of the log."""
    position = handle.seek(0, os.SEEK_END)
    data = b""
    while position > 0:
        step = min(_BLOCK, position)
        position -= step
        handle.seek(position)
        data = handle.read(step) + data
        complete, end = _complete_lines(data, position == 0)
        if end and sum(1 for raw in complete if raw.strip()) >= count:
            break
    complete, end = _complete_lines(data, position == 0)
    lines = [line for line in map(_parse, complete) if line is not None]
    return (lines[-count:] if count else []), position + end


def _sealed(path: Path) -> list[LogSegment]:
    """The sealed segments of the log whose active file is `path`, oldest first."""
    family = capture_log_family(path.name)
    if family is None:
        return []
    # Here, not at the top: a read command that never looks into sealed segments (`runs`) does not
    # pay for importing capture.
    from contexta.capture import log_segments

    return [segment for segment in log_segments(path.parent, family) if not segment.active]


def _next_sequence(path: Path) -> int:
    """The number the active file at `path` gets when it is sealed next."""
    return max((segment.sequence or 0 for segment in _sealed(path)), default=0) + 1


def _segment_lines(segment: LogSegment) -> list[dict[str, Any]]:
    """The readable complete lines of a sealed segment (read whole: it may be compressed)."""
    from contexta.capture import DamagedSegmentError, open_segment

    try:
        with open_segment(segment.path) as handle:
            return [line for line in map(_parse, handle) if line is not None]
    except (OSError, DamagedSegmentError):
        return []


def _sealed_tail(path: Path, count: int) -> list[dict[str, Any]]:
    """The last `count` readable lines of the sealed segments before the active file `path`, newest
    segment first until enough are found."""
    found: list[dict[str, Any]] = []
    if count <= 0:
        return found
    for segment in reversed(_sealed(path)):
        found = _segment_lines(segment)[-(count - len(found)) :] + found
        if len(found) >= count:
            break
    return found


def _open_active(path: Path) -> tuple[IO[bytes], int] | None:
    """The active file at `path`, opened, and the number it will be sealed as; None if there is no
    active file. Checked on both sides of the open, so a sealing in between is never mistaken."""
    while True:
        sequence = _next_sequence(path)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            return None
        if _same_file(path, handle) and _next_sequence(path) == sequence:
            return handle, sequence
        handle.close()


def last_lines(path: Path, count: int) -> tuple[list[dict[str, Any]], LogFollower]:
    """The last `count` readable complete lines of the log whose active file is `path` (back into
    its sealed segments when the active one holds fewer), and a follower that goes on from just
    past the last complete line, in the very file those lines were read from."""
    follower = LogFollower(path)
    opened = _open_active(path)
    if opened is None:
        return _sealed_tail(path, count), follower
    handle, sequence = opened
    lines, offset = _last_complete(handle, count)
    if len(lines) < count:
        lines = _sealed_tail(path, count - len(lines)) + lines
    follower.hold(handle, sequence, offset)
    return lines, follower


def _same_file(path: Path, handle: IO[bytes]) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


class LogFollower:
    """New complete lines of one family's log since the last call, across its segments.

    It holds the active file it reads open, knowing the number that file will be sealed as. When the
    path comes to name another file (the file was sealed and renamed, then maybe compressed), it
    reads the held file to its end (nothing is written there after the rename), then every segment
    sealed after it, whole, then the new active file from its start: so however many sealings
    happen between two polls, each line is printed once, in order. A file logrotate renamed away is
    finished the same way. Tolerates the file appearing late, and a truncated file (read again from
    the start)."""

    def __init__(self, path: Path):
        self.path = path
        self._handle: IO[bytes] | None = None
        self._sequence = 0  # what the held file is sealed as
        self._read_through = _next_sequence(path) - 1  # sealed segments already accounted for
        self.offset = 0

    def hold(self, handle: IO[bytes], sequence: int, offset: int) -> None:
        self._handle, self._sequence, self.offset = handle, sequence, offset
        self._read_through = sequence - 1

    def read_new(self) -> list[dict[str, Any]]:
        fresh: list[dict[str, Any]] = []
        if self._handle is None:
            self._attach(fresh)
            if self._handle is None:
                return fresh
        fresh += self._drain()
        if not _same_file(self.path, self._held()):
            fresh += self._drain()  # what was written before it was renamed away
            self.close()
            self._read_through = max(self._read_through, self._sequence)
            self._attach(fresh)
            if self._handle is not None:
                fresh += self._drain()
        return fresh

    def _attach(self, fresh: list[dict[str, Any]]) -> None:
        """Read the segments sealed since the last one read, then hold the active file."""
        while True:
            for segment in _sealed(self.path):
                if segment.sequence is not None and segment.sequence > self._read_through:
                    fresh += _segment_lines(segment)
                    self._read_through = segment.sequence
            opened = _open_active(self.path)
            if opened is None:
                return
            handle, sequence = opened
            if sequence <= self._read_through + 1:  # less: the old file was moved by hand, not sealed
                self.hold(handle, sequence, 0)
                return
            handle.close()  # sealed again meanwhile: read that segment first

    def _held(self) -> IO[bytes]:
        assert self._handle is not None
        return self._handle

    def _drain(self) -> list[dict[str, Any]]:
        handle = self._held()
        size = os.fstat(handle.fileno()).st_size
        if size < self.offset:  # truncated: start over
            self.offset = 0
        handle.seek(self.offset)
        data = handle.read(size - self.offset)
        complete, end = _complete_lines(data, True)
        self.offset += end
        return [line for line in map(_parse, complete) if line is not None]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
