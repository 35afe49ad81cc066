"""Adversarial review of the OpenTelemetry sink (issue 20, item 5): cases past the happy path, each
against the real SDK (in-memory exporter and reader) with a `tmp_path` workspace."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contexta import Contexta
from contexta.contract import StructuredEventRecord
from contexta.errors import CaptureWarning
from contexta.integrations.opentelemetry import OpenTelemetrySink


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


class _LimitedCollector:
    """A loopback OTLP/HTTP collector that refuses a request body over `limit` bytes with 413, as a
    real collector or a proxy in front of one does (the OTLP exporter does not retry a 413)."""

    def __init__(self, limit: int) -> None:
        self.spans: list[tuple[str, dict[str, str]]] = []
        self.refused = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if len(body) > limit:
                    collector.refused += 1
                    self.send_response(413)
                elif self.path == "/v1/traces":
                    request = ExportTraceServiceRequest.FromString(body)
                    collector.spans.extend(
                        (span.name, {a.key: a.value.string_value for e in span.events for a in e.attributes})
                        for resource in request.resource_spans
                        for scope in resource.scope_spans
                        for span in scope.spans
                    )
                    self.send_response(200)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_one_huge_attribute_does_not_block_every_later_span_at_the_collector(tmp_path: Path) -> None:
    """An event attribute of megabytes (a dumped config, a long prompt) made a request the collector
    refuses; the sink's own exporter kept that chunk and sent it first forever, so nothing after it
    was ever delivered. Long values are cut on the sink's own spans (the store keeps them whole)."""
    collector = _LimitedCollector(limit=1 << 20)
    huge = "x" * (2 << 20)
    try:
        sink = OpenTelemetrySink(endpoint=f"http://127.0.0.1:{collector.port}", metrics="span_events")
        with Contexta(workspace=tmp_path / "ws", config={"project_name": "otel"}, sinks=[sink]) as ctx:
            with ctx.run("big") as run:
                run.event("prompt", message="the whole prompt", attributes={"text": huge})
            with ctx.run("after"):
                pass
            assert sink.force_flush(timeout_s=5)
            (event,) = [
                r for r in ctx.get_run_snapshot("big").records if isinstance(r, StructuredEventRecord)
            ]
            assert (event.payload.attributes or {})["text"] == huge  # the store keeps the value whole
        names = sorted(name for name, _ in collector.spans)
        assert names == ["run after", "run big"]
        (big_events,) = [events for name, events in collector.spans if name == "run big"]
        assert 0 < len(big_events["text"]) < len(huge) and huge.startswith(big_events["text"])
        assert sink.stats().spans_lost == 0 and sink.stats().spans_retained == 0
    finally:
        collector.stop()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_forked_child_never_exports_the_spans_its_parent_has_open(
    tmp_path: Path, memory: tuple[InMemorySpanExporter, InMemoryMetricReader, OpenTelemetrySink]
) -> None:
    """A child closing its Contexta (or leaving through atexit) closes the sink it inherited: it must
    not end and export the parent's open run and stage spans (same span ids, a wrong end) as its own."""
    exporter, _reader, sink = memory
    with (
        Contexta(workspace=tmp_path / "ws", config={"project_name": "otel"}, sinks=[sink]) as ctx,
        ctx.run("parent") as run,
        run.stage("train") as stage,
    ):
        stage.metric("loss", 0.5, step=0)
        ctx.flush()  # the parent's run and stage spans are open in the sink when it forks
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its own run, then close; report what it exported
            status = 1
            try:
                os.close(read_end)
                with ctx.run("child") as child, child.stage("work") as work:
                    work.metric("x", 1.0)
                ctx.close()
                names = sorted(span.name for span in exporter.get_finished_spans())
                os.write(write_end, ",".join(names).encode())
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            exported_by_child = pipe.read().split(",")
        assert os.waitpid(pid, 0)[1] == 0
    assert exported_by_child == ["run child", "stage work"]
    spans = exporter.get_finished_spans()
    assert sorted(span.name for span in spans) == ["run parent", "stage train"]
    assert not any("contexta.ended_by" in (span.attributes or {}) for span in spans)


class _SilentCollector:
    """A collector that takes each request and never answers (overloaded, or a proxy in front of a
    dead one): every export attempt costs the exporter its whole timeout. Counts the attempts."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self._held.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := connection.recv(65_536):
                for line in data.split(b"\r\n"):
                    if line.startswith(b"POST "):
                        self.requests.append(line.split()[1].decode())

    def stop(self) -> None:
        self._server.close()
        for connection in self._held:
            connection.close()


def test_close_keeps_to_close_timeout_when_the_collector_never_answers(tmp_path: Path) -> None:
    """`close_timeout_s` bounds closing: once it has passed, no new export is started. Closing made
    five attempts one after the other (span flush, metric flush, the kept spans, and one more each at
    shutdown), each costing the exporter's whole timeout: 50 s at the defaults, holding the
    program's exit."""
    collector = _SilentCollector()
    try:
        sink = OpenTelemetrySink(
            endpoint=f"http://127.0.0.1:{collector.port}", timeout_s=0.5, close_timeout_s=0.1
        )
        with Contexta(workspace=tmp_path / "ws", config={"project_name": "otel"}, sinks=[sink]) as ctx:
            with ctx.run("r") as run, run.stage("train") as stage:
                stage.metric("loss", 0.5, step=0)
            ctx.flush()
        # One span export (the first, started within the close timeout) and no more; the SDK's metric
        # reader may still start its final export on its own (daemon) thread at shutdown.
        assert collector.requests.count("/v1/traces") == 1, collector.requests
        assert collector.requests.count("/v1/metrics") <= 1, collector.requests
        assert sink.stats().spans_lost == 2  # the run and the stage: given up on, and counted
    finally:
        collector.stop()
