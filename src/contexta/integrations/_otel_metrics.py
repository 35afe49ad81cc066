"""The metric side of the OpenTelemetry sink: one instrument per metric key.

Histograms by default: a training loop reports many values of one key between two exports, and a
histogram keeps all of them in its aggregate (count, sum, min, max, buckets), where a gauge keeps only
the last value of each export interval. `metrics="gauge"` is there for users whose dashboards want
the latest value. Points carry the run and stage refs (and the deployment's) as attributes, not the
batch or sample refs: one time series per sample would swamp any metrics backend; per-sample values
stay in the capture log and the store, and on the spans with `metrics="span_events"`.

NaN and infinities are not recorded on an instrument (they would poison a histogram's sum); they are
counted and go to the scope's span as an event instead, so the value is still seen.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from contexta.capture import CapturedEntry
from contexta.integrations._otel_values import record_execution

__all__ = ["MetricInstruments", "MetricPoint", "metric_point"]

# OpenTelemetry instrument names: a letter first, then [A-Za-z0-9_./-]; a contexta key may start with
# a digit or "_", and is then prefixed.
_INSTRUMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_./-]{0,254}")


class MetricPoint(NamedTuple):
    """A metric record, whichever way it reached the sink (raw from the writer or a replayed line)."""

    key: str
    value: float | int
    unit: str | None
    step: int | None
    observed_at: str
    subject_ref: str | None
    run_ref: str | None
    stage_ref: str | None
    batch_ref: str | None
    sample_ref: str | None
    deployment_ref: str | None
    execution_id: str | None  # the run execution it belongs to (two may share a run name)


def metric_point(entry: CapturedEntry) -> MetricPoint:
    """The fields of a MetricRecord entry, read from the writer's flat fields when it has them
    (no document built) or from the document (entries replayed from the outbox)."""
    fields = entry.metric
    if fields is not None:
        context = fields.context
        return MetricPoint(
            fields.key,
            fields.value,
            fields.unit,
            fields.step,
            fields.observed_at,
            context.ref,
            context.run_ref,
            context.stage_ref,
            context.batch_ref,
            context.sample_ref,
            context.deployment_ref,
            context.execution_id,
        )
    document: Mapping[str, Any] = entry.payload
    envelope, payload = document["envelope"], document["payload"]
    value = payload["value"]
    if isinstance(value, str):  # a non-finite value's token ("NaN", "Infinity", "-Infinity")
        value = float(value.replace("Infinity", "inf"))
    return MetricPoint(
        payload["metric_key"],
        value,
        payload.get("unit"),
        payload.get("step"),
        envelope.get("observed_at") or envelope["recorded_at"],
        payload.get("subject_ref"),
        envelope.get("run_ref"),
        envelope.get("stage_execution_ref"),
        envelope.get("batch_execution_ref"),
        envelope.get("sample_observation_ref"),
        envelope.get("deployment_execution_ref"),
        record_execution(envelope),
    )


class MetricInstruments:
    """Histograms (or gauges) per key, created on first use with the first value's unit."""

    def __init__(self, meter: Any, instrument: str) -> None:
        self._meter = meter
        self._instrument = instrument
        self._by_key: dict[str, Any] = {}
        self._attributes: dict[tuple[str | None, str | None, str | None], dict[str, str]] = {}
        self.recorded = 0
        self.not_finite = 0

    def record(self, point: MetricPoint) -> bool:
        """Record one value; False when it is not finite (the caller sends it as a span event)."""
        value = point.value
        if not math.isfinite(value):
            self.not_finite += 1
            return False
        instrument = self._by_key.get(point.key)
        if instrument is None:
            instrument = self._create(point.key, point.unit)
        scope = (point.run_ref, point.stage_ref, point.deployment_ref)
        attributes = self._attributes.get(scope)
        if attributes is None:
            attributes = {
                name: ref
                for name, ref in zip(
                    ("contexta.run_ref", "contexta.stage_ref", "contexta.deployment_ref"), scope, strict=True
                )
                if ref is not None
            }
            self._attributes[scope] = attributes
        instrument.record(value, attributes)
        self.recorded += 1
        return True

    def _create(self, key: str, unit: str | None) -> Any:
        name = key if _INSTRUMENT_NAME.fullmatch(key) else f"contexta.{key}"
        description = f"contexta metric {key!r}"
        if self._instrument == "gauge":
            instrument = self._meter.create_gauge(name, unit=unit or "", description=description)
        else:
            instrument = self._meter.create_histogram(name, unit=unit or "", description=description)
        self._by_key[key] = instrument
        return instrument
