"""The progress bar of a long import: one line on stderr, redrawn in place, only on a terminal
(or when asked with --progress), so logs and pipes get no carriage returns."""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["ProgressBar"]

_WIDTH = 30
_REDRAW_S = 0.1


class ProgressBar:
    """`advance(n)` adds n units of `total` (points, or bytes); `close()` ends the line."""

    def __init__(self, stream: TextIO, total: int, unit: str, *, enabled: bool):
        self._stream = stream
        self._total = max(total, 1)
        self._unit = unit
        self._enabled = enabled
        self._done = 0
        self._started = time.monotonic()
        self._drawn = 0.0

    def advance(self, count: int) -> None:
        self._done += count
        if self._enabled and time.monotonic() - self._drawn >= _REDRAW_S:
            self._draw()

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        share = min(self._done / self._total, 1.0)
        filled = int(share * _WIDTH)
        elapsed = max(self._drawn - self._started, 1e-9)
        rate = self._done / elapsed
        bar = "#" * filled + "-" * (_WIDTH - filled)
        self._stream.write(
            f"\rimporting [{bar}] {share:4.0%} {self._done:,}/{self._total:,} {self._unit} ({rate:,.0f}/s)"
        )
        self._stream.flush()

    def close(self) -> None:
        if self._enabled:
            self._done = max(self._done, self._total)
            self._draw()
            self._stream.write("\n")
            self._stream.flush()
