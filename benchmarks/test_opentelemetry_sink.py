"""The OpenTelemetry sink's cost on the writer (issue 20): records/s from the first call until
`flush()` returns, with the sink (real SDK, in-memory span exporter and metric reader) beside the
default capture log, against the same capture without it, in the same sitting.

Run with `python -m pytest benchmarks/test_opentelemetry_sink.py --benchmark-enable`. Without that
flag each body runs once on SMOKE_RECORDS records as a smoke test.

The load is what an evaluation service sends: per sample one span (the sample scope), one metric and,
every tenth sample, an event. `extra_info` has records/s for the mean and the worst round.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contexta import Contexta
from contexta.capture import LocalJsonlSink, Sink
from contexta.integrations.opentelemetry import OpenTelemetrySink

SAMPLES = 20_000
SMOKE_SAMPLES = 500
ROUNDS = 5


def _records(samples: int) -> int:
    # per sample: open and close records, one metric; every tenth an event; plus the run and stage
    return samples * 3 + samples // 10 + 4


def _capture(ctx: Contexta, samples: int) -> None:
    with ctx.run("service") as run, run.stage("evaluate") as stage:
        for number in range(samples):
            with stage.sample(f"request-{number}") as sample:
                sample.metric("latency.ms", 1.0 + number % 7)
                if number % 10 == 0:
                    sample.event("cache.miss", message="cold")
    ctx.flush()


def _otel_sink() -> tuple[OpenTelemetrySink, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return OpenTelemetrySink(tracer_provider=provider, meter_provider=meter_provider), exporter


def _run(benchmark: Any, tmp_path: Path, with_otel: bool) -> None:
    samples = SAMPLES if benchmark.enabled else SMOKE_SAMPLES
    rounds = ROUNDS if benchmark.enabled else 1
    workspaces = itertools.count()
    exporters: list[InMemorySpanExporter] = []
    contexts: list[Contexta] = []

    def setup() -> tuple[tuple[Contexta], dict[str, Any]]:
        workspace = tmp_path / f"round-{next(workspaces)}"
        sinks: list[Sink] = [LocalJsonlSink(workspace / "cache" / "capture")]
        if with_otel:
            sink, exporter = _otel_sink()
            sinks.append(sink)
            exporters.append(exporter)
        ctx = Contexta(workspace=workspace, config={"project_name": "bench"}, sinks=sinks)
        contexts.append(ctx)
        return (ctx,), {}

    benchmark.pedantic(lambda ctx: _capture(ctx, samples), setup=setup, rounds=rounds, iterations=1)
    for ctx in contexts:
        stats = ctx.capture_stats()
        ctx.close()
        assert (stats.dropped, stats.failed, stats.lost) == (0, 0, 0)
    for exporter in exporters:
        assert len(exporter.get_finished_spans()) == samples + 2
    benchmark.extra_info["records_per_round"] = _records(samples)
    if benchmark.stats is not None:
        timing = benchmark.stats.stats
        benchmark.extra_info["records_per_s_mean"] = round(_records(samples) / timing.mean)
        benchmark.extra_info["records_per_s_worst"] = round(_records(samples) / timing.max)


@pytest.mark.benchmark(group="opentelemetry-sink")
def test_capture_with_the_opentelemetry_sink(benchmark: Any, tmp_path: Path) -> None:
    _run(benchmark, tmp_path, with_otel=True)


@pytest.mark.benchmark(group="opentelemetry-sink")
def test_capture_without_it(benchmark: Any, tmp_path: Path) -> None:
    _run(benchmark, tmp_path, with_otel=False)
