"""Reading the capture log back, across its segments, tolerating what a crash can leave behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from contexta.capture._log._segments import (
    DamagedSegmentError,
    iter_handle_lines,
    iter_segment_lines,
    open_log_segments,
    open_segment,
)
from contexta.config import capture_log_family

__all__ = ["CaptureLogRead", "iter_capture_log", "read_capture_log"]


@dataclass(frozen=True, slots=True)
class CaptureLogRead:
    """The readable lines of one family's capture log (its sealed segments, then the active file),
    and where unreadable ones were skipped.

    `torn_tail` is True when the active file ends in an unterminated line (a write cut short by a
    crash); `skipped_lines` lists 1-based line numbers, counted across the segments in order, that
    were not valid JSON objects or not terminated.
    """

    path: Path
    lines: list[dict[str, Any]]
    skipped_lines: list[int] = field(default_factory=list)
    torn_tail: bool = False

    @property
    def clean(self) -> bool:
        return not self.skipped_lines and not self.torn_tail


def iter_capture_log(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any] | None, bool]]:
    """(line number, parsed object or None, terminated) for each non-empty line of the one file
    `path` (a sealed segment, `*.zst`, or a file logrotate compressed, `*.gz`, is decompressed)."""
    return _parsed(iter_segment_lines(path))


def _parsed(raw_lines: Iterator[bytes]) -> Iterator[tuple[int, dict[str, Any] | None, bool]]:
    for number, raw in enumerate(raw_lines, start=1):
        terminated = raw.endswith(b"\n")
        text = raw.strip()
        if not text:
            continue
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed = None
        yield number, parsed if isinstance(parsed, dict) else None, terminated


def _open_log(target: Path) -> list[IO[bytes]]:
    """The open files of the log whose active file is `target`, oldest first: its sealed segments,
    then the active file if it exists. Another file is just itself."""
    family = capture_log_family(target.name)
    if family is None:
        try:
            return [open_segment(target)]
        except FileNotFoundError:
            return []
    return [handle for _, handle in open_log_segments(target.parent, family)]


def read_capture_log(path: str | os.PathLike[str]) -> CaptureLogRead:
    """Every readable line of the log whose active file is `path` (`sink.file_path_for(family)`),
    its sealed segments first; a missing log reads as empty."""
    target = Path(path)
    lines: list[dict[str, Any]] = []
    skipped: list[int] = []
    torn = False
    offset = 0
    handles = _open_log(target)
    try:
        for handle in handles:
            torn = False
            last = 0
            try:
                for number, parsed, terminated in _parsed(iter_handle_lines(handle)):
                    last = number
                    torn = not terminated
                    if parsed is None or not terminated:
                        skipped.append(offset + number)
                    else:
                        lines.append(parsed)
            except DamagedSegmentError:
                last += 1
                skipped.append(offset + last)
            offset += last
    finally:
        for handle in handles:
            handle.close()
    return CaptureLogRead(target, lines, skipped, torn)
