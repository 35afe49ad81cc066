"""The async facade under load (issue 5): 1,000,000 metrics from 100 concurrent tasks.

Run with `python -m pytest benchmarks/test_async_capture.py --benchmark-enable`. Without that flag each
body runs once on 20,000 metrics as a smoke test (the "async-call" pair below on CALLS calls).

Reported in `extra_info`: records/s from the first call until `aflush()` returns (every record in
every sink, the store included), and the worst lateness of a task that sleeps 1 ms in a loop beside
the producers (how long the event loop was ever kept from running it). Targets: >= 200,000 records/s
and < 5 ms. `test_async_floor_of_the_same_producers` runs the same producers and ticker with a deque
append for a metric call: the lateness that is the loop's and the machine's, not capture's.

The lateness includes the producers' own turns: with 100 tasks ready to run, the ticker waits for one
turn of each. A producer that never yielded would make any ticker late, capture or not; so producers
yield every YIELD_EVERY calls, and the lateness left is the loop's turnaround plus capture's own holds.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import pytest

from contexta import Contexta

TASKS = 100
METRICS = 1_000_000
SMOKE_METRICS = 20_000
ROUNDS = 3
# Each producer yields to the loop after this many calls, as a service handling requests would. The
# ticker's lateness then measures the loop's turnaround: one step of each of the 100 producers (10 calls
# each) plus anything capture itself holds the loop for.
YIELD_EVERY = 10
CALLS = 10_000  # awaited calls per round of the "async-call" pair
CALL_ROUNDS = 20


async def _worst_lateness_beside(body: Callable[[], Awaitable[None]]) -> float:
    """Run `body` beside a task that sleeps 1 ms in a loop; returns that task's worst lateness in s."""
    worst = 0.0
    stop = anyio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not stop.is_set():
            before = time.perf_counter()
            await anyio.sleep(0.001)
            worst = max(worst, time.perf_counter() - before - 0.001)

    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        await body()
        stop.set()
    return worst


async def _produce(metric: Callable[..., Awaitable[object]], per_task: int) -> None:
    for step in range(per_task):
        await metric("latency.ms", 1.5, step=step)
        if step % YIELD_EVERY == YIELD_EVERY - 1:
            await anyio.sleep(0)  # a service task yields between requests


async def _capture(ctx: Contexta, per_task: int) -> float:
    """Capture from TASKS tasks, then aflush(); returns the ticker's worst lateness in seconds."""

    async def body() -> None:
        async with ctx.arun("async-load") as run, run.stage("evaluate") as stage:

            async def produce(number: int) -> None:
                async with stage.sample(f"task-{number}") as sample:
                    await _produce(sample.metric, per_task)

            async with anyio.create_task_group() as producers:
                for number in range(TASKS):
                    producers.start_soon(produce, number)
        await ctx.aflush()

    return await _worst_lateness_beside(body)


async def _floor(per_task: int) -> tuple[float, int]:
    """The same producers appending to a deque instead (no capture): worst lateness, items appended."""
    appended: deque[tuple[int, str, float, int | None]] = deque()
    append, clock = appended.append, time.time_ns

    async def metric(key: str, value: float, *, step: int | None = None) -> None:
        append((clock(), key, value, step))

    async def body() -> None:
        async with anyio.create_task_group() as producers:
            for _ in range(TASKS):
                producers.start_soon(_produce, metric, per_task)

    return await _worst_lateness_beside(body), len(appended)


@pytest.mark.benchmark(group="async-capture")
def test_async_capture_from_many_tasks(benchmark: Any, tmp_path: Path) -> None:
    total = METRICS if benchmark.enabled else SMOKE_METRICS
    per_task = total // TASKS
    rounds = ROUNDS if benchmark.enabled else 1
    workspaces = itertools.count()
    lateness: list[float] = []
    contexts: list[Contexta] = []

    def setup() -> tuple[tuple[Contexta], dict[str, Any]]:
        ctx = Contexta(workspace=tmp_path / f"round-{next(workspaces)}", config={"project_name": "bench"})
        contexts.append(ctx)
        return (ctx,), {}

    def body(ctx: Contexta) -> None:
        lateness.append(anyio.run(_capture, ctx, per_task))

    benchmark.pedantic(body, setup=setup, rounds=rounds, iterations=1)
    for ctx in contexts:
        assert len(ctx.get_metric_series("async-load", "latency.ms").points) == per_task * TASKS
        stats = ctx.capture_stats()
        ctx.close()
        assert (stats.dropped, stats.failed, stats.lost) == (0, 0, 0)
    benchmark.extra_info["records_per_round"] = per_task * TASKS
    benchmark.extra_info["worst_loop_lateness_ms"] = round(max(lateness) * 1000, 2)
    if benchmark.stats is not None:
        benchmark.extra_info["records_per_s"] = round(per_task * TASKS / benchmark.stats.stats.mean)
        benchmark.extra_info["best_records_per_s"] = round(per_task * TASKS / benchmark.stats.stats.min)


@pytest.mark.benchmark(group="async-capture")
def test_async_floor_of_the_same_producers(benchmark: Any) -> None:
    """The lateness no capture can beat here: the same 100 producers and ticker, each call a deque
    append. Reported beside the capture's figures, measured in the same run."""
    total = METRICS if benchmark.enabled else SMOKE_METRICS
    per_task = total // TASKS
    results: list[tuple[float, int]] = []
    benchmark.pedantic(
        lambda: results.append(anyio.run(_floor, per_task)), rounds=ROUNDS if benchmark.enabled else 1
    )
    assert {appended for _, appended in results} == {per_task * TASKS}
    benchmark.extra_info["worst_loop_lateness_ms"] = round(max(worst for worst, _ in results) * 1000, 2)
    if benchmark.stats is not None:
        benchmark.extra_info["calls_per_s"] = round(per_task * TASKS / benchmark.stats.stats.mean)


# -- what one awaited call costs: `await stage.metric(...)` beside `await noop()` ------------------------
#
# Each round's coroutine is driven by one `send(None)`, not by an event loop: no call here suspends (the
# queue never fills), so the awaits run exactly as under a loop. A loop would add its own cost, the
# same for both, and worse, its poll at the end of each round releases the GIL to the writer the round
# woke, so the round would time up to one switch interval (5 ms) of the writer's batch, not the calls.


def _run_to_the_end(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run `coroutine` in one step; a coroutine that suspends instead fails the benchmark."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise AssertionError(
        "a benchmarked await suspended: it needs an event loop, and the figure would be wrong"
    )


def _time_awaited_rounds(
    benchmark: Any, body: Callable[[], Coroutine[Any, Any, None]], between: Callable[[], object]
) -> None:
    """Time rounds of CALLS awaited calls (`body`); `between` runs untimed before each."""

    def setup() -> None:  # pedantic treats a truthy return value as arguments
        between()

    benchmark.extra_info["calls_per_round"] = CALLS
    rounds = CALL_ROUNDS if benchmark.enabled else 1
    benchmark.pedantic(lambda: _run_to_the_end(body()), setup=setup, rounds=rounds, warmup_rounds=1)
    if benchmark.stats is not None:
        stats = benchmark.stats.stats
        benchmark.extra_info["per_call_ns"] = round(stats.mean / CALLS * 1e9, 1)
        benchmark.extra_info["per_call_median_ns"] = round(stats.median / CALLS * 1e9, 1)
        benchmark.extra_info["per_call_min_ns"] = round(stats.min / CALLS * 1e9, 1)


@pytest.mark.benchmark(group="async-call")
def test_awaited_stage_metric(benchmark: Any, tmp_path: Path) -> None:
    """`await stage.metric("loss", 0.5, step=step)` as a task writes it (issue 16: at most twice
    `test_awaited_noop_coroutine` per call). The queue is flushed between rounds, untimed."""
    ctx = Contexta(
        workspace=tmp_path / ".contexta",
        config={"project_name": "bench", "capture": {"queue_capacity": 1 << 20}},
    )
    run = ctx.arun("awaited")
    stage = run.stage("evaluate")

    async def body() -> None:
        for step in range(CALLS):
            await stage.metric("loss", 0.5, step=step)

    try:
        _time_awaited_rounds(benchmark, body, ctx.flush)
    finally:
        run.sync.close()
        ctx.close()
    stats = ctx.capture_stats()
    assert (stats.dropped, stats.failed, stats.lost, stats.pending) == (0, 0, 0, 0)


@pytest.mark.benchmark(group="async-call")
def test_awaited_noop_coroutine(benchmark: Any) -> None:
    """The floor of `test_awaited_stage_metric`: `await noop()`, a coroutine that does nothing."""

    async def noop() -> None:
        pass

    async def body() -> None:
        for _ in range(CALLS):
            await noop()

    _time_awaited_rounds(benchmark, body, lambda: None)
