"""The sink protocol: where the writer hands each batch."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from contexta.capture._log._batch import CaptureBatch

__all__ = ["Sink"]


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
