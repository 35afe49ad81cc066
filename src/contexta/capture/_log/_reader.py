"""Reading the capture log back, tolerating what a crash can leave behind."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["CaptureLogRead", "iter_capture_log", "read_capture_log"]


@dataclass(frozen=True, slots=True)
class CaptureLogRead:
    """The readable lines of one capture-log file, and where unreadable ones were skipped.

    `torn_tail` is True when the file ends in an unterminated line (a write cut short by a crash);
    `skipped_lines` lists 1-based line numbers that were not valid JSON objects.
    """

    path: Path
    lines: list[dict[str, Any]]
    skipped_lines: list[int] = field(default_factory=list)
    torn_tail: bool = False

    @property
    def clean(self) -> bool:
        return not self.skipped_lines and not self.torn_tail


def iter_capture_log(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any] | None, bool]]:
    """(line number, parsed object or None, terminated) for each non-empty line of `path` (a rotated
    file compressed by logrotate, `*.gz`, is read through gzip)."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            terminated = raw.endswith(b"\n")
            text = raw.strip()
            if not text:
                continue
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError:
                parsed = None
            yield number, parsed if isinstance(parsed, dict) else None, terminated


def read_capture_log(path: str | os.PathLike[str]) -> CaptureLogRead:
    """Every readable line of `path`; a missing file reads as empty."""
    target = Path(path)
    if not target.exists():
        return CaptureLogRead(target, [])
    lines: list[dict[str, Any]] = []
    skipped: list[int] = []
    torn = False
    for number, parsed, terminated in iter_capture_log(target):
        if not terminated:
            torn = True
        if parsed is None or not terminated:
            skipped.append(number)
        else:
            lines.append(parsed)
    return CaptureLogRead(target, lines, skipped, torn)
