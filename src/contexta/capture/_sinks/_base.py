"""The sink protocol, where the writer hands each batch, and the roles a sink may declare.

Any object with a name, `write(batch)`, `flush()` and `close()` is a sink (users pass their own). Two
of ours play a part in how a batch is delivered, and say so by subclassing a role below; the lanes
(capture/_pipeline/_lanes.py) and the outbox replay read the role with `isinstance`, never by looking
for attributes:

- `CaptureLogSink`, the capture log: every other sink can be rebuilt from it, so it is written
  first. It hears of each batch as soon as the writer hands it over (`send_ahead`), encodes what it
  cannot encode as degraded lines itself (so it is never given a batch twice), and a batch replayed
  from the outbox comes with the delivery note that tells it which lines an earlier, cut-short
  attempt already appended (`write_replayed`).
- `FollowsCaptureLog`, a sink derived from the capture log (the store): it writes a batch only once
  the capture log has it, so after a crash it never holds a record the log lacks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

from contexta.capture._log._batch import CaptureBatch

__all__ = ["CaptureLogSink", "DeliveryNote", "FollowsCaptureLog", "Sink"]


@runtime_checkable
class Sink(Protocol):
    """Receives batches from the writer thread, one call at a time.

    `write` may raise: the writer parks that batch in the outbox for this sink and carries on with the
    other sinks. `flush` makes everything written durable to the sink's own standard (the writer calls
    it at flush barriers); `close` releases resources and must be idempotent.
    """

    name: str

    def write(self, batch: CaptureBatch) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class DeliveryNote(Protocol):
    """The note kept beside a parked batch while it is delivered (the outbox keeps it, whole-file
    replaced, so a delivery cut short leaves the last note or the one before, never half)."""

    def read(self) -> dict[str, Any] | None:
        """The note an earlier, unfinished attempt left; None if there is none."""
        ...

    def write(self, note: dict[str, Any]) -> None: ...

    def discard(self) -> None: ...


class CaptureLogSink(ABC):
    """The role of the capture log (see the module docstring); a subclass is a `Sink` too."""

    name: str

    @abstractmethod
    def send_ahead(self, batch: CaptureBatch) -> None:
        """The writer is about to hand `batch` to this sink's lane: start on it early (called on the
        writer thread, in batch order; `write` still follows for the same batch)."""

    @abstractmethod
    def write_replayed(self, batch: CaptureBatch, note: DeliveryNote) -> None:
        """Write a batch replayed from the outbox, skipping the lines `note` says are already there."""


class FollowsCaptureLog:
    """The role of a sink derived from the capture log (see the module docstring): its lane waits
    until every capture-log lane is done with a batch before writing it."""
