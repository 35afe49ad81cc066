"""A caller that never stalls (issue 16): the writer keeps taking while a sink is busy, blocked callers
get room as soon as there is some, and the time they spend blocked is counted.

No test here times anything: each checks where records are, or what was counted, at a moment the
test controls with a gated sink.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture import CaptureBatch, CapturedEntry, LocalJsonlSink, read_capture_log
from contexta.capture._items import ScopeContext, metric_item
from contexta.capture._log._builder import EntryBuilder
from contexta.capture._pipeline._queue import CaptureQueue


class GatedSink:
    """Keeps every entry it receives, waiting while `gate` is cleared."""

    def __init__(self, gate: threading.Event):
        self.name = "gated"
        self.gate = gate
        self._entries: list[CapturedEntry] = []
        self._lock = threading.Lock()

    def write(self, batch: CaptureBatch) -> None:
        self.gate.wait(30)  # bounded, so a broken test cannot hang the session
        with self._lock:
            self._entries.extend(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def metric_steps(self) -> list[int]:
        with self._lock:
            entries = list(self._entries)
        return [entry.payload["payload"]["step"] for entry in entries if entry.payload_type == "MetricRecord"]


def _open(tmp_path: Path, sink: GatedSink, **capture: Any) -> Contexta:
    return Contexta(
        workspace=tmp_path / ".contexta", config={"project_name": "p", "capture": capture}, sinks=[sink]
    )


def _eventually(condition: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_the_writer_keeps_taking_while_a_sink_is_busy(tmp_path: Path) -> None:
    """With the sink stuck on its first batch, the writer still takes batch after batch into the sink's
    lane (bounded in records), rather than stopping at two batches and leaving the queue to fill up
    behind it, which is what made callers block for whole writer cycles."""
    gate = threading.Event()
    gate.set()
    sink = GatedSink(gate)
    ctx = _open(tmp_path, sink, queue_capacity=1000, max_batch_size=4)
    try:
        with ctx.run("r") as run, run.stage("s") as stage:
            ctx.flush()
            gate.clear()
            for step in range(20):  # five batches of four, all of which fit in the lane (8 batches)
                stage.metric("m", float(step), step=step)
            drained = _eventually(lambda: ctx.capture_stats().pending == 0)
            gate.set()
        stats = ctx.flush().stats
    finally:
        gate.set()
        ctx.close()
    assert drained, "the writer stopped taking while the sink was busy"
    assert sink.metric_steps() == list(range(20))
    assert (stats.dropped, stats.failed, stats.lost, stats.blocked_calls) == (0, 0, 0, 0)


@pytest.mark.parametrize("compiled", [True, False])
def test_blocked_callers_are_counted_and_lose_nothing(tmp_path: Path, compiled: bool) -> None:
    """Under overflow="block" with a stuck sink, callers that find the queue full wait, are counted
    (calls and time), and every record still arrives once, in order."""
    gate = threading.Event()
    gate.set()
    sink = GatedSink(gate)
    ctx = _open(
        tmp_path,
        sink,
        queue_capacity=4,
        max_batch_size=2,
        overflow="block",
        block_timeout_s=30,
        compiled_metric=compiled,
    )
    count = 200  # far more than the queue (4), the lane (8 batches of 2) and the writer's hands hold
    try:
        with ctx.run("r") as run, run.stage("s") as stage:
            ctx.flush()
            gate.clear()

            def capture() -> None:
                for step in range(count):
                    stage.metric("m", float(step), step=step)

            caller = threading.Thread(target=capture)
            caller.start()
            blocked = _eventually(lambda: ctx.capture_stats().pending >= 4 and caller.is_alive())
            gate.set()
            caller.join(30)
            assert not caller.is_alive()
        stats = ctx.flush().stats
    finally:
        gate.set()
        ctx.close()
    assert blocked
    assert sink.metric_steps() == list(range(count))
    assert stats.dropped == 0
    assert stats.blocked_calls >= 1
    assert stats.blocked_s > 0
    assert stats.to_dict()["blocked_calls"] == stats.blocked_calls


def test_a_blocked_caller_gets_room_before_a_long_take_finishes() -> None:
    """A take of many items wakes callers blocked on the full queue once its first chunk is out, not
    after popping everything (16,384 items held the GIL for 1-4 ms while callers waited)."""
    capacity = 10_000
    queue = CaptureQueue(capacity, 256, "block", 30.0)
    item = ("metric",) * 9
    for _ in range(capacity):
        queue.put(item)
    caller = threading.Thread(target=queue.put, args=(item,))
    caller.start()
    assert _eventually(lambda: queue._waiting == 1)  # the caller is blocked
    left_at_notice: list[int] = []
    notify = queue._notify_space

    def noting_notify() -> None:
        left_at_notice.append(len(queue.items))
        notify()

    queue._notify_space = noting_notify  # type: ignore[method-assign]
    taken = queue.take(capacity)
    caller.join(10)
    assert not caller.is_alive()
    assert len(taken) == capacity and taken == [item] * capacity
    assert left_at_notice and left_at_notice[0] >= capacity - 2048 > 0
    assert queue.taken_records == capacity


def _metric_batch(builder: EntryBuilder, steps: range) -> CaptureBatch:
    context = ScopeContext(
        "stage", "stage:p.r.s", "s", "p", "run:p.r", run_ref="run:p.r", stage_ref="stage:p.r.s"
    )
    items = [
        metric_item(time.time_ns(), tuple(context), "loss", float(step), None, step, "step", None)
        for step in steps
    ]
    builder.begin()
    built: list[Any] = []
    builder.build(items, built)
    return CaptureBatch.from_writer(built, builder.finish(built))


def _five_batches(tmp_path: Path) -> tuple[LocalJsonlSink, list[CaptureBatch]]:
    """A capture log and five 3,000-metric batches for it, steps 0 to 14,999 in order."""
    builder = EntryBuilder()
    batches = [_metric_batch(builder, range(start, start + 3000)) for start in range(0, 15_000, 3000)]
    return LocalJsonlSink(tmp_path / "capture"), batches


def _steps(log: LocalJsonlSink) -> list[int]:
    """The steps of the metric lines in the log, in file order."""
    return [
        line["payload"]["payload"]["step"] for line in read_capture_log(log.file_path_for("RECORD")).lines
    ]


def test_batches_queued_while_the_log_process_started_all_go_to_it_at_once(tmp_path: Path) -> None:
    """Batches handed over while the log-writer process was starting could not be sent ahead; the
    lane's write of the first of them now sends the ones queued behind it too (here all of them, as
    they fit in the look-ahead), in order, instead of sending each only once the one before was
    answered (which kept every later batch behind)."""
    log = LocalJsonlSink(tmp_path / "capture")
    builder = EntryBuilder()
    batches = [_metric_batch(builder, range(start, start + 3000)) for start in range(0, 12_000, 3000)]
    try:
        for batch in batches:  # none can be sent: the lane starts the child when it writes the first
            log.send_ahead(batch)
        assert log.log_process_pid is None
        log._offload._start_for(batches[0])  # what the lane's write does first
        process = log._offload._process
        assert process is not None
        assert _eventually(process.ready)
        log.write(batches[0])
        assert list(log._offload._ahead) == batches[1:]  # sent, in order, before being asked for
        for batch in batches[1:]:
            log.write(batch)
        assert not log._offload._ahead and not log._offload._behind
    finally:
        log.close()
    assert _steps(log) == list(range(12_000))


def test_a_long_backlog_goes_to_the_log_process_a_few_batches_at_a_time(tmp_path: Path) -> None:
    """Sending a whole backlog before reading the first answer held every one of its records in the
    lane until the child had appended them all (~150 ms for 100k records), so the writer stopped
    taking and callers blocked. The lane now keeps about two full batches sent and unanswered, tops
    up after each answer, and the log still holds every line once, in order."""
    log = LocalJsonlSink(tmp_path / "capture")
    builder = EntryBuilder()
    batches = [_metric_batch(builder, range(start, start + 8192)) for start in range(0, 8 * 8192, 8192)]
    try:
        for batch in batches:
            log.send_ahead(batch)
        log._offload._start_for(batches[0])  # what the lane's write does first
        process = log._offload._process
        assert process is not None
        assert _eventually(process.ready)
        log.write(batches[0])
        offload = log._offload
        assert offload._behind, "the backlog should not all be sent before the first answer is read"
        assert sum(map(len, offload._ahead)) <= 32_768
        assert list(offload._ahead) + list(offload._behind) == batches[1:]  # nothing lost, in order
        for batch in batches[1:]:
            log.write(batch)
        assert not offload._ahead and not offload._behind
    finally:
        log.close()
    assert _steps(log) == list(range(8 * 8192))


def test_what_is_sent_to_the_log_process_unpickles_without_importing_contexta(tmp_path: Path) -> None:
    """The log-writer child imports only the standard library and orjson, so it is ready in tens of
    milliseconds. A class of ours inside the pickled segments made its first unpickle import all of
    contexta (~85 ms), during which the lane held its batch and the queue filled behind it."""
    batch = _metric_batch(EntryBuilder(), range(100))
    payload = tmp_path / "segments.pickle"
    payload.write_bytes(pickle.dumps(batch.record_segments("local-jsonl"), protocol=pickle.HIGHEST_PROTOCOL))
    check = (
        "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read()); "
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'contexta'))"
    )
    result = subprocess.run(
        [sys.executable, "-P", "-c", check, str(payload)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_writer_never_waits_for_the_capture_log_lane_nor_starts_its_process(tmp_path: Path) -> None:
    """Handing a batch to the capture log must cost the writer thread nothing it could wait on: a
    process start took it 10-30 ms while a loop captured, and the lane's lock (held while it sends to
    a busy child) 10-16 ms, and the queue filled behind it. Batches handed over meanwhile keep their
    order in the log."""
    log, batches = _five_batches(tmp_path)
    offload = log._offload
    try:
        log.send_ahead(batches[0])
        assert log.log_process_pid is None  # the lane starts it, when it writes
        offload._start_for(batches[0])
        process = offload._process
        assert process is not None and _eventually(process.ready)
        with offload._lock:  # the lane, sending
            handed = threading.Thread(target=lambda: [log.send_ahead(batch) for batch in batches[1:]])
            handed.start()
            handed.join(10)
            assert not handed.is_alive()  # did not wait for the lock
            assert list(offload._arrivals) == batches[1:]
        for batch in batches:
            log.write(batch)
        assert not offload._ahead and not offload._behind and not offload._arrivals
    finally:
        log.close()
    assert _steps(log) == list(range(15_000))
