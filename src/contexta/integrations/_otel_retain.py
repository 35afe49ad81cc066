"""An exporter wrapper that keeps the spans a collector outage would cost, and sends them later.

The SDK's batch processor drops a batch whose export fails (the OTLP exporter retries only within
its own timeout). Wrapped in this, a failed export keeps its spans (up to `max_retained`, oldest
dropped and counted beyond that) and they go first with the next export; while the collector is
down, exports are not attempted again before a backoff (1 s doubling to 30 s) so the processor's
thread is not held for a whole exporter timeout per batch. `force_flush` and `shutdown` try at once,
whatever the backoff, but start no export past their deadline (`force_flush`'s timeout, and the
sink's close deadline given to `give_up_at`): with a collector that never answers, each attempt costs
the exporter's whole timeout. Only imported once the SDK is known to be installed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["RetainingSpanExporter"]

_CHUNK = 512  # spans per request, the batch processor's own default batch size
_FIRST_RETRY_S = 1.0
_LONGEST_RETRY_S = 30.0


class RetainingSpanExporter(SpanExporter):
    """Delivers through `inner`; keeps what it could not deliver (see the module docstring)."""

    def __init__(self, inner: SpanExporter, *, max_retained: int) -> None:
        self._inner = inner
        self._max_retained = max_retained
        self._retained: deque[ReadableSpan] = deque()
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._backoff = _FIRST_RETRY_S
        self._give_up_at: float | None = None  # the sink's close deadline (time.monotonic())
        self.delivered = 0
        self.lost = 0  # dropped beyond max_retained, or still undelivered at shutdown
        self.failed_exports = 0

    @property
    def retained(self) -> int:
        """Spans waiting for the collector."""
        return len(self._retained)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self._retained.extend(spans)
            overflow = len(self._retained) - self._max_retained
            for _ in range(max(0, overflow)):
                self._retained.popleft()
                self.lost += 1
            if time.monotonic() < self._retry_at:
                return SpanExportResult.SUCCESS  # kept; sent once the backoff has passed
            self._deliver()
            # The spans are accepted either way: kept ones are this exporter's to send, not lost.
            return SpanExportResult.SUCCESS

    def give_up_at(self, deadline: float) -> None:
        """Start no export after `deadline` (a time.monotonic() instant): the sink is closing."""
        self._give_up_at = deadline

    def _deliver(self, deadline: float | None = None) -> bool:
        """Send what is kept, oldest first, in chunks, starting none past `deadline` or the close
        deadline; True when nothing is left (lock held)."""
        if self._give_up_at is not None:
            deadline = self._give_up_at if deadline is None else min(deadline, self._give_up_at)
        while self._retained:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            chunk = [self._retained[index] for index in range(min(_CHUNK, len(self._retained)))]
            try:
                result = self._inner.export(chunk)
            except Exception:  # an exporter must not raise, but one that does is an outage too
                result = SpanExportResult.FAILURE
            if result is not SpanExportResult.SUCCESS:
                self.failed_exports += 1
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, _LONGEST_RETRY_S)
                return False
            for _ in chunk:
                self._retained.popleft()
            self.delivered += len(chunk)
        self._retry_at = 0.0
        self._backoff = _FIRST_RETRY_S
        return True

    def forget_retained(self) -> None:
        """In a forked child: the kept spans are the parent's to send (sent here too, they would
        arrive twice); the lock may have been held by the parent's export at the fork."""
        self._lock = threading.Lock()
        self._retained.clear()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        with self._lock:
            return self._deliver(time.monotonic() + timeout_millis / 1000)

    def shutdown(self) -> None:
        with self._lock:
            self._deliver()
            self.lost += len(self._retained)
            self._retained.clear()
        self._inner.shutdown()
