"""A sink that prints capture-log lines to a text stream: for watching a job live."""

from __future__ import annotations

import sys
from typing import TextIO

from contexta.capture._log._batch import FAMILIES, CaptureBatch

__all__ = ["StdoutSink"]


class StdoutSink:
    """Writes each batch's lines to `stream` (standard output unless told otherwise)."""

    def __init__(
        self, stream: TextIO | None = None, *, name: str = "stdout", families: tuple[str, ...] = FAMILIES
    ):
        self.name = name
        self._stream = stream
        self.families = families

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def write(self, batch: CaptureBatch) -> None:
        text = "".join(batch.encoded(family, self.name).decode() for family in self.families)
        if text:
            self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        try:
            self.stream.flush()
        except ValueError:  # the stream was closed by its owner already
            pass
