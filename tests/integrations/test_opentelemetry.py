"""The OpenTelemetry sink against the real SDK: in-memory exporter and reader, and the real OTLP/HTTP
exporter posting to a loopback receiver started here."""

from __future__ import annotations

import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from contexta import Contexta
from contexta.capture import InMemorySink, LocalJsonlSink
from contexta.errors import CaptureWarning, ConfigurationError, MissingDependencyError
from contexta.integrations.opentelemetry import OpenTelemetrySink


def _capture(ctx: Contexta) -> None:
    """A run with two stages (one failing), a batch with two samples, events, metrics and a span."""
    with ctx.run("train-eval", tags={"team": "vision"}, config_snapshot={"lr": 0.1}) as run:
        run.event("dataset.loaded", message="150 rows", attributes={"rows": 150})
        with run.stage("train") as stage:
            for step, loss in enumerate((0.9, 0.5, 0.25)):
                stage.metric("loss", loss, step=step, unit="nats")
            stage.span("forward", attributes={"layers": 3})
        with run.stage("evaluate") as stage, stage.batch("holdout") as batch:
            for name, correct in (("case-1", 1.0), ("case-2", 0.0)):
                with batch.sample(name) as sample:
                    sample.metric("correct", correct)
        with pytest.raises(ValueError), run.stage("export"):
            raise ValueError("disk full")


def _by_name(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> dict[str, ReadableSpan]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), [span.name for span in spans]
    return named


def _parent_name(span: ReadableSpan, spans: dict[str, ReadableSpan]) -> str | None:
    if span.parent is None:
        return None
    return next(name for name, other in spans.items() if other.context.span_id == span.parent.span_id)


def test_scopes_become_spans_with_parents_times_status_and_attributes(
    tmp_path: Path, memory: tuple[InMemorySpanExporter, InMemoryMetricReader, OpenTelemetrySink]
) -> None:
    exporter, _reader, sink = memory
    log = InMemorySink()
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "otel"}, sinks=[log, sink]) as ctx:
        _capture(ctx)
        runs = ctx.list_runs()

    spans = _by_name(exporter.get_finished_spans())
    assert set(spans) == {
        "run train-eval",
        "stage train",
        "forward",
        "stage evaluate",
        "batch holdout",
        "sample case-1",
        "sample case-2",
        "stage export",
    }
    parents = {name: _parent_name(span, spans) for name, span in spans.items()}
    assert parents == {
        "run train-eval": None,
        "stage train": "run train-eval",
        "forward": "stage train",
        "stage evaluate": "run train-eval",
        "batch holdout": "stage evaluate",
        "sample case-1": "batch holdout",
        "sample case-2": "batch holdout",
        "stage export": "run train-eval",
    }
    assert len({span.context.trace_id for span in spans.values()}) == 1
    for name, span in spans.items():  # each child lies within its parent, as the scopes did
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time <= span.end_time
        parent = parents[name]
        if parent is not None:
            assert spans[parent].start_time <= span.start_time  # type: ignore[operator]
            assert span.end_time <= spans[parent].end_time  # type: ignore[operator]
    assert spans["stage train"].end_time <= spans["stage evaluate"].start_time  # type: ignore[operator]
    assert spans["sample case-1"].end_time <= spans["sample case-2"].start_time  # type: ignore[operator]

    run_span = spans["run train-eval"]
    assert run_span.attributes is not None
    assert run_span.attributes["contexta.run_ref"] == runs[0].run_id == "run:otel.train-eval"
    assert run_span.attributes["contexta.tag.team"] == "vision"
    assert run_span.attributes["contexta.config.lr"] == 0.1
    assert run_span.attributes["contexta.status"] == "completed"
    assert spans["sample case-2"].attributes["contexta.sample_observation_ref"] == (  # type: ignore[index]
        "sample:otel.train-eval.evaluate.holdout.case-2"
    )
    assert spans["forward"].attributes["layers"] == 3  # type: ignore[index]

    failed = spans["stage export"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "ValueError: disk full"
    exception = next(event for event in failed.events if event.name == "exception")
    assert exception.attributes["exception.type"] == "ValueError"  # type: ignore[index]
    assert "disk full" in exception.attributes["exception.stacktrace"]  # type: ignore[index,operator]
    assert all(
        span.status.status_code is StatusCode.UNSET for name, span in spans.items() if name != "stage export"
    )

    loaded = next(event for event in run_span.events if event.name == "dataset.loaded")
    assert loaded.attributes == {
        "rows": 150,
        "contexta.level": "info",
        "contexta.message": "150 rows",
        "contexta.record_ref": loaded.attributes["contexta.record_ref"],  # type: ignore[index]
    }
    assert run_span.start_time <= loaded.timestamp <= spans["stage train"].start_time  # type: ignore[operator]
    # The other sink got every record too: the OpenTelemetry sink took nothing from it.
    assert len(log.records()) == 3 + 2 + 1 + 2  # metrics, samples' metrics, span, two events
    assert sink.stats().open_spans == 0


def test_metrics_arrive_in_a_metric_reader_per_key_with_run_and_stage_attributes(
    tmp_path: Path, memory: tuple[InMemorySpanExporter, InMemoryMetricReader, OpenTelemetrySink]
) -> None:
    _exporter, reader, sink = memory
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "otel"}, sinks=[sink]) as ctx:
        _capture(ctx)

    data = reader.get_metrics_data()
    assert data is not None
    points = {
        metric.name: (
            metric.unit,
            [(dict(point.attributes or {}), point) for point in metric.data.data_points],
        )
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert set(points) == {"loss", "correct"}
    unit, [(attributes, loss)] = points["loss"]
    assert unit == "nats"
    assert attributes == {
        "contexta.run_ref": "run:otel.train-eval",
        "contexta.stage_ref": "stage:otel.train-eval.train",
    }
    assert (loss.count, loss.sum, loss.min, loss.max) == (3, pytest.approx(1.65), 0.25, 0.9)  # type: ignore[attr-defined]
    _, [(attributes, correct)] = points["correct"]
    assert attributes["contexta.stage_ref"] == "stage:otel.train-eval.evaluate"
    assert (correct.count, correct.sum) == (2, 1.0)  # type: ignore[attr-defined]
    assert sink.stats().metrics_recorded == 5


def test_without_a_meter_provider_metrics_are_events_of_their_scope_span(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sink = OpenTelemetrySink(tracer_provider=provider)
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "otel"}, sinks=[sink]) as ctx:
        _capture(ctx)

    spans = _by_name(exporter.get_finished_spans())
    losses = [
        (event.attributes["contexta.metric.step"], event.attributes["contexta.metric.value"])  # type: ignore[index]
        for event in spans["stage train"].events
        if event.name == "loss"
    ]
    assert losses == [(0, 0.9), (1, 0.5), (2, 0.25)]
    assert [event.attributes["contexta.metric.value"] for event in spans["sample case-2"].events] == [0.0]  # type: ignore[index]
    assert sink.metrics_mode == "span_events"
    with pytest.raises(ConfigurationError) as refused:
        OpenTelemetrySink(tracer_provider=provider, metrics="histogram")
    assert refused.value.code == "opentelemetry_meter_missing"


def test_a_scope_open_across_many_batches_is_one_span_and_close_ends_what_never_ended(
    tmp_path: Path, memory: tuple[InMemorySpanExporter, InMemoryMetricReader, OpenTelemetrySink]
) -> None:
    exporter, _reader, sink = memory
    ctx = Contexta(workspace=tmp_path / "ws", config={"project_name": "otel"}, sinks=[sink])
    run = ctx.run("long")
    stage = run.stage("train")
    for step in range(3):
        stage.metric("loss", 1.0 / (step + 1), step=step)
        ctx.flush()  # each step in a writer batch of its own
    assert exporter.get_finished_spans() == ()  # open scopes are not exported yet
    assert sink.stats().open_spans == 2
    stage.close()
    ctx.flush()
    assert [span.name for span in exporter.get_finished_spans()] == ["stage train"]
    left_open = run.stage("left-open")
    ctx.flush()
    sink.close()  # the sink closes before the scopes it holds end (as if contexta were torn down)
    spans = _by_name(exporter.get_finished_spans())
    assert spans["stage left-open"].attributes["contexta.ended_by"] == "sink-close"  # type: ignore[index]
    assert spans["run long"].attributes["contexta.status"] == "open"  # type: ignore[index]
    assert spans["stage left-open"].end_time <= spans["run long"].end_time  # type: ignore[operator]
    assert sink.stats().ended_at_close == 2
    with warnings.catch_warnings():  # the closed sink refuses what comes after; contexta carries on
        warnings.simplefilter("ignore", CaptureWarning)
        left_open.close()
        run.close()
        ctx.close()


def test_a_failing_export_does_not_reach_the_program_and_is_counted_and_parked(tmp_path: Path) -> None:
    class Broken:
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("tracer exploded")

    class BrokenProvider:
        def get_tracer(self, *args: Any, **kwargs: Any) -> Broken:
            return Broken()

    log = InMemorySink()
    sink = OpenTelemetrySink(tracer_provider=BrokenProvider())  # type: ignore[arg-type]
    with (
        pytest.warns(CaptureWarning, match="tracer exploded"),
        Contexta(workspace=tmp_path / "ws", config={"project_name": "otel"}, sinks=[log, sink]) as ctx,
    ):
        with ctx.run("r") as run:
            run.metric("loss", 0.5)
        stats = ctx.capture_stats()
        series = ctx.get_metric_series("r", "loss")

    assert stats.failed >= 1 and stats.outboxed >= 1
    assert [point.value for point in series.points] == [0.5]
    assert len(log.records()) == 1
    assert list((tmp_path / "ws" / "cache" / "outbox").rglob("*")), "the refused batch is parked"


class _Receiver:
    """A loopback OTLP/HTTP receiver: decodes each POST /v1/traces and /v1/metrics body."""

    def __init__(self, port: int = 0) -> None:
        self.traces: list[ExportTraceServiceRequest] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    receiver.traces.append(ExportTraceServiceRequest.FromString(body))
                elif self.path == "/v1/metrics":
                    receiver.metrics.append(ExportMetricsServiceRequest.FromString(body))
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def span_names(self) -> list[str]:
        return sorted(
            span.name
            for request in self.traces
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        )

    def metric_sums(self) -> dict[str, float]:
        """The last cumulative sum exported per histogram."""
        sums: dict[str, float] = {}
        for request in self.metrics:
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        sums[metric.name] = sum(point.sum for point in metric.histogram.data_points)
        return sums

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    running = _Receiver()
    yield running
    running.stop()


_EXPECTED = [
    "batch holdout",
    "forward",
    "run train-eval",
    "sample case-1",
    "sample case-2",
    "stage evaluate",
    "stage export",
    "stage train",
]


def test_the_real_otlp_http_exporter_delivers_spans_and_metrics(tmp_path: Path, receiver: _Receiver) -> None:
    sink = OpenTelemetrySink(endpoint=f"http://127.0.0.1:{receiver.port}", service_name="otel-test")
    workspace = tmp_path / "ws"
    log = LocalJsonlSink(workspace / "cache" / "capture")  # keeping the capture log beside the sink
    with Contexta(workspace=workspace, config={"project_name": "otel"}, sinks=[log, sink]) as ctx:
        _capture(ctx)

    assert receiver.span_names() == _EXPECTED
    resource = receiver.traces[0].resource_spans[0].resource
    assert {"service.name": "otel-test"}.items() <= {
        a.key: a.value.string_value for a in resource.attributes
    }.items()
    spans = {
        span.name: span
        for request in receiver.traces
        for resource_spans in request.resource_spans
        for scope in resource_spans.scope_spans
        for span in scope.spans
    }
    assert spans["stage export"].status.code == 2  # STATUS_CODE_ERROR
    assert spans["stage export"].status.message == "ValueError: disk full"
    assert spans["stage train"].parent_span_id == spans["run train-eval"].span_id
    assert spans["sample case-1"].parent_span_id == spans["batch holdout"].span_id
    assert receiver.metric_sums() == {"loss": pytest.approx(1.65), "correct": 1.0}
    assert (workspace / "cache" / "capture").is_dir() and log.file_path_for("RECORD").stat().st_size > 0


def test_nothing_is_lost_while_the_collector_is_down(tmp_path: Path) -> None:
    down = _Receiver()  # take a free port, then stop listening on it: the collector is down
    port = down.port
    down.stop()
    sink = OpenTelemetrySink(endpoint=f"http://127.0.0.1:{port}", timeout_s=0.5)
    ctx = Contexta(workspace=tmp_path / "ws", config={"project_name": "otel"}, sinks=[sink])
    _capture(ctx)
    ctx.flush()

    assert sink.force_flush(timeout_s=2) is False  # the export failed ...
    assert sink.stats().spans_retained == len(_EXPECTED)  # ... and the spans were kept
    assert sink.stats().failed_exports >= 1
    up = _Receiver(port)  # the collector comes back on the same address
    try:
        ctx.close()
        assert up.span_names() == _EXPECTED
        assert sink.stats().spans_lost == 0 and sink.stats().spans_retained == 0
        assert up.metric_sums() == {"loss": pytest.approx(1.65), "correct": 1.0}
    finally:
        up.stop()


def test_without_the_sdk_the_constructor_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("opentelemetry.sdk", "opentelemetry.sdk.trace"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError) as missing:
        OpenTelemetrySink()
    assert missing.value.code == "dependency_missing"
    assert "pip install 'contexta[opentelemetry]'" in str(missing.value)


def test_bad_arguments_are_refused_at_the_call() -> None:
    with pytest.raises(ConfigurationError) as refused:
        OpenTelemetrySink(tracer_provider=TracerProvider(), metrics="summary")
    assert refused.value.code == "opentelemetry_metrics_invalid"


def test_import_contexta_leaves_opentelemetry_unloaded() -> None:
    program = (
        "import sys, contexta, contexta.integrations\n"
        "from contexta import Contexta\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
