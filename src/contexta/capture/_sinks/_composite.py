"""Several sinks behind one name."""

from __future__ import annotations

from collections.abc import Iterable

from contexta.capture._log._batch import CaptureBatch
from contexta.capture._sinks._base import Sink
from contexta.errors import CaptureError, ValidationError

__all__ = ["CompositeSink"]


class CompositeSink:
    """Fans a batch out to its members; one member failing does not stop the others.

    Given to a `Contexta`, a composite is unpacked so that each member is isolated (and parked in the
    outbox) on its own; used directly, `write` raises one `CaptureError` naming every member that failed.
    """

    def __init__(self, sinks: Iterable[Sink], *, name: str = "composite"):
        self.name = name
        self.sinks: tuple[Sink, ...] = tuple(sinks)
        names = [sink.name for sink in self.sinks]
        if len(set(names)) != len(names):
            raise ValidationError(f"sink names must be unique, got {names}", code="sink_name_duplicate")

    def _each(self, action: str, batch: CaptureBatch | None = None) -> None:
        failures: dict[str, str] = {}
        for sink in self.sinks:
            try:
                if batch is not None:
                    sink.write(batch)
                else:
                    getattr(sink, action)()
            except Exception as error:
                failures[sink.name] = f"{type(error).__name__}: {error}"
        if failures:
            summary = "; ".join(f"{name}: {text}" for name, text in failures.items())
            raise CaptureError(
                f"{len(failures)} of {len(self.sinks)} sinks failed to {action}: {summary}",
                code="sink_failed",
                details={"failures": failures},
            )

    def write(self, batch: CaptureBatch) -> None:
        self._each("write", batch)

    def flush(self) -> None:
        self._each("flush")

    def close(self) -> None:
        self._each("close")
