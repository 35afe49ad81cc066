"""The capture pipeline end to end: order, overflow policies, failing sinks, flush/close, stats, threads.

Every test drives a real `Contexta` with real files under `tmp_path`; the sinks defined here are ordinary
objects that satisfy the public `Sink` protocol (slow, gated or failing on purpose), not mocks.
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
from contexta.capture import (
    ACCEPTED,
    DROPPED,
    CaptureBatch,
    CapturedEntry,
    CaptureResult,
    CaptureStats,
    CaptureWarning,
    FlushReport,
    InMemorySink,
    LocalJsonlSink,
    ReplayReport,
    read_capture_log,
)
from contexta.capture._pipeline._queue import CaptureQueue
from contexta.contract import DegradedRecord
from contexta.errors import CaptureError, ClosedScopeError, ConflictError, LifecycleError

# -- sinks with deliberate behaviour ---------------------------------------------------------------


class SlowSink:
    """Keeps every entry it receives, but takes `delay_s` per batch and waits while `gate` is cleared."""

    def __init__(self, name: str = "slow", *, delay_s: float = 0.0, gate: threading.Event | None = None):
        self.name = name
        self.delay_s = delay_s
        self.gate = gate
        self._entries: list[CapturedEntry] = []
        self._lock = threading.Lock()

    def write(self, batch: CaptureBatch) -> None:
        if self.gate is not None:
            self.gate.wait(30)  # bounded, so a broken test cannot hang the session
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            self._entries.extend(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    @property
    def entries(self) -> list[CapturedEntry]:
        with self._lock:
            return list(self._entries)

    def metric_steps(self) -> list[int]:
        return [entry.payload["payload"]["step"] for entry in metric_entries(self.entries)]

    def degraded(self) -> list[CapturedEntry]:
        return [entry for entry in self.entries if entry.payload_type == "DegradedRecord"]


class FlakySink:
    """Refuses every batch (raises) until `healthy` is set; then keeps what it receives."""

    def __init__(self, name: str = "flaky"):
        self.name = name
        self.healthy = False
        self.refused_batches = 0
        self.entries: list[CapturedEntry] = []

    def write(self, batch: CaptureBatch) -> None:
        if not self.healthy:
            self.refused_batches += 1
            raise OSError("disk unplugged")
        self.entries.extend(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_contexta(tmp_path: Path, sinks: list[Any] | None = None, **capture: Any) -> Contexta:
    return Contexta(
        workspace=tmp_path / ".contexta", config={"project_name": "p", "capture": capture}, sinks=sinks
    )


def metric_entries(entries: list[CapturedEntry]) -> list[CapturedEntry]:
    return [entry for entry in entries if entry.payload_type == "MetricRecord"]


# -- 1. order and completeness at run exit ---------------------------------------------------------


def test_fifty_thousand_metrics_are_in_the_log_in_order_as_soon_as_the_run_block_exits(
    tmp_path: Path,
) -> None:
    count = 50_000
    ctx = open_contexta(tmp_path)
    try:
        with ctx.run("train") as run, run.stage("fit") as stage:
            for i in range(count):
                stage.metric("loss", float(i), step=i)
        # no flush: leaving the run block is the barrier
        log = read_capture_log(ctx.workspace / "cache" / "capture" / "record.jsonl")
    finally:
        ctx.close()

    assert log.clean
    assert len(log.lines) == count
    assert all(line["family"] == "RECORD" and line["payload_type"] == "MetricRecord" for line in log.lines)
    assert [line["payload"]["payload"]["step"] for line in log.lines] == list(range(count))
    assert [line["payload"]["payload"]["value"] for line in log.lines] == [float(i) for i in range(count)]
    assert {line["payload"]["payload"]["metric_key"] for line in log.lines} == {"loss"}
    assert {line["payload"]["envelope"]["run_ref"] for line in log.lines} == {run.ref}
    assert {line["payload"]["envelope"]["stage_execution_ref"] for line in log.lines} == {stage.ref}
    assert len({line["payload_ref"] for line in log.lines}) == count  # every record has its own ref


def test_metrics_mapping_form_writes_one_line_per_key_with_the_shared_step(tmp_path: Path) -> None:
    ctx = open_contexta(tmp_path)
    try:
        with ctx.run("train") as run, run.stage("fit") as stage:
            for step in range(100):
                stage.metrics({"loss": 1.0 / (step + 1), "acc": step / 100, "lr": 0.1}, step=step)
        log = read_capture_log(ctx.workspace / "cache" / "capture" / "record.jsonl")
    finally:
        ctx.close()

    assert log.clean
    assert len(log.lines) == 300
    payloads = [line["payload"]["payload"] for line in log.lines]
    steps = [payload["step"] for payload in payloads]
    assert steps == sorted(steps)
    keys_by_step: dict[int, list[str]] = {}
    for payload in payloads:
        keys_by_step.setdefault(payload["step"], []).append(payload["metric_key"])
    assert sorted(keys_by_step) == list(range(100))
    assert all(sorted(keys) == ["acc", "loss", "lr"] for keys in keys_by_step.values())
    assert payloads[0]["value"] == 1.0 and payloads[-1]["step"] == 99
    assert {line["payload"]["envelope"]["stage_execution_ref"] for line in log.lines} == {stage.ref}


# -- 2. overflow policies against a slow sink ------------------------------------------------------


def test_block_policy_delivers_every_record_in_order_through_a_slow_sink(tmp_path: Path) -> None:
    count = 2_000
    sink = SlowSink(delay_s=0.005)
    ctx = open_contexta(tmp_path, [sink], queue_capacity=64, max_batch_size=16, overflow="block")
    try:
        with ctx.run("r") as run, run.stage("s") as stage:
            results = [stage.metric("m", float(i), step=i) for i in range(count)]
        report = ctx.flush()
    finally:
        ctx.close()

    assert all(result == ACCEPTED for result in results)
    assert sink.metric_steps() == list(range(count))
    assert report.stats.dropped == 0
    assert sink.degraded() == []
    assert report.ok


def _burst_against_a_gated_sink(
    tmp_path: Path, overflow: str, count: int
) -> tuple[SlowSink, list[CaptureResult], CaptureStats, str]:
    """Capture `count` metrics while the sink is stuck, so the queue (64) overflows; then let it drain."""
    gate = threading.Event()
    gate.set()
    sink = SlowSink(delay_s=0.01, gate=gate)
    ctx = open_contexta(tmp_path, [sink], queue_capacity=64, max_batch_size=16, overflow=overflow)
    try:
        with ctx.run("r") as run:
            with run.stage("s") as stage:
                ctx.flush()  # scope lines are out: only metrics can be dropped in the burst
                gate.clear()
                results = [stage.metric("m", float(i), step=i) for i in range(count)]
                gate.set()
                ctx.flush()  # drain before the stage closes, so its close line cannot be dropped
            run_ref = run.ref
        stats = ctx.flush().stats
    finally:
        gate.set()
        ctx.close()
    return sink, results, stats, run_ref


def _assert_drops_are_marked(sink: SlowSink, stats: CaptureStats, run_ref: str, policy: str) -> None:
    degraded = sink.degraded()
    assert degraded, "dropped records must leave a DegradedRecord behind"
    assert sum(entry.payload["payload"]["dropped_count"] for entry in degraded) == stats.dropped
    for entry in degraded:
        assert entry.family == "RECORD"
        assert entry.payload["envelope"]["run_ref"] == run_ref
        assert entry.payload["envelope"]["degradation_marker"] != "none"
        assert entry.payload["payload"]["attributes"]["policy"] == policy
        assert isinstance(entry.to_model(), DegradedRecord)


@pytest.mark.filterwarnings("ignore::contexta.capture.CaptureWarning")
def test_drop_newest_refuses_new_records_counts_each_one_and_marks_the_run(tmp_path: Path) -> None:
    count = 2_000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sink, results, stats, run_ref = _burst_against_a_gated_sink(tmp_path, "drop_newest", count)

    received = sink.metric_steps()
    assert stats.dropped > 0
    assert stats.dropped == count - len(received)
    assert all(result in (ACCEPTED, DROPPED) for result in results)
    assert sum(1 for result in results if result == DROPPED) == stats.dropped
    # exactly the calls told ACCEPTED reached the sink, in order
    assert received == [i for i, result in enumerate(results) if result == ACCEPTED]
    _assert_drops_are_marked(sink, stats, run_ref, "drop_newest")
    assert any(issubclass(w.category, CaptureWarning) and "drop" in str(w.message) for w in caught)


@pytest.mark.filterwarnings("ignore::contexta.capture.CaptureWarning")
def test_drop_oldest_keeps_the_most_recent_records_and_counts_each_loss(tmp_path: Path) -> None:
    count = 2_000
    sink, results, stats, run_ref = _burst_against_a_gated_sink(tmp_path, "drop_oldest", count)

    received = sink.metric_steps()
    assert stats.dropped > 0
    assert stats.dropped == count - len(received)
    assert all(result in (ACCEPTED, DROPPED) for result in results)
    assert received == sorted(set(received))  # no duplicates, still in capture order
    assert received[-1] == count - 1  # the newest record survives
    # the queue (64) minus at most one batch the writer held when the burst began: the newest 48 survive
    assert set(range(count - 48, count)) <= set(received)
    _assert_drops_are_marked(sink, stats, run_ref, "drop_oldest")


@pytest.mark.filterwarnings("ignore::contexta.capture.CaptureWarning")
def test_block_policy_gives_up_after_block_timeout_and_counts_the_drops(tmp_path: Path) -> None:
    count = 80  # more than the queue (16), the sink's lane (8 batches of 4) and the writer's hands hold
    gate = threading.Event()
    gate.set()
    sink = SlowSink(gate=gate)
    ctx = open_contexta(
        tmp_path, [sink], queue_capacity=16, max_batch_size=4, overflow="block", block_timeout_s=0.05
    )
    results: list[CaptureResult] = []
    try:
        with ctx.run("r") as run:
            with run.stage("s") as stage:
                ctx.flush()
                gate.clear()  # the sink now sleeps (up to 30 s) on its first batch

                def capture() -> None:
                    results.extend(stage.metric("m", float(i), step=i) for i in range(count))

                caller = threading.Thread(target=capture)
                caller.start()
                caller.join(20)
                assert not caller.is_alive(), "a blocked caller must give up after block_timeout_s"
                gate.set()
                ctx.flush()
            run_ref = run.ref
        stats = ctx.flush().stats
    finally:
        gate.set()
        ctx.close()

    assert len(results) == count
    assert all(result in (ACCEPTED, DROPPED) for result in results)
    dropped = sum(1 for result in results if result == DROPPED)
    assert dropped > 0
    assert stats.dropped == dropped
    received = sink.metric_steps()
    assert received == [i for i, result in enumerate(results) if result == ACCEPTED]
    assert len(received) == count - dropped
    _assert_drops_are_marked(sink, stats, run_ref, "block_timeout")


# -- 3. a failing sink beside a working one --------------------------------------------------------


def test_failing_sink_is_isolated_parked_in_the_outbox_and_replayed_exactly_once(tmp_path: Path) -> None:
    flaky = FlakySink("flaky")
    logs = tmp_path / "logs"
    ctx = open_contexta(tmp_path, [flaky, LocalJsonlSink(logs)])
    outbox = ctx.workspace / "cache" / "outbox" / "flaky"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with ctx.run("r") as run, run.stage("s") as stage:
                for i in range(200):
                    assert stage.metric("m", float(i), step=i) == ACCEPTED  # the caller never sees OSError
                stage.event("eval.done", message="finished")
            report = ctx.flush()

        assert isinstance(report, FlushReport)
        assert not report.ok
        assert any("flaky" in error for error in report.errors)
        assert report.stats.failed > 0
        assert report.stats.sink_failures["flaky"] > 0
        assert report.stats.sink_failures.get("local-jsonl", 0) == 0
        assert any(issubclass(w.category, CaptureWarning) and "flaky" in str(w.message) for w in caught)

        # the working sink got everything
        records = read_capture_log(logs / "record.jsonl")
        contexts = read_capture_log(logs / "context.jsonl")
        assert records.clean and contexts.clean
        assert [
            line["payload"]["payload"]["step"]
            for line in records.lines
            if line["payload_type"] == "MetricRecord"
        ] == list(range(200))
        assert [line["payload_type"] for line in records.lines].count("StructuredEventRecord") == 1
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
        assert flaky.entries == []
        assert sorted(outbox.glob("*.jsonl")), "refused batches must be parked in the sink's outbox"

        def identity(family: str, line: dict[str, Any]) -> tuple[str, ...]:
            return (
                family,
                line["payload_type"],
                line["payload_ref"],
                line["captured_at"],
                str(line["payload"].get("status")),
            )

        delivered_to_b = Counter(identity("RECORD", line) for line in records.lines)
        delivered_to_b.update(identity("CONTEXT", line) for line in contexts.lines)

        flaky.healthy = True
        replay = ctx.replay_outbox()
        assert isinstance(replay, ReplayReport)
        assert replay.errors == ()
        assert replay.remaining_batches == 0
        assert replay.delivered_batches == flaky.refused_batches
        assert replay.delivered_records == sum(delivered_to_b.values()) == len(flaky.entries)
        replayed = Counter(
            identity(
                entry.family,
                {
                    "payload_type": entry.payload_type,
                    "payload_ref": entry.payload_ref,
                    "captured_at": entry.captured_at,
                    "payload": entry.payload,
                },
            )
            for entry in flaky.entries
        )
        assert replayed == delivered_to_b  # every missed record, exactly once
        assert list(outbox.iterdir()) == []

        again = ctx.replay_outbox()
        assert (again.delivered_batches, again.delivered_records, again.remaining_batches) == (0, 0, 0)
        assert len(flaky.entries) == sum(delivered_to_b.values())
    finally:
        flaky.healthy = True
        ctx.close()


# -- 4. flush() and close() ------------------------------------------------------------------------


def test_flush_returns_only_when_everything_captured_before_it_is_in_the_sink(tmp_path: Path) -> None:
    sink = SlowSink(delay_s=0.01)  # a flush that returned before the write finished would see too few
    ctx = open_contexta(tmp_path, [sink], flush_interval_s=5.0)  # the interval alone would not deliver
    try:
        run = ctx.run("r")
        for round_number in range(1, 6):
            for i in range(1_000):
                run.metric("m", float(i), step=i)
            report = ctx.flush()
            assert report.complete and report.ok
            assert len(metric_entries(sink.entries)) == 1_000 * round_number
        run.close()
    finally:
        ctx.close()


def _slow_environment(monkeypatch: pytest.MonkeyPatch, delay_s: float) -> None:
    """Make each run's environment snapshot take `delay_s` (a first run lists hundreds of packages)."""
    from contexta.capture._scopes import _scope

    original = _scope.environment_fields

    def slow() -> dict[str, Any]:
        time.sleep(delay_s)
        return original()

    monkeypatch.setattr(_scope, "environment_fields", slow)


def test_a_flush_right_after_a_run_opens_covers_its_environment_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The snapshot is taken by a thread of its own as the run opens: a flush that did not wait for it
    # reported one record queued and not written, and the store had no environment for the run.
    _slow_environment(monkeypatch, 0.3)
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx, ctx.run("r") as run:
        run.metric("m", 1.0, step=0)
        report = ctx.flush()
        assert report.complete and report.ok
        assert report.stats.queued == report.stats.written
        environment = ctx.get_environment(run.ref)
        assert environment is not None and environment.python_version


def test_a_short_flush_timeout_is_kept_while_an_environment_snapshot_is_slow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Half the timeout at most goes to the snapshot; the records queued before the call still get
    # the rest, and the flush returns within its timeout.
    _slow_environment(monkeypatch, 3.0)
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx, ctx.run("r") as run:
        run.metric("m", 1.0, step=0)
        report = ctx.flush(timeout=2.0)  # raised flush_timeout had the snapshot taken all of it
        assert report.complete
        assert [point.value for point in ctx.get_metric_series(run.ref, "m").points] == [1.0]


def test_a_trickle_reaches_the_sinks_without_waiting_for_a_full_batch_or_the_interval(
    tmp_path: Path,
) -> None:
    """A service logging a few hundred records must not have them held back until 4,096 pile up:
    one full batch of Python work at a time is what stalled event loops."""
    sink = SlowSink()
    ctx = open_contexta(tmp_path, [sink], flush_interval_s=60.0)  # the interval never fires here
    try:
        run = ctx.run("r")
        for i in range(300):
            run.metric("m", float(i), step=i)
        deadline = time.monotonic() + 10.0
        while len(metric_entries(sink.entries)) < 256 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(metric_entries(sink.entries)) >= 256
        run.close()
        assert len(metric_entries(sink.entries)) == 300
    finally:
        ctx.close()


def test_close_is_idempotent_and_capture_after_close_is_refused(tmp_path: Path) -> None:
    sink = InMemorySink()
    ctx = open_contexta(tmp_path, [sink])
    run = ctx.run("r")
    run.metric("m", 1.0)

    first = ctx.close()
    second = ctx.close()

    assert isinstance(first, FlushReport) and first.complete
    assert isinstance(second, FlushReport) and second.complete
    assert sink.closed
    assert len(metric_entries(sink.entries)) == 1
    assert run.status == "cancelled"  # closing the Contexta closes what was left open
    with pytest.raises(ClosedScopeError):
        run.metric("m", 2.0)
    with pytest.raises(LifecycleError) as excinfo:
        ctx.run("again")
    assert excinfo.value.code == "contexta_closed"
    assert len(metric_entries(sink.entries)) == 1


def test_a_metric_method_held_from_before_close_is_refused_after_close(tmp_path: Path) -> None:
    """Training loops bind `metric = stage.metric` once; the bound method must not outlive the scope."""
    sink = InMemorySink()
    ctx = open_contexta(tmp_path, [sink])
    try:
        stage = ctx.run("r").stage("train")
        metric = stage.metric
        metric("loss", 1.0, step=0)
        stage.close()
        with pytest.raises(ClosedScopeError) as excinfo:
            metric("loss", 0.5, step=1)
        assert excinfo.value.code == "scope_closed"
        ctx.flush()
        assert [entry.payload["payload"]["step"] for entry in metric_entries(sink.entries)] == [0]
    finally:
        ctx.close()


def test_a_writer_going_to_sleep_never_reopens_a_closed_queue() -> None:
    """`limit` is the hot path's only check; a writer that sleeps after `close()` must leave it at 0."""
    queue = CaptureQueue(capacity=1024, wake_threshold=256, overflow="block", block_timeout_s=1.0)
    assert queue.put((0, 0, None)) is True
    queue.close()
    queue.wait_for_items(0.0)
    queue.wake()
    assert queue.limit == 0
    with pytest.raises(LifecycleError):
        queue.put((0, 0, None))
    assert len(queue) == 1


def test_flush_with_a_stuck_sink_raises_flush_timeout_instead_of_hanging(tmp_path: Path) -> None:
    release = threading.Event()
    sink = SlowSink("stuck", gate=release)
    ctx = open_contexta(tmp_path, [sink])
    try:
        run = ctx.run("r")
        run.metric("m", 1.0)
        with pytest.raises(CaptureError) as excinfo:
            ctx.flush(timeout=0.05)
        assert excinfo.value.code == "flush_timeout"
    finally:
        release.set()
    report = ctx.close()
    assert report.complete
    assert len(metric_entries(sink.entries)) == 1


# -- 5. statistics ---------------------------------------------------------------------------------


def test_capture_stats_count_what_happened(tmp_path: Path) -> None:
    sink = InMemorySink()
    ctx = open_contexta(tmp_path, [sink])
    try:
        empty = ctx.capture_stats()
        assert (empty.queued, empty.written, empty.dropped, empty.failed, empty.batches) == (0, 0, 0, 0, 0)

        with ctx.run("r") as run:
            for i in range(100):
                run.metric("m", float(i), step=i)
        stats = ctx.capture_stats()
    finally:
        ctx.close()

    assert isinstance(stats, CaptureStats)
    for name in ("queued", "written", "dropped", "failed", "batches"):
        assert type(getattr(stats, name)) is int, name
    delivered = len(sink.entries)
    assert delivered == 103  # run opened + environment snapshot + 100 metrics + run closed
    assert stats.queued == 103
    assert stats.written == delivered
    assert stats.dropped == 0
    assert stats.failed == 0
    assert stats.batches == sink.batches >= 1
    as_dict = stats.to_dict()
    assert {"queued", "written", "dropped", "failed", "batches"} <= set(as_dict)
    for name in ("queued", "written", "dropped", "failed", "batches"):
        assert as_dict[name] == getattr(stats, name)


# -- 6. concurrent samples -------------------------------------------------------------------------


def test_concurrent_samples_under_one_stage_keep_their_records_apart(tmp_path: Path) -> None:
    threads_count, per_thread = 8, 500
    sink = InMemorySink()
    ctx = open_contexta(tmp_path, [sink])
    all_open = threading.Barrier(threads_count)
    all_done = threading.Barrier(threads_count)
    sample_refs: dict[int, str] = {}
    current_is_own: dict[int, bool] = {}
    failures: list[BaseException] = []

    try:
        with ctx.run("r") as run, run.stage("serve") as stage:

            def judge(index: int) -> None:
                try:
                    with stage.sample(f"s{index}") as sample:
                        sample_refs[index] = sample.ref
                        all_open.wait(10)  # every sample is open at the same time
                        current_is_own[index] = ctx.current_sample() is sample
                        for step in range(per_thread):
                            ctx.metric("latency", float(index * 1_000 + step), step=step)
                        all_done.wait(10)
                except BaseException as error:
                    failures.append(error)

            workers = [threading.Thread(target=judge, args=(i,)) for i in range(threads_count)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(30)
    finally:
        ctx.close()

    assert failures == []
    assert current_is_own == dict.fromkeys(range(threads_count), True)
    assert len(set(sample_refs.values())) == threads_count
    assert all(ref.startswith(f"sample:{stage.ref.partition(':')[2]}.") for ref in sample_refs.values())
    metrics = metric_entries(sink.entries)
    assert len(metrics) == threads_count * per_thread
    for index, ref in sample_refs.items():
        mine = [
            entry.payload
            for entry in metrics
            if entry.payload["envelope"].get("sample_observation_ref") == ref
        ]
        assert [doc["payload"]["step"] for doc in mine] == list(range(per_thread))
        assert {doc["payload"]["value"] // 1_000 for doc in mine} == {index}
        assert {doc["envelope"]["stage_execution_ref"] for doc in mine} == {stage.ref}


def test_two_samples_with_the_same_name_cannot_be_open_at_once(tmp_path: Path) -> None:
    ctx = open_contexta(tmp_path, [InMemorySink()])
    start = threading.Barrier(2)
    both_tried = threading.Barrier(2)
    outcomes: list[str] = []
    codes: list[str] = []

    try:
        with ctx.run("r") as run, run.stage("serve") as stage:

            def open_duplicate() -> None:
                start.wait(10)
                try:
                    sample = stage.sample("dup")
                except ConflictError as error:
                    outcomes.append("conflict")
                    codes.append(error.code)
                    both_tried.wait(10)
                    return
                outcomes.append("opened")
                both_tried.wait(10)
                sample.close()

            workers = [threading.Thread(target=open_duplicate) for _ in range(2)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(10)

            # once the first one is closed, the name is free again
            with stage.sample("dup") as again:
                assert again.status == "open"
    finally:
        ctx.close()

    assert sorted(outcomes) == ["conflict", "opened"]
    assert all(code for code in codes)


@pytest.mark.filterwarnings("ignore::contexta.capture.CaptureWarning")
@pytest.mark.parametrize("overflow", ["drop_newest", "drop_oldest"])
def test_scopes_opened_and_closed_in_a_burst_are_never_dropped(tmp_path: Path, overflow: str) -> None:
    # Samples open and close while the sink is stuck and the queue overflows: their metrics may be
    # dropped (counted), but every sample's opening and closing must reach the sink, or the store would
    # show samples that never ended.
    gate = threading.Event()
    gate.set()
    sink = SlowSink(delay_s=0.01, gate=gate)
    ctx = open_contexta(tmp_path, [sink], queue_capacity=64, max_batch_size=16, overflow=overflow)
    try:
        with ctx.run("r") as run, run.stage("s") as stage:
            ctx.flush()
            gate.clear()
            for number in range(200):
                with stage.sample(f"case-{number}") as sample:
                    for step in range(5):
                        sample.metric("score", float(step), step=step)
            gate.set()
        stats = ctx.flush().stats
    finally:
        gate.set()
        ctx.close()
    assert stats.dropped > 0
    closed = [
        entry.payload["sample_name"]
        for entry in sink.entries
        if entry.payload_type == "SampleObservation" and entry.payload["status"] == "completed"
    ]
    assert sorted(closed) == sorted(f"case-{number}" for number in range(200))
