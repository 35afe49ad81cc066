"""Export what contexta captures to OpenTelemetry: scopes as spans, events as span events, metrics as
instruments.

```python
from contexta import Contexta
from contexta.capture import LocalJsonlSink
from contexta.integrations.opentelemetry import OpenTelemetrySink

with Contexta(
    workspace=".contexta",
    config={"project_name": "iris"},
    sinks=[LocalJsonlSink(".contexta/cache/capture"), OpenTelemetrySink(endpoint="http://collector:4318")],
) as ctx: ...
```

`sinks=` replaces the default capture-log sink, so list a `LocalJsonlSink` on the workspace's
`cache/capture` directory beside this one to keep the local log (the store is written either way).

The sink runs on its own lane of the background writer, never on the caller's thread. Each run,
stage, batch, sample, operation and deployment becomes one span with its real start and end times,
under its parent's span (run -> stage -> batch -> sample); a failed scope's span has status ERROR
with the exception's type and message (and an "exception" event with the traceback); refs, names,
tags, metadata and the config snapshot are attributes. `scope.span(...)` records become child spans,
events become span events, and metrics go to OpenTelemetry instruments (see _otel_metrics.py for why
histograms) or, with no meter provider, to span events. See docs/integrations/opentelemetry.md.

The SDK is imported when a sink is made, never by `import contexta`; without it the constructor raises
`MissingDependencyError(code="dependency_missing")` (an `ImportError`) naming
`pip install 'contexta[opentelemetry]'`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from contexta.capture import CaptureBatch
from contexta.errors import CaptureError, ConfigurationError
from contexta.integrations._otel_sdk import build_meter_provider, build_tracer_provider, require

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from contexta.integrations._otel_metrics import MetricInstruments
    from contexta.integrations._otel_retain import RetainingSpanExporter
    from contexta.integrations._otel_spans import SpanBook

__all__ = ["OpenTelemetrySink", "OpenTelemetrySinkStats"]

_LOGGER = logging.getLogger(__name__)
_METRIC_MODES = ("histogram", "gauge", "span_events")
_INSTRUMENTATION = "contexta"


@dataclass(frozen=True, slots=True)
class OpenTelemetrySinkStats:
    """What the sink did so far: spans started and ended (and still open), records whose scope was
    not open (`orphan_records`), metrics recorded on instruments or sent as span events (non-finite
    ones always are), and, for the sink's own OTLP exporter, spans kept through a collector outage
    (`spans_retained`), given up (`spans_lost`) and failed export attempts."""

    spans_started: int
    spans_ended: int
    open_spans: int
    ended_at_close: int
    orphan_records: int
    metrics_recorded: int
    metrics_as_events: int
    metrics_not_finite: int
    spans_retained: int
    spans_lost: int
    failed_exports: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class OpenTelemetrySink:
    """A contexta sink that exports through the OpenTelemetry SDK (see the module docstring).

    With no provider given, the sink builds its own: a TracerProvider with a batch span processor
    and a MeterProvider with a periodic reader, both exporting over OTLP/HTTP to `endpoint` (the base
    URL, e.g. "http://localhost:4318"; signal paths /v1/traces and /v1/metrics are added) or, when
    `endpoint` is None, to what OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]ENDPOINT say (default
    http://localhost:4318). Those it shuts down on `close()`; spans a failed export could not deliver
    are kept (up to `max_retained_spans`) and sent again (see _otel_retain.py).

    Pass `tracer_provider` (and `meter_provider`) to export through providers you configured: the
    sink then only flushes them on close, never shuts them down. With a tracer provider but no meter
    provider, metrics become span events (`metrics="span_events"`); asking for instruments then is
    a ConfigurationError.

    `metrics`: "histogram" (the default with a meter provider), "gauge", or "span_events".
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        service_name: str | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        metrics: str | None = None,
        max_retained_spans: int = 100_000,
        close_timeout_s: float = 10.0,
        name: str = "opentelemetry",
    ) -> None:
        if metrics is not None and metrics not in _METRIC_MODES:
            raise ConfigurationError(
                f"metrics must be one of {', '.join(map(repr, _METRIC_MODES))}, not {metrics!r}",
                code="opentelemetry_metrics_invalid",
            )
        if max_retained_spans < 0 or close_timeout_s < 0:
            raise ConfigurationError(
                "max_retained_spans and close_timeout_s must not be negative",
                code="opentelemetry_limit_invalid",
            )
        require("opentelemetry.sdk.trace", "the OpenTelemetry SDK")
        from contexta import __version__
        from contexta.integrations._otel_metrics import MetricInstruments, metric_point
        from contexta.integrations._otel_spans import SCOPE_TYPES, SpanBook

        self.name = name
        self._close_timeout_ms = int(close_timeout_s * 1000)
        self._lock = threading.Lock()
        self._closed = False
        self._retaining: RetainingSpanExporter | None = None
        self._owned: list[Any] = []  # providers built here, shut down on close
        self._owned_meter: Any = None  # the one of them whose shutdown takes a timeout
        self._given: list[Any] = []  # providers the user passed, only flushed on close
        if tracer_provider is None:
            tracer_provider, self._retaining = build_tracer_provider(
                endpoint=endpoint,
                headers=headers,
                timeout_s=timeout_s,
                service_name=service_name,
                max_retained_spans=max_retained_spans,
            )
            self._owned.append(tracer_provider)
            if meter_provider is None and metrics != "span_events":
                meter_provider = build_meter_provider(
                    endpoint=endpoint, headers=headers, timeout_s=timeout_s, service_name=service_name
                )
                self._owned.append(meter_provider)
                self._owned_meter = meter_provider
            elif meter_provider is not None:
                self._given.append(meter_provider)
        else:
            self._given.append(tracer_provider)
            if meter_provider is not None:
                self._given.append(meter_provider)
        if meter_provider is None:
            if metrics in ("histogram", "gauge"):
                raise ConfigurationError(
                    f"metrics={metrics!r} needs a meter provider: pass meter_provider=... (or "
                    "metrics='span_events' to send metrics as events of the scopes' spans)",
                    code="opentelemetry_meter_missing",
                )
            metrics = "span_events"
        self.metrics_mode: str = metrics or "histogram"
        self._book: SpanBook = SpanBook(tracer_provider.get_tracer(_INSTRUMENTATION, __version__))
        self._instruments: MetricInstruments | None = None
        if meter_provider is not None and self.metrics_mode != "span_events":
            meter = meter_provider.get_meter(_INSTRUMENTATION, __version__)
            if self.metrics_mode == "gauge" and not hasattr(meter, "create_gauge"):
                raise ConfigurationError(
                    "metrics='gauge' needs opentelemetry-api >= 1.23 (synchronous gauges): "
                    "pip install -U opentelemetry-sdk, or use metrics='histogram'",
                    code="opentelemetry_gauge_unavailable",
                )
            self._instruments = MetricInstruments(meter, self.metrics_mode)
        self._metric_point = metric_point
        self._scope_types = SCOPE_TYPES
        self._metrics_as_events = 0
        self._ended_at_close = 0
        if hasattr(os, "register_at_fork"):  # a forked child starts with none of the parent's spans
            os.register_at_fork(after_in_child=_Weakly(self._after_fork_in_child))

    def _after_fork_in_child(self) -> None:
        """In a forked child (a DataLoader worker, a multiprocessing process): the open spans are the
        parent's, which ends and exports them; ending them here too, when the child closes its
        Contexta, would export copies under the same span ids with the child's end time. The lock
        may have been held by the parent's writer lane at the fork: a fresh one."""
        self._lock = threading.Lock()
        self._book.forget_open()
        if self._retaining is not None:
            self._retaining.forget_retained()

    # -- the Sink protocol ----------------------------------------------------------------------

    def write(self, batch: CaptureBatch) -> None:
        """Turn one writer batch into span calls and metric points (on the sink's lane thread).

        Each entry is translated on its own; if any fails, the others are still exported and the
        batch is then refused with a CaptureError, so the writer counts it and parks it in the outbox
        (`ctx.replay_outbox()` hands it back; entries that did export then export again).
        """
        with self._lock:
            if self._closed:
                raise CaptureError(f"sink {self.name!r} is closed", code="sink_closed")
            failures = 0
            first: Exception | None = None
            for entry in batch:
                try:
                    self._entry(entry)
                except Exception as error:
                    failures += 1
                    first = first or error
            if first is not None:
                raise CaptureError(
                    f"{failures} of {len(batch)} records could not be exported to OpenTelemetry "
                    f"(first: {type(first).__name__}: {first})",
                    code="opentelemetry_export_failed",
                ) from first

    def flush(self) -> None:
        """Nothing to wait for: spans and points are already with the SDK, whose processors export
        on their own schedule. The writer calls this at every run's end, and waiting on a collector
        there would hold the user's `with ctx.run(...)` exit for the exporter's timeout; use
        `force_flush()` to export now."""

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        """Export every ended span and the current metric values now; True if all went out. No
        export starts once `timeout_s` has passed (one under way takes up to the exporter's own
        timeout: a collector that never answers costs one of those, not one per step)."""
        return self._flush_until(time.monotonic() + timeout_s)

    def _flush_until(self, deadline: float) -> bool:
        done = True
        for provider in (*self._owned, *self._given):
            flush = getattr(provider, "force_flush", None)
            if flush is None:
                continue
            left_ms = _millis_left(deadline)
            done = left_ms > 0 and bool(flush(left_ms)) and done
        if self._retaining is not None:
            left_ms = _millis_left(deadline)
            done = left_ms > 0 and self._retaining.force_flush(left_ms) and done
        return done

    def close(self) -> None:
        """End spans still open (their scopes never ended here; see the docs), export what is left,
        and shut down the providers this sink built. Idempotent; never raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            # `close_timeout_s` bounds the whole closing: flushing, then shutting down, start no export
            # once it has passed (each would cost the exporter's whole timeout with a silent collector).
            deadline = time.monotonic() + self._close_timeout_ms / 1000
            try:
                self._ended_at_close += self._book.end_open("sink-close")
                if self._retaining is not None:
                    self._retaining.give_up_at(deadline)
                self._flush_until(deadline)
                for provider in self._owned:
                    if provider is self._owned_meter:
                        provider.shutdown(timeout_millis=_millis_left(deadline))
                    else:
                        provider.shutdown()
            except Exception:  # closing must not fail the program that closes contexta
                _LOGGER.warning("closing the OpenTelemetry sink failed", exc_info=True)

    # -- reading --------------------------------------------------------------------------------

    def stats(self) -> OpenTelemetrySinkStats:
        book, instruments, retaining = self._book, self._instruments, self._retaining
        return OpenTelemetrySinkStats(
            spans_started=book.spans_started,
            spans_ended=book.spans_ended,
            open_spans=book.open_count,
            ended_at_close=self._ended_at_close,
            orphan_records=book.orphans,
            metrics_recorded=instruments.recorded if instruments is not None else 0,
            metrics_as_events=self._metrics_as_events,
            metrics_not_finite=instruments.not_finite if instruments is not None else 0,
            spans_retained=retaining.retained if retaining is not None else 0,
            spans_lost=retaining.lost if retaining is not None else 0,
            failed_exports=retaining.failed_exports if retaining is not None else 0,
        )

    # -- translation ----------------------------------------------------------------------------

    def _entry(self, entry: Any) -> None:
        payload_type = entry.payload_type
        if payload_type == "MetricRecord":
            point = self._metric_point(entry)
            if self._instruments is not None and self._instruments.record(point):
                return
            attributes: dict[str, Any] = {
                "contexta.kind": "metric",
                "contexta.metric.value": float(point.value),
            }
            if point.step is not None:
                attributes["contexta.metric.step"] = point.step
            if point.unit is not None:
                attributes["contexta.metric.unit"] = point.unit
            refs = (
                point.subject_ref,
                point.sample_ref,
                point.batch_ref,
                point.stage_ref,
                point.deployment_ref,
                point.run_ref,
            )
            self._book.add_event(refs, point.key, attributes, point.observed_at, point.execution_id)
            self._metrics_as_events += 1
        elif payload_type in self._scope_types:
            self._book.scope(payload_type, entry.payload)
        elif entry.family == "RECORD":
            self._book.record(payload_type, entry.payload)
        elif payload_type == "ArtifactRegistration":
            self._book.artifact(entry.payload)
        elif payload_type == "EnvironmentSnapshot":
            self._book.environment(entry.payload)


def _millis_left(deadline: float) -> int:
    """Whole milliseconds from now to `deadline` (a time.monotonic() instant), 0 once it passed."""
    return max(0, int((deadline - time.monotonic()) * 1000))


class _Weakly:
    """Calls a bound method while its object lives: a fork hook (never unregistered) that does not
    keep a closed sink alive."""

    def __init__(self, method: Callable[[], None]) -> None:
        self._method = weakref.WeakMethod(method)

    def __call__(self) -> None:
        method = self._method()
        if method is not None:
            method()
