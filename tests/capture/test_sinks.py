"""Sinks: the capture-log line shapes of SPEC §5, torn tails, and the memory, stdout and composite sinks."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import blake3
import orjson
import pytest

from contexta import Contexta
from contexta.capture import (
    CaptureBatch,
    CompositeSink,
    InMemorySink,
    LocalJsonlSink,
    Sink,
    StdoutSink,
    hash_file,
    read_capture_log,
)
from contexta.contract import MetricRecord, model_from_dict, parse_timestamp
from contexta.errors import CaptureError, ValidationError

LINE_KEYS = {"captured_at", "family", "payload_type", "payload_ref", "sink_name", "payload"}
# the envelope keys a record captured on a stage must carry; the others are null there and may be omitted
STAGE_ENVELOPE_KEYS = {
    "record_ref",
    "record_type",
    "recorded_at",
    "observed_at",
    "producer_ref",
    "run_ref",
    "stage_execution_ref",
    "completeness_marker",
    "degradation_marker",
    "schema_version",
}
ENVELOPE_KEYS = STAGE_ENVELOPE_KEYS | {
    "batch_execution_ref",
    "sample_observation_ref",
    "deployment_execution_ref",
}


class FailingSink:
    """Raises on every write until `healthy` is set."""

    def __init__(self, name: str = "failing"):
        self.name = name
        self.healthy = False
        self.entries: list[Any] = []

    def write(self, batch: CaptureBatch) -> None:
        if not self.healthy:
            raise OSError("remote endpoint is down")
        self.entries.extend(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_contexta(tmp_path: Path, sinks: list[Any] | None = None, **capture: Any) -> Contexta:
    return Contexta(
        workspace=tmp_path / ".contexta", config={"project_name": "p", "capture": capture}, sinks=sinks
    )


def capture_dir(ctx: Contexta) -> Path:
    return ctx.workspace / "cache" / "capture"


def assert_envelope_on_stage(
    envelope: dict[str, Any], record_type: str, run_ref: str, stage_ref: str
) -> None:
    assert STAGE_ENVELOPE_KEYS <= set(envelope) <= ENVELOPE_KEYS
    for key in set(envelope) - STAGE_ENVELOPE_KEYS:
        assert envelope[key] is None, key
    assert envelope["record_type"] == record_type
    assert envelope["run_ref"] == run_ref
    assert envelope["stage_execution_ref"] == stage_ref
    assert envelope["record_ref"].startswith("record:p.r.")
    assert envelope["completeness_marker"] == "complete"
    assert envelope["degradation_marker"] == "none"
    assert envelope["recorded_at"].endswith("Z") and envelope["observed_at"].endswith("Z")
    parse_timestamp(envelope["recorded_at"])
    parse_timestamp(envelope["observed_at"])


# -- LocalJsonlSink: the SPEC §5 line shapes -------------------------------------------------------


def test_local_jsonl_sink_writes_the_spec_line_shapes(tmp_path: Path) -> None:
    model_file = tmp_path / "model.bin"
    data = os.urandom(100_000)
    model_file.write_bytes(data)
    ctx = open_contexta(tmp_path)
    try:
        with ctx.run("r", dataset_ref="dataset:local.iris") as run, run.stage("evaluate") as stage:
            stage.metric("macro.f1", 0.9, unit="ratio", step=3, tags={"split": "val"})
            stage.event("eval.done", message="finished", level="warning", attributes={"rows": 150})
            registered = stage.register_artifact("model", model_file, attributes={"format": "bin"})
        records = read_capture_log(capture_dir(ctx) / "record.jsonl")
        artifacts = read_capture_log(capture_dir(ctx) / "artifact.jsonl")
        contexts = read_capture_log(capture_dir(ctx) / "context.jsonl")
    finally:
        ctx.close()

    assert records.clean and artifacts.clean and contexts.clean

    # record.jsonl: one metric line, one event line
    metric_line, event_line = records.lines
    for line in (metric_line, event_line):
        assert set(line) == LINE_KEYS
        assert line["family"] == "RECORD"
        assert line["sink_name"] == "local-jsonl"
        assert set(line["payload"]) == {"envelope", "payload"}
        assert line["payload_ref"] == line["payload"]["envelope"]["record_ref"]
        parse_timestamp(line["captured_at"])

    assert metric_line["payload_type"] == "MetricRecord"
    assert_envelope_on_stage(metric_line["payload"]["envelope"], "metric", run.ref, stage.ref)
    assert metric_line["payload"]["payload"] == {
        "metric_key": "macro.f1",
        "value": 0.9,
        "value_type": "float64",
        "unit": "ratio",
        "step": 3,
        "aggregation_scope": "step",
        "subject_ref": stage.ref,
        "tags": {"split": "val"},
    }
    assert isinstance(model_from_dict("MetricRecord", metric_line["payload"]), MetricRecord)

    assert event_line["payload_type"] == "StructuredEventRecord"
    assert_envelope_on_stage(event_line["payload"]["envelope"], "event", run.ref, stage.ref)
    assert event_line["payload"]["payload"] == {
        "event_key": "eval.done",
        "level": "warning",
        "message": "finished",
        "attributes": {"rows": 150},
        "origin_marker": "explicit_capture",
        "subject_ref": stage.ref,
    }
    assert metric_line["payload_ref"] != event_line["payload_ref"]

    # artifact.jsonl
    (artifact_line,) = artifacts.lines
    assert LINE_KEYS - {"payload_ref"} <= set(artifact_line) <= LINE_KEYS
    assert artifact_line["family"] == "ARTIFACT"
    assert artifact_line["sink_name"] == "local-jsonl"
    payload = artifact_line["payload"]
    assert set(payload) == {"binding_status", "manifest", "source"}
    assert payload["binding_status"] == "BOUND"
    manifest = payload["manifest"]
    absolute = os.path.abspath(model_file)
    assert {
        "artifact_kind",
        "artifact_ref",
        "run_ref",
        "stage_execution_ref",
        "location_ref",
        "hash_algorithm",
        "hash_value",
        "size_bytes",
        "created_at",
        "attributes",
    } <= set(manifest)
    assert manifest["artifact_kind"] == "model"
    assert re.fullmatch(r"artifact:p\.r\.model-[0-9a-f]{12}", manifest["artifact_ref"])
    assert manifest["artifact_ref"] == registered.payload["manifest"].artifact_ref
    assert manifest["run_ref"] == run.ref
    assert manifest["stage_execution_ref"] == stage.ref
    assert manifest["location_ref"] == f"path:{absolute}"
    assert manifest["hash_algorithm"] == "blake3"
    assert manifest["hash_value"] == blake3.blake3(data).hexdigest() == hash_file(model_file).hash_value
    assert manifest["size_bytes"] == len(data)
    assert manifest["attributes"] == {"format": "bin"}
    parse_timestamp(manifest["created_at"])
    assert {"exists": True, "kind": "PATH", "uri": absolute}.items() <= payload["source"].items()

    # context.jsonl: scopes opened and closed
    assert [
        (line["payload_type"], line["payload"]["status"])
        for line in contexts.lines
        if line["payload_type"] != "EnvironmentSnapshot"
    ] == [
        ("Run", "open"),
        ("StageExecution", "open"),
        ("StageExecution", "completed"),
        ("Run", "completed"),
    ]
    for line in contexts.lines:
        assert set(line) == LINE_KEYS
        assert line["family"] == "CONTEXT"
        assert line["sink_name"] == "local-jsonl"
    run_open, stage_open, stage_closed, run_closed = (
        line["payload"] for line in contexts.lines if line["payload_type"] != "EnvironmentSnapshot"
    )
    assert {"run_ref", "project_ref", "name", "status", "started_at"} <= set(run_open)
    assert (run_open["run_ref"], run_open["project_ref"], run_open["name"]) == (run.ref, "project:p", "r")
    assert run_open["dataset_ref"] == "dataset:local.iris"
    assert run_open.get("ended_at") is None
    assert run_closed["ended_at"] == run.ended_at and run_closed["started_at"] == run.started_at
    assert {"stage_execution_ref", "run_ref", "stage_name", "status", "started_at"} <= set(stage_open)
    assert stage_open["stage_execution_ref"] == stage.ref and stage_open["run_ref"] == run.ref
    assert stage_open["stage_name"] == "evaluate"
    assert stage_closed["ended_at"] == stage.ended_at


def test_file_path_for_names_the_file_of_each_family(tmp_path: Path) -> None:
    sink = LocalJsonlSink(tmp_path / "logs")
    root = Path(os.path.abspath(tmp_path / "logs"))
    assert sink.file_path_for("RECORD") == root / "record.jsonl"
    assert sink.file_path_for("ARTIFACT") == root / "artifact.jsonl"
    with pytest.raises(ValidationError):
        sink.file_path_for("bogus")
    assert isinstance(sink, Sink)
    assert sink.name == "local-jsonl"


def test_a_torn_last_line_is_reported_and_never_glued_to_the_next_write(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx, ctx.run("first") as run:
        for i in range(10):
            run.metric("m", float(i), step=i)
    record_file = workspace / "cache" / "capture" / "record.jsonl"
    before = read_capture_log(record_file)
    assert before.clean and len(before.lines) == 10

    with open(record_file, "ab") as handle:  # a crash cut the last write short
        handle.write(b'{"captured_at": "x", "fam')
    torn = read_capture_log(record_file)
    assert torn.torn_tail
    assert not torn.clean
    assert torn.lines == before.lines
    assert torn.skipped_lines == [11]

    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx, ctx.run("second") as run:
        for i in range(5):
            run.metric("n", float(i), step=i)
    after = read_capture_log(record_file)
    assert after.lines[:10] == before.lines
    assert [line["payload"]["payload"]["metric_key"] for line in after.lines[10:]] == ["n"] * 5
    assert after.skipped_lines == [11]  # the fragment stays one unreadable line of its own
    assert not after.torn_tail
    raw_lines = record_file.read_bytes().split(b"\n")
    assert raw_lines[-1] == b""
    assert raw_lines[10] == b'{"captured_at": "x", "fam'
    for raw in raw_lines[11:-1]:  # everything the new Contexta appended parses on its own
        assert orjson.loads(raw)["payload"]["payload"]["metric_key"] == "n"


def test_local_jsonl_sink_with_fsync_durability_writes_every_record(tmp_path: Path) -> None:
    ctx = open_contexta(tmp_path, durability="fsync")
    try:
        (default_sink,) = ctx.sinks
        assert isinstance(default_sink, LocalJsonlSink)
        assert default_sink.durability == "fsync"
        with ctx.run("r") as run:
            for i in range(100):
                run.metric("m", float(i), step=i)
        log = read_capture_log(capture_dir(ctx) / "record.jsonl")
    finally:
        ctx.close()
    assert log.clean
    assert [line["payload"]["payload"]["step"] for line in log.lines] == list(range(100))

    explicit = LocalJsonlSink(tmp_path / "durable", durability="fsync")
    with Contexta(workspace=tmp_path / "other", config={"project_name": "p"}, sinks=[explicit]) as other:
        with other.run("r") as run:
            run.metric("m", 1.0)
        assert len(read_capture_log(explicit.file_path_for("RECORD")).lines) == 1

    with pytest.raises(ValidationError):
        LocalJsonlSink(tmp_path / "x", durability="sometimes")


# -- InMemorySink and StdoutSink -------------------------------------------------------------------


def test_in_memory_sink_records_are_contract_metric_records(tmp_path: Path) -> None:
    sink = InMemorySink()
    with open_contexta(tmp_path, [sink]) as ctx, ctx.run("r") as run, run.stage("fit") as stage:
        for i in range(20):
            stage.metric("loss", 1.0 / (i + 1), step=i)

    records = sink.records()
    assert len(records) == 20
    assert all(isinstance(record, MetricRecord) for record in records)
    assert [record.payload.step for record in records] == list(range(20))
    assert {record.payload.metric_key for record in records} == {"loss"}
    assert {record.envelope.run_ref for record in records} == {run.ref}
    assert {record.envelope.stage_execution_ref for record in records} == {stage.ref}
    assert records[0].payload.value == 1.0
    lines = sink.lines("RECORD")
    assert len(lines) == 20
    assert all(set(line) == LINE_KEYS and line["sink_name"] == "memory" for line in lines)


def test_stdout_sink_writes_json_lines_to_the_given_stream(tmp_path: Path) -> None:
    stream = io.StringIO()
    with open_contexta(tmp_path, [StdoutSink(stream)]) as ctx, ctx.run("r") as run:
        for i in range(7):
            run.metric("m", float(i), step=i)
    text = stream.getvalue()
    assert text.endswith("\n")
    lines = [json.loads(raw) for raw in text.splitlines()]
    assert all(set(line) == LINE_KEYS for line in lines)
    assert {line["sink_name"] for line in lines} == {"stdout"}
    metric_lines = [line for line in lines if line["payload_type"] == "MetricRecord"]
    assert [line["payload"]["payload"]["step"] for line in metric_lines] == list(range(7))
    assert {line["payload_type"] for line in lines if line["family"] == "CONTEXT"} == {
        "Run",
        "EnvironmentSnapshot",
    }


# -- CompositeSink ---------------------------------------------------------------------------------


def _a_real_batch(tmp_path: Path) -> CaptureBatch:
    source = InMemorySink("source")
    with (
        Contexta(workspace=tmp_path / "source", config={"project_name": "p"}, sinks=[source]) as ctx,
        ctx.run("r") as run,
    ):
        for i in range(5):
            run.metric("m", float(i), step=i)
    return CaptureBatch(source.entries)


def test_composite_sink_used_directly_raises_sink_failed_after_feeding_the_healthy_member(
    tmp_path: Path,
) -> None:
    batch = _a_real_batch(tmp_path)
    memory = InMemorySink("memory")
    composite = CompositeSink([memory, FailingSink("failing")])

    with pytest.raises(CaptureError) as excinfo:
        composite.write(batch)

    assert excinfo.value.code == "sink_failed"
    assert "failing" in excinfo.value.message
    assert memory.entries == list(batch)
    assert len(batch) == 8  # run open + environment snapshot + 5 metrics + run closed


@pytest.mark.filterwarnings("ignore::contexta.capture.CaptureWarning")
def test_composite_sink_given_to_contexta_isolates_its_members(tmp_path: Path) -> None:
    memory = InMemorySink("memory")
    failing = FailingSink("failing")
    ctx = open_contexta(tmp_path, [CompositeSink([memory, failing])])
    try:
        with ctx.run("r") as run:
            for i in range(50):
                run.metric("m", float(i), step=i)
        report = ctx.flush()
        assert [
            entry.payload["payload"]["step"]
            for entry in memory.entries
            if entry.payload_type == "MetricRecord"
        ] == list(range(50))
        assert len(memory.entries) == 53  # + run open, environment snapshot, run closed
        assert report.stats.sink_failures.get("failing", 0) > 0
        assert report.stats.sink_failures.get("memory", 0) == 0
        outbox = ctx.workspace / "cache" / "outbox"
        assert sorted((outbox / "failing").glob("*.jsonl"))
        assert not (outbox / "memory").exists()

        failing.healthy = True
        replay = ctx.replay_outbox()
        assert replay.delivered_records == 53
        assert len(failing.entries) == 53
        # The healthy member is not fed the parked batches again.
        assert len(memory.entries) == 53
    finally:
        failing.healthy = True
        ctx.close()


def test_duplicate_sink_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as excinfo:
        CompositeSink([InMemorySink("same"), InMemorySink("same")])
    assert excinfo.value.code == "sink_name_duplicate"

    with pytest.raises(ValidationError) as excinfo:
        open_contexta(tmp_path, [InMemorySink(), InMemorySink()])
    assert excinfo.value.code == "sink_name_duplicate"

    with pytest.raises(ValidationError) as excinfo:  # also across a composite's members
        open_contexta(
            tmp_path, [InMemorySink("memory"), CompositeSink([InMemorySink("memory")], name="group")]
        )
    assert excinfo.value.code == "sink_name_duplicate"
