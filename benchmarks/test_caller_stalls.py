"""Does the caller ever stall? Every call of a 200,000-call `stage.metric` loop timed on its own, while
the writer drains, next to the floor: the same loop appending a similar tuple to a bare
`collections.deque`, measured in the same process just before (issue 16, "a caller that never
stalls").

Run with `python -m pytest benchmarks/test_caller_stalls.py --benchmark-enable`. Without that flag (the
project default is `--benchmark-disable`) one short round runs as a smoke test.

Each round opens a new workspace with the default configuration (queue of 98,304, overflow "block",
capture log with its log-writer process, store), times the floor loop, then the capture loop, then
closes (untimed). `extra_info` holds the median over the rounds of each figure: the mean, median
(p50) and worst single call of the capture loop and of the floor, in nanoseconds, their ratios, and
the calls that blocked on a full queue. A mean far above the p50 means a few calls waited a long
time. Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import itertools
import statistics
import time
from array import array
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta

CALLS = 200_000
SMOKE_CALLS = 5_000  # when benchmarks are disabled the body is only a smoke test
ROUNDS = 5


def _summary(durations: array[int]) -> dict[str, float]:
    ordered = sorted(durations)
    return {
        "mean_ns": sum(ordered) / len(ordered),
        "p50_ns": float(ordered[len(ordered) // 2]),
        "max_ns": float(ordered[-1]),
    }


def _floor(calls: int) -> dict[str, float]:
    """The same loop shape around a bare deque append of a tuple like the queued one."""
    ns = time.perf_counter_ns
    durations = array("q", bytes(8 * calls))
    appended: deque[tuple[Any, ...]] = deque()
    append = appended.append
    key = "loss"
    for step in range(calls):
        started = ns()
        append((1, key, float(step), step, started))
        durations[step] = ns() - started
    return _summary(durations)


def _capture(workspace: Path, calls: int) -> dict[str, float]:
    ns = time.perf_counter_ns
    durations = array("q", bytes(8 * calls))
    ctx = Contexta(workspace=workspace, config={"project_name": "bench"})
    try:
        with ctx.run("stalls") as run, run.stage("train") as stage:
            metric = stage.metric
            for step in range(calls):
                started = ns()
                metric("loss", float(step), step=step)
                durations[step] = ns() - started
        stats = ctx.capture_stats()
    finally:
        ctx.close()
    assert (stats.dropped, stats.failed, stats.lost) == (0, 0, 0)
    return {**_summary(durations), "blocked_calls": float(stats.blocked_calls), "blocked_s": stats.blocked_s}


@pytest.mark.benchmark(group="caller-stalls")
def test_no_capture_call_stalls_while_the_writer_drains(benchmark: Any, tmp_path: Path) -> None:
    calls = CALLS if benchmark.enabled else SMOKE_CALLS
    rounds = ROUNDS if benchmark.enabled else 1
    workspaces = itertools.count()
    floors: list[dict[str, float]] = []
    captures: list[dict[str, float]] = []

    def one_round() -> None:
        floors.append(_floor(calls))
        captures.append(_capture(tmp_path / f"round-{next(workspaces)}", calls))

    benchmark.pedantic(one_round, rounds=rounds, iterations=1)

    def median(rows: list[dict[str, float]], name: str) -> float:
        return statistics.median(row[name] for row in rows)

    info = benchmark.extra_info
    info["calls_per_round"] = calls
    info["rounds"] = len(captures)
    for name in ("mean_ns", "p50_ns", "max_ns"):
        info[f"caller_{name}"] = round(median(captures, name), 1)
        info[f"floor_{name}"] = round(median(floors, name), 1)
    info["mean_vs_floor"] = round(
        median([{"r": c["mean_ns"] / f["mean_ns"]} for c, f in zip(captures, floors, strict=True)], "r"), 2
    )
    info["max_minus_floor_max_ms"] = round(
        median(
            [{"r": (c["max_ns"] - f["max_ns"]) / 1e6} for c, f in zip(captures, floors, strict=True)], "r"
        ),
        2,
    )
    info["blocked_calls"] = median(captures, "blocked_calls")
    info["blocked_ms"] = round(median(captures, "blocked_s") * 1e3, 1)
    info["per_round"] = [
        {"caller": {k: round(v, 1) for k, v in c.items()}, "floor": {k: round(v, 1) for k, v in f.items()}}
        for c, f in zip(captures, floors, strict=True)
    ]
