"""A record no sink can encode costs only itself: the writer puts a degraded record in its place.

The capture calls store or refuse whatever JSON and UTF-8 cannot carry (see
tests/reliability/test_unencodable_input.py); these tests put records the checks would never let
through onto the pipeline anyway (the attribute check switched off, or a tuple queued directly), to
prove the writer's own isolation: every other record of the batch reaches the capture log and the
store, the bad one becomes a counted `DegradedRecord` (reason `record_unencodable`) that says why,
and nothing is parked or lost beside it.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import orjson
import pytest

from contexta import Contexta
from contexta.capture import CaptureBatch, CaptureWarning, InMemorySink, LocalJsonlSink, read_capture_log
from contexta.capture._items import metric_item
from contexta.capture._scopes._session import CaptureSession
from contexta.contract import DegradedRecord

SAMPLES = 300
BAD = 150


class Unprintable:
    """An object no JSON encoder knows."""


@pytest.fixture
def unchecked_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attributes go into the pipeline exactly as given, as if the call's check had a hole."""
    monkeypatch.setattr(CaptureSession, "attributes", lambda self, value, field="attributes": value)


def _open(workspace: Path, sinks: list[Any] | None) -> Contexta:
    return Contexta(workspace=workspace, config={"project_name": "p"}, sinks=sinks)


def _stored(ctx: Contexta, record_type: str) -> list[Any]:
    return ctx.record_store.scan(run="run:p.r", record_type=record_type)


def _log_lines(ctx: Contexta) -> list[dict[str, Any]]:
    log = next(sink for sink in ctx.sinks if isinstance(sink, LocalJsonlSink))
    read = read_capture_log(log.file_path_for("RECORD"))
    assert not read.skipped_lines
    return read.lines


def _assert_counted(ctx: Contexta, report: Any) -> None:
    stats = ctx.capture_stats()
    assert stats.queued == stats.written + stats.failed, stats
    assert (stats.failed, stats.lost, stats.outboxed, dict(stats.sink_failures)) == (1, 1, 0, {}), stats
    assert any("record_unencodable" in error for error in report.errors), report.errors


@pytest.mark.parametrize("sinks", ["log and store", "store alone"])
def test_an_event_with_an_object_past_the_checks_costs_only_itself(
    tmp_path: Path, unchecked_attributes: None, sinks: str
) -> None:
    ctx = _open(tmp_path / ".contexta", None if sinks == "log and store" else [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ctx.run("r") as run, run.stage("s") as stage:
            for number in range(SAMPLES):
                with stage.sample(f"s{number}") as sample:
                    odd = {"x": Unprintable()} if number == BAD else {"n": number}
                    sample.event("answer", message=f"answer {number}", attributes=odd)
        report = ctx.flush()

    events = _stored(ctx, "event")
    assert sorted(event.payload.attributes["n"] for event in events) == [
        n for n in range(SAMPLES) if n != BAD
    ]
    assert len(ctx.list_samples("r")) == SAMPLES
    (marker,) = _stored(ctx, "degraded")
    assert isinstance(marker, DegradedRecord)
    assert marker.payload.reason_code == "record_unencodable"
    assert marker.payload.dropped_count == 1
    assert "answer" in marker.payload.message and "Unprintable" in marker.payload.message
    assert marker.envelope.sample_observation_ref == f"sample:p.r.s.s{BAD}"
    _assert_counted(ctx, report)
    assert any(
        issubclass(w.category, CaptureWarning) and "record_unencodable" in str(w.message) for w in caught
    )
    (issue,) = [issue for issue in ctx.diagnose_run("r").issues if issue.code == "degraded_record"]
    assert "record_unencodable" in issue.summary and "queue_capacity" not in issue.summary

    if sinks == "log and store":
        lines = _log_lines(ctx)
        logged = [line for line in lines if line["payload_type"] == "StructuredEventRecord"]
        assert len(logged) == SAMPLES - 1
        (logged_marker,) = [line for line in lines if line["payload_type"] == "DegradedRecord"]
        # The marker has the record number the event would have had: every other ref is unchanged.
        assert logged_marker["payload_ref"] == marker.envelope.record_ref
        assert {line["payload_ref"] for line in logged} == {event.envelope.record_ref for event in events}
    ctx.close()


class _SlowFirstWrite(InMemorySink):
    """Holds the writer back once, so the queue backs up and the following batches are full: the
    load that starts the log-writer process (see test_log_process.py)."""

    def __init__(self) -> None:
        super().__init__(name="slow-first")
        self._slowed = False

    def write(self, batch: CaptureBatch) -> None:
        if not self._slowed:
            self._slowed = True
            time.sleep(0.3)
        super().write(batch)


def test_metrics_that_are_not_numbers_cost_only_themselves_in_batches_the_log_process_writes(
    tmp_path: Path,
) -> None:
    log = LocalJsonlSink(tmp_path / ".contexta" / "cache" / "capture")
    ctx = _open(tmp_path / ".contexta", [_SlowFirstWrite(), log])
    bad_steps = {4_999, 12_345, 19_998}
    with (
        pytest.warns(CaptureWarning, match="record_unencodable"),
        ctx.run("r") as run,
        run.stage("s") as stage,
    ):
        for step in range(20_000):
            if step in bad_steps:  # what the metric() check refuses, queued past it
                item = metric_item(
                    time.time_ns(), stage._fields, "loss", Unprintable(), None, step, "step", None
                )
                stage._queue.put(item)
            else:
                stage.metric("loss", 1.0 / (step + 1), step=step)
        report = ctx.flush()
        used = log.log_process_pid

    assert used is not None, "full batches should have started the log-writer process"
    good = [step for step in range(20_000) if step not in bad_steps]
    assert [point.step for point in ctx.get_metric_series("r", "loss", stage="s").points] == good
    lines = _log_lines(ctx)
    assert [
        line["payload"]["payload"]["step"] for line in lines if line["payload_type"] == "MetricRecord"
    ] == good
    markers = [line["payload"]["payload"] for line in lines if line["payload_type"] == "DegradedRecord"]
    assert len(markers) == 3
    assert all(marker["reason_code"] == "record_unencodable" for marker in markers)
    assert all("Unprintable" in marker["message"] for marker in markers)
    assert len(_stored(ctx, "degraded")) == 3
    stats = ctx.capture_stats()
    assert stats.queued == stats.written + stats.failed, stats
    assert (stats.failed, stats.lost, stats.outboxed) == (3, 3, 0), stats
    assert any("record_unencodable" in error for error in report.errors)
    ctx.close()


class DiskFullSink(InMemorySink):
    """Refuses every batch as a full disk would (it never encodes anything itself)."""

    def write(self, batch: CaptureBatch) -> None:
        raise OSError(28, "No space left on device")


def test_a_batch_parked_in_the_outbox_keeps_every_record_it_can(
    tmp_path: Path, unchecked_attributes: None
) -> None:
    """The outbox encodes like the log: a batch a sink refused for another reason is parked whole,
    the record no encoder takes replaced, instead of being lost with it."""
    ctx = _open(tmp_path / ".contexta", [DiskFullSink("full")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        with ctx.run("r") as run:
            for number in range(20):
                odd = {"x": Unprintable()} if number == 7 else {"n": number}
                run.event("answer", message=f"answer {number}", attributes=odd)
        ctx.flush()

    stats = ctx.capture_stats()
    assert stats.queued == stats.written + stats.failed, stats
    assert stats.lost == 1 and stats.outboxed == stats.failed - 1, stats  # only the bad record is lost
    parked = [
        orjson.loads(line)
        for path in sorted(ctx.config.workspace.outbox_dir.rglob("*.jsonl"))
        for line in path.read_bytes().splitlines()[1:]
    ]
    answers = [line for line in parked if line["payload_type"] == "StructuredEventRecord"]
    assert sorted(line["payload"]["payload"]["attributes"]["n"] for line in answers) == [
        n for n in range(20) if n != 7
    ]
    (marker,) = [line for line in parked if line["payload_type"] == "DegradedRecord"]
    assert marker["payload"]["payload"]["reason_code"] == "record_unencodable"
    ctx.close()


def test_a_scope_record_that_cannot_be_encoded_is_kept_with_the_value_replaced(tmp_path: Path) -> None:
    """A run, stage or sample record is what other records hang on: it is written, with the value
    no encoder takes replaced by text naming it, so its run and records stay whole."""
    ctx = _open(tmp_path / ".contexta", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        with ctx.run("r") as run, run.stage("s") as stage:
            sample = stage.sample("odd")
            sample._details["retention_class"] = Unprintable()  # as if a check had let it through
            with sample:
                sample.metric("m", 1.0)
            for number in range(10):
                with stage.sample(f"s{number}") as other:
                    other.metric("m", float(number))
        report = ctx.flush()
    samples = {sample.name: sample for sample in ctx.list_samples("r")}
    assert len(samples) == 11
    assert samples["odd"].retention_class == "[unencodable: Unprintable]"
    assert len(ctx.get_metric_series("r", "m").points) == 11
    stats = ctx.capture_stats()
    assert stats.queued == stats.written + stats.failed and stats.failed == 0, stats
    assert any("SampleObservation" in error and "Unprintable" in error for error in report.errors)
    ctx.close()
