"""The one workload every tracker runs, and how it is timed; imported by each workload script.

It runs inside each tracker's own virtualenv, so it uses the standard library only. A workload script
supplies `open_session(workdir)` (a `Session`: how to log one metric, how to make everything durable),
or `open_async_session(workdir)` for an async API, and `read_back(workdir)` (how many "loss" points
the tool's own files say it holds), then calls `main(...)`. The script prints one line,
`PEER-RESULT {json}`, which the runner collects.

Sync mode: N calls `log(step, value)` in a plain loop; the calls in a window of SAMPLE calls in the
middle are each timed with two `perf_counter_ns()` reads, the rest are not timed, so the tool's
background work is in full swing while the sample is taken. Then `finish()` is timed: the time from
the last call until the data is durable. Async mode: TASKS tasks under `asyncio.run`, each logging
METRICS_PER_TASK metrics and yielding to the loop after each (`sleep(0)`), with a ticker that sleeps
1 ms in a loop and records how late it wakes: the loop is never idle, so this is throughput under a
saturated loop, and even a tool that does nothing sees the loop's own round of TASKS tasks. Service
mode: the same tasks, arriving 10 per millisecond, each awaiting a simulated model call between
metrics (10 to 100 ms, the same seeded schedule for every tool): the shape of an async LLM evaluation
service. The loop has headroom, so the ticker's lateness is what the tool (and the garbage collector)
adds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import itertools
import json
import math
import os
import platform
import random
import resource
import time
from array import array
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

RESULT_MARKER = "PEER-RESULT "
TICK_S = 0.001
SERVICE_PAUSE_S = (0.010, 0.100)  # a simulated model call between two metrics of a task
SERVICE_SEED = 20261201
ARRIVALS_PER_MS = 10  # service mode: requests arrive over the first ~100 ms, not all at once


class Session(NamedTuple):
    """A sync tracker opened on one run and stage: `log(step, value)` per metric, `finish()` once."""

    log: Callable[[int, float], object]
    finish: Callable[[], object]


class AsyncSession(NamedTuple):
    """An async tracker: `await log(step, value)` per metric, `await finish()` once."""

    log: Callable[[int, float], Awaitable[object]]
    finish: Callable[[], Awaitable[object]]


def value_at(step: int) -> float:
    """The logged value: a loss that decays with the step, so no tool can compress a constant."""
    return 1.0 / (1.0 + step * 1e-3)


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    rank = min(len(sorted_values), max(1, math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def summarise_timings(timings: array[int]) -> dict[str, float]:
    """Mean, p50, p99 and max of per-call timings in nanoseconds."""
    ordered = sorted(timings)
    return {
        "mean": sum(ordered) / len(ordered),
        "p50": percentile(ordered, 0.50),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
    }


def drive(log: Callable[[int, float], object], calls: int, sample_start: int, sample: int) -> array[int]:
    """Make `calls` calls; return the per-call nanoseconds of calls sample_start..sample_start+sample."""
    clock = time.perf_counter_ns
    timings = array("q", bytes(8 * sample))
    for step in range(sample_start):
        log(step, value_at(step))
    for index in range(sample):
        step = sample_start + index
        value = value_at(step)
        before = clock()
        log(step, value)
        timings[index] = clock() - before
    for step in range(sample_start + sample, calls):
        log(step, value_at(step))
    return timings


async def adrive(
    log: Callable[[int, float], Awaitable[object]], calls: int, sample_start: int, sample: int
) -> array[int]:
    """`drive` for an awaitable call, from one task."""
    clock = time.perf_counter_ns
    timings = array("q", bytes(8 * sample))
    for step in range(sample_start):
        await log(step, value_at(step))
    for index in range(sample):
        step = sample_start + index
        value = value_at(step)
        before = clock()
        await log(step, value)
        timings[index] = clock() - before
    for step in range(sample_start + sample, calls):
        await log(step, value_at(step))
    return timings


def _nothing(step: int, value: float) -> None:
    return None


async def _anothing(step: int, value: float) -> None:
    return None


def _process_usage() -> dict[str, float]:
    """Peak RSS of this process (and of reaped children, e.g. a tracker's service) and its CPU time."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "peak_rss_mib": own.ru_maxrss / 1024,  # Linux reports KiB
        "children_peak_rss_mib": children.ru_maxrss / 1024,
        "cpu_s": own.ru_utime + own.ru_stime,
        "children_cpu_s": children.ru_utime + children.ru_stime,
    }


def measure_sync(
    open_session: Callable[[Path], Session] | None,
    open_async_session: Callable[[Path], Awaitable[AsyncSession]] | None,
    workdir: Path,
    calls: int,
    sample: int,
) -> dict[str, Any]:
    """The sync workload: N calls in one loop, a timed sample in the middle, then the time to durable."""
    sample = min(sample, calls)
    sample_start = (calls - sample) // 2
    if open_session is not None:
        empty = summarise_timings(drive(_nothing, sample, 0, sample))
        session = open_session(workdir)
        started = time.perf_counter()
        timings = drive(session.log, calls, sample_start, sample)
        called = time.perf_counter()
        session.finish()
        durable = time.perf_counter()
    else:
        assert open_async_session is not None

        async def body() -> tuple[dict[str, float], array[int], float, float, float]:
            empty = summarise_timings(await adrive(_anothing, sample, 0, sample))
            session = await open_async_session(workdir)
            started = time.perf_counter()
            timings = await adrive(session.log, calls, sample_start, sample)
            called = time.perf_counter()
            await session.finish()
            return empty, timings, started, called, time.perf_counter()

        empty, timings, started, called, durable = asyncio.run(body())
    usage = _process_usage()
    return {
        "calls": calls,
        "sample": sample,
        "sample_start": sample_start,
        "per_call_ns": summarise_timings(timings),
        "empty_call_ns": empty,
        "calls_s": called - started,
        "durable_s": durable - called,
        "records_per_s": calls / (durable - started),
        **usage,
    }


def service_pauses(tasks: int, per_task: int) -> list[list[float]]:
    """Each task's waits between metrics: seeded, so every tool meets the same schedule."""
    chooser = random.Random(SERVICE_SEED)
    low, high = SERVICE_PAUSE_S
    return [[chooser.uniform(low, high) for _ in range(per_task)] for _ in range(tasks)]


def _lateness_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples) or [0.0]
    return {"worst": ordered[-1] * 1000, "p99": ordered[math.ceil(0.99 * len(ordered)) - 1] * 1000}


async def _tasks_and_ticker(
    session: Session | AsyncSession,
    is_async: bool,
    tasks: int,
    per_task: int,
    pauses: list[list[float]] | None,
) -> dict[str, float]:
    """Run the tasks beside a 1 ms ticker; time until durable and how late the ticker woke.

    With `pauses` None each task yields with sleep(0) after every metric, else it awaits its pauses.
    """
    steps = itertools.count()
    late: dict[str, list[float]] = {"calls": [], "finish": []}
    phase = ["calls"]
    stop = asyncio.Event()

    async def ticker() -> None:
        clock = time.perf_counter
        while not stop.is_set():
            before = clock()
            await asyncio.sleep(TICK_S)
            late[phase[0]].append(clock() - before - TICK_S)

    async def producer(index: int) -> None:
        log = session.log
        waits = pauses[index] if pauses is not None else [0.0] * per_task
        for wait in waits:
            step = next(steps)
            if is_async:
                await log(step, value_at(step))  # type: ignore[misc]
            else:
                log(step, value_at(step))
            await asyncio.sleep(wait)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(TICK_S * 5)  # let the ticker settle into its loop
    started = time.perf_counter()
    if pauses is None:  # saturated: every task at once
        await asyncio.gather(*(producer(index) for index in range(tasks)))
    else:  # a service: requests arrive ARRIVALS_PER_MS at a time, as they would from clients
        running = []
        for index in range(tasks):
            running.append(asyncio.create_task(producer(index)))
            if index % ARRIVALS_PER_MS == ARRIVALS_PER_MS - 1:
                await asyncio.sleep(0.001)
        await asyncio.gather(*running)
    called = time.perf_counter()
    phase[0] = "finish"
    if is_async:
        await session.finish()  # type: ignore[misc]
    else:
        session.finish()  # how a sync tracker is closed from async code: on the loop thread
    durable = time.perf_counter()
    stop.set()
    await ticking
    during_calls, at_finish = _lateness_ms(late["calls"]), _lateness_ms(late["finish"])
    return {
        "calls_s": called - started,
        "durable_s": durable - called,
        "worst_lateness_calls_ms": during_calls["worst"],
        "p99_lateness_calls_ms": during_calls["p99"],
        "worst_lateness_finish_ms": at_finish["worst"],
        "ticks": len(late["calls"]) + len(late["finish"]),
    }


def measure_async(
    open_session: Callable[[Path], Session] | None,
    open_async_session: Callable[[Path], Awaitable[AsyncSession]] | None,
    workdir: Path,
    tasks: int,
    per_task: int,
    service: bool,
) -> dict[str, Any]:
    """The async workload: `tasks` tasks x `per_task` metrics under asyncio.run, beside a ticker."""
    pauses = service_pauses(tasks, per_task) if service else None

    async def body() -> dict[str, float]:
        if open_async_session is not None:
            session = await open_async_session(workdir)
            return await _tasks_and_ticker(session, True, tasks, per_task, pauses)
        assert open_session is not None
        return await _tasks_and_ticker(open_session(workdir), False, tasks, per_task, pauses)

    timing = asyncio.run(body())
    records = tasks * per_task
    return {
        "calls": records,
        "tasks": tasks,
        "per_task": per_task,
        **timing,
        "records_per_s": records / (timing["calls_s"] + timing["durable_s"]),
        **_process_usage(),
    }


def _versions(distributions: Sequence[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in distributions:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def main(
    *,
    read_back: Callable[[Path], int],
    open_session: Callable[[Path], Session] | None = None,
    open_async_session: Callable[[Path], Awaitable[AsyncSession]] | None = None,
    distributions: Sequence[str] = (),
) -> None:
    """Parse the runner's arguments, run one measurement in `--workdir`, print the result line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("sync", "async", "service"), required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=1_000)
    parser.add_argument("--per-task", type=int, default=100)
    arguments, _ = parser.parse_known_args()  # the rest belongs to the workload script
    arguments.workdir = arguments.workdir.resolve()
    arguments.workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(arguments.workdir)  # trackers that write beside the current directory write into the workdir
    if arguments.mode == "sync":
        result = measure_sync(
            open_session, open_async_session, arguments.workdir, arguments.calls, arguments.sample
        )
    else:
        result = measure_async(
            open_session,
            open_async_session,
            arguments.workdir,
            arguments.tasks,
            arguments.per_task,
            service=arguments.mode == "service",
        )
    read_started = time.perf_counter()
    result["read_back"] = read_back(arguments.workdir)
    result["read_back_s"] = time.perf_counter() - read_started
    result["mode"] = arguments.mode
    result["versions"] = _versions(distributions)
    result["python"] = platform.python_version()
    print(RESULT_MARKER + json.dumps(result), flush=True)
