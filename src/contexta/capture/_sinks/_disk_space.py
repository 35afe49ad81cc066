"""Warning before the disk fills: free space on the capture log's file system, checked as it is written.

A full disk loses records (parked in the outbox while there is room, then dropped); a warning while
some space is left gives the user time to act. The check is one `statvfs` at most every `interval_s`
(about a microsecond, so nothing a training loop notices), and warns once each time free space
falls below `min_free_bytes`; it warns again only after space came back above it and fell again.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from contexta._retention import format_bytes
from contexta.errors import CaptureWarning

__all__ = ["DEFAULT_MIN_FREE_BYTES", "DiskSpaceWatch"]

DEFAULT_MIN_FREE_BYTES = 1 << 30


class DiskSpaceWatch:
    """Watches the free space of the file system holding `directory`; `warnings` counts the warnings
    issued (a sink shows it as `low_disk_warnings`)."""

    def __init__(self, directory: Path, min_free_bytes: int, *, interval_s: float = 1.0):
        self._directory = directory
        self._min_free_bytes = min_free_bytes
        self._interval_s = interval_s
        self._next_check = 0.0
        self._low = False
        self.warnings = 0
        self.free_bytes: int | None = None

    def check(self) -> None:
        """Look at the free space if `interval_s` has passed since the last look; warn on a crossing."""
        if self._min_free_bytes <= 0:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._interval_s
        try:
            status = os.statvfs(self._directory)
        except OSError:
            return  # gone or unreadable: the write itself will say what is wrong
        free = status.f_bavail * status.f_frsize
        self.free_bytes = free
        if free >= self._min_free_bytes:
            self._low = False
            return
        if self._low:
            return
        self._low = True
        self.warnings += 1
        warnings.warn(
            f"contexta: only {format_bytes(free)} left on the file system of {self._directory} (below "
            f"capture.min_free_bytes, {format_bytes(self._min_free_bytes)}); capture goes on, but once "
            "the disk is full records are parked and then dropped. See what takes the space with "
            "`contexta du`, reclaim earlier executions with `contexta gc` (capture.retention says "
            "which), or free space elsewhere",
            CaptureWarning,
            stacklevel=2,
        )
