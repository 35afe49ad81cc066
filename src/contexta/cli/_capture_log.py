"""Reading the capture log from its end and as it grows, one complete line at a time.

A line counts once its newline is written: the writer appends whole batches in one `write()`, so an
unterminated last line is a write in progress (or a crash's torn tail) and is held back, never parsed
half. Lines that are not JSON objects are skipped, as `contexta.capture.read_capture_log` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

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


def last_lines(path: Path, count: int) -> tuple[list[dict[str, Any]], int]:
    """The last `count` readable complete lines of `path`, and the offset just past the last complete
    line (where following it starts). A missing file has no lines and offset 0.

    Reads backwards in blocks, so the cost is the lines asked for, not the size of the log.
    """
    try:
        with open(path, "rb") as handle:
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
    except FileNotFoundError:
        return [], 0
    complete, end = _complete_lines(data, position == 0)
    lines = [line for line in map(_parse, complete) if line is not None]
    return (lines[-count:] if count else []), position + end


class LogFollower:
    """New complete lines of one log file since the last call: tolerates the file appearing late and
    being truncated or replaced (it is then read again from the start)."""

    def __init__(self, path: Path, offset: int = 0):
        self.path = path
        self.offset = offset

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self.offset:  # truncated or replaced: start over
                    self.offset = 0
                handle.seek(self.offset)
                data = handle.read(size - self.offset)
        except FileNotFoundError:
            return []
        complete, end = _complete_lines(data, True)
        self.offset += end
        return [line for line in map(_parse, complete) if line is not None]
