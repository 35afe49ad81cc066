"""The async facade: the same capture as the sync facade, from many tasks, never blocking the loop."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import blake3
import orjson
import pytest

from contexta import Contexta
from contexta.capture import CaptureBatch, LocalJsonlSink, read_capture_log
from contexta.errors import ClosedScopeError, ContextaError, LifecycleError

pytestmark = pytest.mark.anyio
PROJECT = "llm-eval"


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[Contexta]:
    context = Contexta(workspace=tmp_path / ".contexta", config={"project_name": PROJECT})
    yield context
    await context.aclose()


def _log_lines(ctx: Contexta, family: str = "RECORD") -> list[dict[str, Any]]:
    sink = next(sink for sink in ctx.sinks if isinstance(sink, LocalJsonlSink))
    return read_capture_log(sink.file_path_for(family)).lines


class Ticker:
    """A task that wakes every millisecond and remembers how late the loop let it be."""

    def __init__(self) -> None:
        self.worst_lateness_s = 0.0
        self.ticks = 0

    async def run(self, stop: anyio.Event) -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await anyio.sleep(0.001)
            self.worst_lateness_s = max(self.worst_lateness_s, time.perf_counter() - before - 0.001)
            self.ticks += 1


async def test_two_hundred_concurrent_samples_land_with_their_own_refs(ctx: Contexta) -> None:
    async with ctx.arun("mock-chat-evaluation") as run, run.stage("evaluate") as stage:

        async def judge(number: int) -> None:
            async with stage.sample(f"case-{number}") as sample:
                for step in range(50):
                    await sample.metric("latency.ms", float(number * 1000 + step), step=step)
                    if step % 10 == 0:
                        await anyio.sleep(0)  # let the other cases interleave

        async with anyio.create_task_group() as group:
            for number in range(200):
                group.start_soon(judge, number)

    samples = ctx.list_samples("mock-chat-evaluation")
    assert sorted(sample.name for sample in samples) == sorted(f"case-{n}" for n in range(200))
    assert {sample.status for sample in samples} == {"completed"}
    points = ctx.get_metric_series("mock-chat-evaluation", "latency.ms").points
    assert len(points) == 200 * 50
    for point in points:  # each value says which case (and step) captured it
        number, step = divmod(int(point.value), 1000)
        assert point.sample_id == f"sample:{PROJECT}.mock-chat-evaluation.evaluate.case-{number}"
        assert point.step == step
    by_case: dict[str | None, list[int | None]] = {}
    for point in points:
        by_case.setdefault(point.sample_id, []).append(point.step)
    assert all(steps == list(range(50)) for steps in by_case.values())  # capture order per task


async def test_sync_and_async_facades_write_the_same_line_shapes(ctx: Contexta, tmp_path: Path) -> None:
    artifact = tmp_path / "prompt.txt"
    artifact.write_text("Answer with the capital of France.")

    def capture_sync() -> None:
        with ctx.run("sync-run") as run, run.stage("evaluate") as stage:
            with stage.sample("case") as sample:
                sample.metric("score", 1.0, unit="ratio", step=0)
                sample.event("judged", message="ok", attributes={"verdict": "pass"})
                sample.span("call", attributes={"model": "mock"})
            stage.metrics({"pass_rate": 1.0, "cases": 1}, step=0)
            run.register_artifact("prompt", str(artifact))

    async def capture_async() -> None:
        async with ctx.arun("async-run") as run, run.stage("evaluate") as stage:
            async with stage.sample("case") as sample:
                await sample.metric("score", 1.0, unit="ratio", step=0)
                await sample.event("judged", message="ok", attributes={"verdict": "pass"})
                await sample.span("call", attributes={"model": "mock"})
            await stage.metrics({"pass_rate": 1.0, "cases": 1}, step=0)
            await run.register_artifact("prompt", str(artifact))

    await anyio.to_thread.run_sync(capture_sync)
    await capture_async()

    def shape(value: Any) -> Any:
        """Keys and value types, with refs, times and ids taken out."""
        if isinstance(value, dict):
            return {key: shape(item) for key, item in value.items()}
        if isinstance(value, list):
            return [shape(item) for item in value]
        return type(value).__name__

    for family in ("RECORD", "ARTIFACT", "CONTEXT"):
        lines = _log_lines(ctx, family)
        # As sorted lists: the environment snapshot is taken in a thread and lands when it is ready.
        sync_lines = sorted(
            (shape(line) for line in lines if f"{PROJECT}.sync-run" in orjson.dumps(line).decode()),
            key=orjson.dumps,
        )
        async_lines = sorted(
            (shape(line) for line in lines if f"{PROJECT}.async-run" in orjson.dumps(line).decode()),
            key=orjson.dumps,
        )
        assert sync_lines == async_lines, family
        assert sync_lines, family
    assert [run.name for run in ctx.list_runs()] == ["sync-run", "async-run"]
    assert [run.status for run in ctx.list_runs()] == ["completed", "completed"]


async def test_a_cancelled_task_closes_its_sample_cancelled_and_keeps_its_records(ctx: Contexta) -> None:
    started = anyio.Event()
    async with ctx.arun("r") as run, run.stage("evaluate") as stage:

        async def slow_case() -> None:
            async with stage.sample("slow") as sample:
                for step in range(3):
                    await sample.metric("tokens", 10 * step, step=step)
                started.set()
                await anyio.sleep(60)  # cancelled here
                await sample.metric("tokens", -1, step=99)

        async with anyio.create_task_group() as group:
            group.start_soon(slow_case)
            await started.wait()
            group.cancel_scope.cancel()

    (sample,) = ctx.list_samples("r")
    assert sample.status == "cancelled"
    assert [(p.step, p.value) for p in ctx.get_metric_series("r", "tokens").points] == [
        (0, 0),
        (1, 10),
        (2, 20),
    ]
    events = [line for line in _log_lines(ctx) if line["payload_type"] == "StructuredEventRecord"]
    assert [line["payload"]["payload"]["event_key"] for line in events] == ["sample.cancelled"]
    assert events[0]["payload"]["payload"]["level"] == "warning"
    *_, closing = (
        line["payload"] for line in _log_lines(ctx, "CONTEXT") if line["payload_ref"] == sample.sample_id
    )
    assert (closing["status"], closing["end_reason"]) == ("cancelled", "cancelled")
    assert closing["failure"]["type"] in ("CancelledError", "Cancelled")  # asyncio's, trio's
    assert [stage.status for stage in ctx.list_stages("r")] == ["completed"]


async def test_an_exception_fails_the_scopes_it_leaves_and_propagates(ctx: Contexta) -> None:
    with pytest.raises(ValueError, match="judge broke"):
        async with ctx.arun("r") as run, run.stage("evaluate") as stage:
            await stage.metric("accuracy", 0.5)
            raise ValueError("judge broke")
    (stored,) = ctx.list_runs()
    assert stored.status == "failed"
    assert [stage.status for stage in ctx.list_stages("r")] == ["failed"]
    assert {issue.code for issue in ctx.diagnose_run("r").issues} >= {"failed_run", "failed_stage"}
    assert ctx.get_metric_series("r", "accuracy").values == (0.5,)


async def test_a_run_cancelled_as_a_whole_still_closes_and_delivers(ctx: Contexta) -> None:
    with anyio.move_on_after(0.2):
        async with ctx.arun("r") as run:
            await run.metric("before", 1.0)
            await anyio.sleep(60)
    (stored,) = ctx.list_runs()
    assert stored.status == "cancelled"
    assert ctx.get_metric_series("r", "before").values == (1.0,)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda scope: scope.metric("", 1.0), "metric_key_invalid"),
        (lambda scope: scope.metric("loss", [0.5]), "metric_value_invalid"),
        (lambda scope: scope.metric("loss", True), "metric_value_invalid"),
        (lambda scope: scope.metric("loss", "0.5"), "metric_value_invalid"),
        (lambda scope: scope.metric("loss", 0.5, step=-1), "metric_step_invalid"),
        (lambda scope: scope.metric("loss", 0.5, unit=""), "metric_unit_invalid"),
        (lambda scope: scope.metrics({}), "metrics_invalid"),
        (lambda scope: scope.metrics({"bad": "0.5"}), "metric_value_invalid"),
        (lambda scope: scope.metrics({"ok": 1.0, "bad": "0.5"}), "metrics_partly_invalid"),
        (lambda scope: scope.event("done", message=3), "event_message_invalid"),  # type: ignore[arg-type]
        (lambda scope: scope.event("done", message="x", attributes={"f": object()}), None),
        (
            lambda scope: scope.span(
                "call", started_at="2025-01-02T00:00:00Z", ended_at="2025-01-01T00:00:00Z"
            ),
            "span_time_invalid",
        ),
    ],
)
async def test_bad_input_is_refused_alike_by_both_facades(
    ctx: Contexta, call: Callable[[Any], Any], code: str | None
) -> None:
    async with ctx.arun("r") as run:
        with pytest.raises(ContextaError) as from_sync:
            call(run.sync)
        with pytest.raises(ContextaError) as from_async:
            await call(run)
        assert type(from_async.value) is type(from_sync.value)
        assert from_async.value.code == from_sync.value.code
        if code is not None:
            assert from_async.value.code == code
        await run.metric("still.fine", 1.0)
    assert ctx.get_metric_series("r", "still.fine").values == (1.0,)


async def test_a_closed_scope_and_capture_after_aclose_are_refused(ctx: Contexta) -> None:
    async with ctx.arun("r") as run:
        stage = run.stage("s")
        await stage.close()
        with pytest.raises(ClosedScopeError):
            await stage.metric("late", 1.0)
    await ctx.aclose()
    await ctx.aclose()  # idempotent
    with pytest.raises(LifecycleError):
        ctx.arun("after")


async def test_deployments_and_aflush(ctx: Contexta) -> None:
    async with ctx.arun("r") as run:
        run_ref = run.ref
    async with ctx.adeployment("candidate", run_ref=run_ref) as deployment:
        await deployment.event("rolled.out", message="canary at 5%")
    report = await ctx.aflush(timeout=30)
    assert report.complete
    (stored,) = ctx.list_deployments()
    assert (stored.name, stored.status, stored.run_id) == ("candidate", "completed", run_ref)


class GatedSink:
    """Holds every batch until `gate` is set (from another thread), so the queue fills up."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.metrics = 0

    def write(self, batch: CaptureBatch) -> None:
        self.gate.wait(30)
        self.metrics += sum(entry.payload_type == "MetricRecord" for entry in batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.gate.set()


async def test_a_full_queue_makes_async_callers_await_while_the_loop_keeps_running(tmp_path: Path) -> None:
    sink = GatedSink()
    config = {
        "project_name": PROJECT,
        "capture": {"queue_capacity": 64, "max_batch_size": 16, "persist": False},
    }
    ctx = Contexta(workspace=tmp_path / ".contexta", config=config, sinks=[sink])
    ticker = Ticker()
    stop = anyio.Event()
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(ticker.run, stop)
            async with ctx.arun("r") as run:

                async def produce() -> None:
                    for step in range(500):  # far more than the queue holds while the sink is stuck
                        await run.metric("m", float(step), step=step)

                async with anyio.create_task_group() as producers:
                    producers.start_soon(produce)
                    await anyio.sleep(0.3)
                    ticks_while_full = ticker.ticks
                    sink.gate.set()
            stop.set()
    finally:
        sink.gate.set()
        await ctx.aclose()
    assert ticks_while_full > 20  # the loop ran while the producer awaited room
    assert sink.metrics == 500  # block loses nothing
    assert ctx.capture_stats().dropped == 0


async def test_drop_policies_never_make_async_callers_wait(tmp_path: Path) -> None:
    sink = GatedSink()
    config = {
        "project_name": PROJECT,
        "capture": {"queue_capacity": 64, "max_batch_size": 16, "persist": False, "overflow": "drop_newest"},
    }
    ctx = Contexta(workspace=tmp_path / ".contexta", config=config, sinks=[sink])
    try:
        with pytest.warns(Warning):
            async with ctx.arun("r") as run:
                with anyio.fail_after(10):  # would hang for 30 s if a call waited for the gated sink
                    for step in range(1_000):
                        await run.metric("m", float(step), step=step)
                sink.gate.set()
    finally:
        sink.gate.set()
        await ctx.aclose()
    stats = ctx.capture_stats()
    assert stats.dropped > 0 and sink.metrics + stats.dropped == 1_000


async def test_hashing_a_large_artifact_does_not_stall_the_loop(ctx: Contexta, tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.bin"
    block = os.urandom(1 << 20)
    with path.open("wb") as handle:
        for _ in range(384):
            handle.write(block)
    ticker = Ticker()
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(ticker.run, stop)
        async with ctx.arun("r") as run:
            registration = await run.register_artifact("checkpoint", str(path))
        stop.set()
    manifest = registration.payload["manifest"]
    assert manifest.size_bytes == 384 << 20
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    hasher.update_mmap(str(path))
    assert manifest.hash_value == hasher.hexdigest()
    assert ticker.ticks > 10
    # A correctness bound, not a speed figure: the loop must keep ticking while the file is hashed.
    assert ticker.worst_lateness_s < 0.05, f"the loop stalled for {ticker.worst_lateness_s * 1000:.1f} ms"
