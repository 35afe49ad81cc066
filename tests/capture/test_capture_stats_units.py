"""`capture_stats()` counts records, in one unit, so its counters add up.

A `metrics({10 keys})` call is 10 records, an opening or closing of a scope is one, and so is each
marker the writer adds for records it lost. Once a `flush()` has returned, `queued == written +
failed`; what the overflow policy refused is in `dropped` and never in `queued`. Every test drives a
real `Contexta` over a workspace in `tmp_path`; the sinks here are ordinary objects that satisfy the
`Sink` protocol (gated, failing or counting on purpose), never mocks.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture import CaptureBatch, CaptureStats, CaptureWarning, InMemorySink
from contexta.errors import ValidationError

TEN_KEYS = {f"head_{number}/loss": 0.1 * number for number in range(10)}


def _open(tmp_path: Path, sinks: list[Any], **capture: Any) -> Contexta:
    return Contexta(
        workspace=tmp_path / ".contexta", config={"project_name": "p", "capture": capture}, sinks=sinks
    )


def _adds_up(stats: CaptureStats) -> None:
    assert stats.pending == 0
    assert stats.queued == stats.written + stats.failed, stats


class FlakySink(InMemorySink):
    """Refuses every other batch it is given (a disk that fills and drains) until `healthy` is set."""

    def __init__(self, name: str = "flaky"):
        super().__init__(name)
        self.healthy = False
        self.calls = 0

    def write(self, batch: CaptureBatch) -> None:
        self.calls += 1
        if not self.healthy and self.calls % 2:
            raise OSError(28, "No space left on device")
        super().write(batch)


class GatedSink(InMemorySink):
    """Keeps what it is given, but only once `gate` is set: until then the writer backs up."""

    def __init__(self) -> None:
        super().__init__("gated")
        self.gate = threading.Event()

    def write(self, batch: CaptureBatch) -> None:
        self.gate.wait(30)  # bounded, so a broken test cannot hang the session
        super().write(batch)


class CountingSink:
    """Counts records and keeps none (for volumes a list would make slow)."""

    name = "counting"

    def __init__(self) -> None:
        self.records = 0

    def write(self, batch: CaptureBatch) -> None:
        self.records += len(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


# -- one unit ------------------------------------------------------------------------------------


def test_every_kind_of_capture_counts_as_the_records_it_becomes(tmp_path: Path) -> None:
    # Breaks if: a metrics() call counts once in `queued` but 10 times in `written` (or the other way
    # round); scope openings, closings, events, spans or artifacts count in one counter and not the
    # other; `written` counts a record once per sink (here two: memory and the store).
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    sink = InMemorySink()
    with _open(tmp_path, [sink]) as ctx:
        run = ctx.run("mixed")
        stage = run.stage("train")
        # The environment snapshot is captured by a thread of its own: let it land before counting.
        deadline = time.monotonic() + 60
        while not any(entry.payload_type == "EnvironmentSnapshot" for entry in sink.entries):
            assert time.monotonic() < deadline, "the environment snapshot never arrived"
            ctx.flush()
        # Seen in memory, it may still be on its way into the store: settle it before counting.
        before = ctx.flush().stats

        stage.metrics(TEN_KEYS, step=0)
        assert ctx.capture_stats().queued == before.queued + 10  # queued, written or not yet
        ctx.flush()
        after = ctx.capture_stats()
        assert (after.queued, after.written) == (before.queued + 10, before.written + 10)

        with stage.sample("case-0"):
            pass
        ctx.flush()
        assert ctx.capture_stats().written == after.written + 2  # an opening and a closing

        for step in range(1, 50):
            stage.metric("loss", 1.0 / step, step=step)
            stage.metrics(TEN_KEYS, step=step)
        stage.event("epoch.done", message="epoch 0 done")
        stage.span("dataloader", attributes={"workers": 2})
        with stage.batch("epoch-0") as batch, batch.sample("case-1") as sample:
            sample.metrics({"score": 1.0, "tokens": 12.0})
        with stage.operation("checkpoint"):
            pass
        run.register_artifact("model", model)
        with pytest.raises(ValidationError) as refused:
            stage.metrics({"ok": 1.0, "also_ok": 2.0, "bad key!": 3.0})  # two of three are recorded
        assert refused.value.code == "metrics_partly_invalid"
        stage.close()
        run.close()
        stats = ctx.flush().stats
        _adds_up(stats)
        assert stats.failed == stats.dropped == 0
        assert stats.written == len(sink.entries)
        kinds = Counter(entry.payload_type for entry in sink.entries)
        assert kinds["MetricRecord"] == 10 + 49 * 11 + 2 + 2
    assert ctx.capture_stats().queued == len(sink.entries)


# -- sinks that fail -----------------------------------------------------------------------------


def test_a_failing_sink_keeps_the_counters_adding_up_and_its_parked_records_are_failed(
    tmp_path: Path,
) -> None:
    # Breaks if: a batch one sink refused is counted in `written` (another sink took it) or not at
    # all; `failed`/`outboxed` count batches, calls or items instead of records (replaying the outbox
    # then delivers a different number of records than `failed` says were parked).
    healthy, flaky = InMemorySink("healthy"), FlakySink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        with _open(tmp_path, [healthy, flaky], max_batch_size=7, persist=False) as ctx:
            with ctx.run("r") as run, run.stage("train") as stage:
                for step in range(30):
                    stage.metric("loss", 1.0 / (step + 1), step=step)
                    stage.metrics(TEN_KEYS, step=step)
                    stage.event("step", message=f"step {step}")
                    ctx.flush()
            stats = ctx.flush().stats
            _adds_up(stats)
            assert stats.failed > 0 and stats.written > 0
            assert stats.outboxed == stats.failed and stats.lost == 0
            assert stats.queued == len(healthy.entries)  # the healthy sink got everything
            assert len(flaky.entries) == stats.written
            assert stats.sink_failures == {"flaky": flaky.calls - flaky.batches}

            flaky.healthy = True
            replayed = ctx.replay_outbox()
            assert replayed.delivered_records == stats.failed
            assert len(flaky.entries) == stats.queued


def test_records_an_outbox_cannot_keep_are_failed_and_lost(tmp_path: Path) -> None:
    # Breaks if: records whose sink failed and which the outbox could not park either fall out of
    # every counter (queued > written + failed), or are counted as outboxed.
    (tmp_path / ".contexta" / "cache").mkdir(parents=True)
    (tmp_path / ".contexta" / "cache" / "outbox").write_text("a file where the outbox directory should be")
    flaky = FlakySink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        with _open(tmp_path, [flaky], max_batch_size=5, persist=False) as ctx:
            with ctx.run("r") as run:
                for step in range(20):
                    run.metrics(TEN_KEYS, step=step)
                    ctx.flush()
            stats = ctx.flush().stats
    _adds_up(stats)
    assert stats.lost == stats.failed > 0
    assert stats.outboxed == 0
    assert stats.written == len(flaky.entries)


# -- overflow ------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["metric", "metrics"])
@pytest.mark.parametrize("overflow", ["drop_newest", "drop_oldest", "block"])
def test_records_the_overflow_policy_refused_are_dropped_not_queued(
    tmp_path: Path, overflow: str, call: str
) -> None:
    # Breaks if: a refused record is counted in `queued` too, or not at all; a refused metrics() call
    # of 10 keys counts as 1 dropped record instead of 10 (so `dropped` and the DegradedRecord's
    # `dropped_count` under-report the loss tenfold); the counters stop adding up after an overflow.
    keys = TEN_KEYS if call == "metrics" else {"loss": 0.5}
    sink = GatedSink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        ctx = _open(
            tmp_path,
            [sink],
            queue_capacity=16,
            max_batch_size=4,
            overflow=overflow,
            block_timeout_s=0.001,
            persist=False,
        )
        try:
            run = ctx.run("flood")
            calls = 300
            for step in range(calls):
                if call == "metrics":
                    run.metrics(keys, step=step)
                else:
                    run.metric("loss", 0.5, step=step)
            sink.gate.set()
            run.close()
            stats = ctx.flush().stats
        finally:
            sink.gate.set()
            ctx.close()

    _adds_up(stats)
    assert stats.dropped > 0, "the tiny queue never overflowed: the test proves nothing"
    markers = [entry for entry in sink.entries if entry.payload_type == "DegradedRecord"]
    assert markers
    captured = 1 + 1 + calls * len(keys) + 1  # run opened, environment, the records, run closed
    # Each record captured is either queued (and written) or dropped, never both; the writer's
    # markers are records of their own.
    assert stats.queued + stats.dropped == captured + len(markers)
    assert stats.written == len(sink.entries)
    assert sum(marker.payload["payload"]["dropped_count"] for marker in markers) == stats.dropped
    metrics_written = sum(entry.payload_type == "MetricRecord" for entry in sink.entries)
    assert metrics_written + stats.dropped == calls * len(keys)


# -- queued is a running total -------------------------------------------------------------------


def test_queued_never_goes_backwards_while_the_writer_builds_a_batch(tmp_path: Path) -> None:
    # Breaks if: records the writer has taken from the queue but not yet built are in no counter, so
    # `queued` (documented as "still queued, being written, or written") drops from tens of thousands
    # to almost nothing while a big batch is built, and a progress display watching it jumps back.
    sink = CountingSink()
    keys = {f"feature_{number}": float(number) for number in range(1000)}
    backwards: list[tuple[int, int]] = []
    overtaken: list[CaptureStats] = []
    stop = threading.Event()
    with _open(tmp_path, [sink], persist=False) as ctx:
        run = ctx.run("bursts")
        ctx.flush()

        def watch() -> None:
            highest = 0
            while not stop.is_set():
                stats = ctx.capture_stats()
                if stats.queued < highest:
                    backwards.append((highest, stats.queued))
                if stats.written + stats.failed > stats.queued:
                    overtaken.append(stats)
                highest = max(highest, stats.queued)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            for _ in range(10):  # bursts of 50,000 records, each built as one batch
                for step in range(50):
                    run.metrics(keys, step=step)
                time.sleep(0.2)
                if backwards:
                    break
        finally:
            stop.set()
            watcher.join(30)
        run.close()
        _adds_up(ctx.flush().stats)
    assert not overtaken, overtaken[:3]
    assert not backwards, f"queued went backwards {len(backwards)} times, e.g. {backwards[:3]}"
