"""Reading the capture log from its end and as it grows, one complete line at a time, across the
segments it is sealed into.

A line counts once its newline is written: the writer appends whole batches in one `write()`, so an
unterminated last line is a write in progress (or a crash's torn tail) and is held back, never parsed
half. Lines that are not JSON objects are skipped, as `contexta.capture.read_capture_log` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import orjson

from contexta.config import capture_log_family

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


def _sealed_tail(path: Path, count: int) -> list[dict[str, Any]]:
    """The last `count` readable lines of the sealed segments before the active file `path`, newest
    segment first until enough are found (each is read whole: they are compressed)."""
    family = capture_log_family(path.name)
    if family is None or count <= 0:
        return []
    # Here, not at the top: a read command that never looks back into sealed segments (`runs`)
    # does not pay for importing capture.
    from contexta.capture import DamagedSegmentError, log_segments, open_segment

    found: list[dict[str, Any]] = []
    for segment in reversed([seg for seg in log_segments(path.parent, family) if not seg.active]):
        try:
            with open_segment(segment.path) as handle:
                parsed = [line for line in map(_parse, handle) if line is not None]
        except (OSError, DamagedSegmentError):
            continue
        found = parsed[-(count - len(found)) :] + found
        if len(found) >= count:
            break
    return found


def last_lines(path: Path, count: int) -> tuple[list[dict[str, Any]], LogFollower]:
    """The last `count` readable complete lines of the log whose active file is `path` (back into
    its sealed segments when the active one holds fewer), and a follower that goes on from just
    past the last complete line, in the very file those lines were read from."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - handed to the follower, which closes it
    except FileNotFoundError:
        return _sealed_tail(path, count), LogFollower(path)
    lines, offset = _last_complete(handle, count)
    if len(lines) < count:
        lines = _sealed_tail(path, count - len(lines)) + lines
    return lines, LogFollower(path, handle, offset)


def _same_file(path: Path, handle: IO[bytes]) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


class LogFollower:
    """New complete lines of one log file since the last call, across rotations: it holds the file
    it reads open, so when the path comes to name another file (the active segment sealed and
    renamed, logrotate, a re-created file) it first reads the old one to its end (nothing is
    written there after the rename), then starts the new one from its beginning. Tolerates the
    file appearing late, and a truncated file (read again from the start)."""

    def __init__(self, path: Path, handle: IO[bytes] | None = None, offset: int = 0):
        self.path = path
        self._handle = handle
        self.offset = offset

    def read_new(self) -> list[dict[str, Any]]:
        if self._handle is None and not self._open():
            return []
        fresh = self._drain()
        if not _same_file(self.path, self._assert_open()):
            fresh += self._drain()  # what was written before it was renamed away
            self.close()
            if self._open():
                fresh += self._drain()
        return fresh

    def _assert_open(self) -> IO[bytes]:
        assert self._handle is not None
        return self._handle

    def _open(self) -> bool:
        try:
            self._handle = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            return False
        self.offset = 0
        return True

    def _drain(self) -> list[dict[str, Any]]:
        handle = self._assert_open()
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
