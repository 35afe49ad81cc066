"""Adversarial review of the OpenTelemetry sink (issue 20, item 5): cases past the happy path, each
against the real SDK (in-memory exporter and reader) with a `tmp_path` workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contexta import Contexta
from contexta.errors import CaptureWarning
from contexta.integrations.opentelemetry import OpenTelemetrySink


@pytest.fixture
def memory() -> tuple[InMemorySpanExporter, InMemoryMetricReader, OpenTelemetrySink]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    sink = OpenTelemetrySink(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    return exporter, reader, sink


def _parent(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next(other for other in spans if other.context.span_id == span.parent.span_id)


def test_two_executions_of_one_run_name_open_at_once_are_two_separate_traces(
    tmp_path: Path, memory: tuple[InMemorySpanExporter, InMemoryMetricReader, OpenTelemetrySink]
) -> None:
    """Contexta records a second `ctx.run("same")` opened while the first is open as a separate
    execution, never mixed with it (it warns): the spans must keep them apart too."""
    exporter, _reader, sink = memory
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "otel"}, sinks=[sink]) as ctx:
        first = ctx.run("same")
        first_stage = first.stage("train")
        first_stage.event("first.event", message="from the first execution")
        ctx.flush()
        with pytest.warns(CaptureWarning, match="already open"):
            second = ctx.run("same")
        second_stage = second.stage("train")
        second_stage.event("second.event", message="from the second execution")
        ctx.flush()
        first_stage.close()
        first.close()
        second_stage.close()
        second.close()
        executions = {first.execution_id, second.execution_id}

    spans = list(exporter.get_finished_spans())
    assert sorted(span.name for span in spans) == ["run same", "run same", "stage train", "stage train"]
    assert not any("contexta.ended_by" in (span.attributes or {}) for span in spans)  # none "superseded"
    runs = {span.attributes["contexta.execution_id"]: span for span in spans if span.name == "run same"}  # type: ignore[index]
    assert set(runs) == executions
    for stage in (span for span in spans if span.name == "stage train"):
        execution = stage.attributes["contexta.execution_id"]  # type: ignore[index]
        assert _parent(stage, spans) is runs[execution]
        assert stage.context.trace_id == runs[execution].context.trace_id
        own = "first.event" if execution == first.execution_id else "second.event"
        assert [event.name for event in stage.events] == [own]
    assert sink.stats().open_spans == 0
