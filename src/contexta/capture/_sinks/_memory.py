"""A sink that keeps what it receives in memory: for tests and notebooks."""

from __future__ import annotations

import threading
from typing import Any

from contexta.capture._log._batch import CaptureBatch, CapturedEntry, entry_to_line

__all__ = ["InMemorySink"]


class InMemorySink:
    """Collects entries; `records()` gives validated contract models, `lines()` capture-log lines."""

    def __init__(self, name: str = "memory"):
        self.name = name
        self._entries: list[CapturedEntry] = []
        self._lock = threading.Lock()
        self.batches = 0
        self.closed = False

    def write(self, batch: CaptureBatch) -> None:
        with self._lock:
            self._entries.extend(batch)
            self.batches += 1

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    @property
    def entries(self) -> list[CapturedEntry]:
        with self._lock:
            return list(self._entries)

    def records(self, family: str | None = "RECORD") -> list[Any]:
        """Contract models of one family (all families with `None`), in capture order."""
        return [entry.to_model() for entry in self.entries if family is None or entry.family == family]

    def lines(self, family: str | None = None) -> list[dict[str, Any]]:
        return [
            entry_to_line(entry, self.name)
            for entry in self.entries
            if family is None or entry.family == family
        ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
