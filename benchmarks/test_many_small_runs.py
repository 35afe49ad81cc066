"""Many short runs: what opening, capturing into and closing a run costs end to end, when each run
records a handful of points of many keys (a sweep, a test suite, a hyperparameter search).

Run with `python -m pytest benchmarks/test_many_small_runs.py --benchmark-enable`. Without that flag
(the project default is `--benchmark-disable`) one short round runs as a smoke test.

Each round opens a Contexta on a new workspace, captures 500 runs of 20 keys x 3 steps in one stage,
and closes it: every run is in the store when the round ends. This is the shape the store's per-series
summaries and search index (schema 4) cost most on, since every series is new and short; extra_info
has the mean and the worst round and the runs per second. Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta

RUNS = 500
SMOKE_RUNS = 20
KEYS = 20
STEPS = 3
ROUNDS = 3


def _capture(workspace: Path, runs: int) -> float:
    started = time.perf_counter()
    with Contexta(workspace=workspace, config={"project_name": "sweep"}) as ctx:
        for index in range(runs):
            with ctx.run(f"trial-{index}") as run, run.stage("train") as stage:
                for step in range(STEPS):
                    for key in range(KEYS):
                        stage.metric(f"m{key:02d}", step * 0.1 + key, step=step)
        assert len(ctx.list_runs()) == runs
    return time.perf_counter() - started


@pytest.mark.benchmark(group="many-small-runs")
def test_many_small_runs_captured_and_closed(benchmark: Any, tmp_path: Path) -> None:
    runs = RUNS if benchmark.enabled else SMOKE_RUNS
    rounds = ROUNDS if benchmark.enabled else 1
    workspaces = itertools.count()
    seconds: list[float] = []

    def one_round() -> None:
        seconds.append(_capture(tmp_path / f"round-{next(workspaces)}", runs))

    benchmark.pedantic(one_round, rounds=rounds, iterations=1)
    info = benchmark.extra_info
    info["runs_per_round"] = runs
    info["points_per_run"] = KEYS * STEPS
    info["mean_s"] = round(sum(seconds) / len(seconds), 3)
    info["worst_s"] = round(max(seconds), 3)
    info["runs_per_s"] = round(runs / (sum(seconds) / len(seconds)), 1)
