"""Fixtures the integrations' tests share."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def memory() -> tuple[Any, Any, Any]:
    """An OpenTelemetrySink exporting into the SDK's in-memory span exporter and metric reader:
    (exporter, reader, sink)."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from contexta.integrations.opentelemetry import OpenTelemetrySink

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    sink = OpenTelemetrySink(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    return exporter, reader, sink
