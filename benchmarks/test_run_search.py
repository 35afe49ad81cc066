"""Finding runs (issue 17): `list_runs(filter=..., sort=...)` over 10,000 runs with 20 metrics each.
Target: under 100 ms per search.

Run with `python -m pytest benchmarks/test_run_search.py --benchmark-enable`. Without that flag (the
project default is `--benchmark-disable`) each search runs once over 500 runs as a smoke test.

The runs are captured live, as a user's sweep would be (about 35 s for 10,000 runs): each has tags,
a nested config snapshot, a `train` stage with 10 metrics and an `evaluate` stage with 10 more, three
points each, so min() and max() differ from the latest value. Each search is timed over ROUNDS rounds
after one warm-up; `extra_info` has the mean and the worst round in ms, and how many runs matched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta

PROJECT = "sweep"
RUNS = 10_000
SMOKE_RUNS = 500
METRICS_PER_STAGE = 10
ROUNDS = 20
TEAMS = ("nlp", "vision", "speech")

# (id, filter, sort, limit): the example shape, aggregates, stage-qualified keys with paging.
SEARCHES = [
    (
        "example",
        "metrics.m03 > 0.5 and (params.optimizer.lr <= 0.01 or tags.team = nlp) and status = completed",
        "-metrics.m05,name",
        None,
    ),
    ("min-max", "max(metrics.m07) > 0.9", "-min(metrics.m01)", None),
    ("stages", "metrics.evaluate:m12 >= 0.25 and not tags.team = vision", "-metrics.train:m04", 50),
]


def _enabled(config: pytest.Config) -> bool:
    """Mirrors pytest-benchmark: `--benchmark-enable` wins over the `--benchmark-disable` in addopts."""
    return bool(config.getoption("benchmark_enable")) or not config.getoption("benchmark_disable")


def _value(run: int, metric: int, step: int) -> float:
    """A spread of values in [0, 1) that differs per run, metric and step."""
    return ((run * 7919 + metric * 104_729 + step * 1_299_709) % 1000) / 1000


@pytest.fixture(scope="module")
def sweep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A workspace with the runs described above, captured live."""
    runs = RUNS if _enabled(request.config) else SMOKE_RUNS
    workspace = tmp_path_factory.mktemp("run-search") / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        for number in range(runs):
            with ctx.run(
                f"run-{number:05d}",
                tags={"team": TEAMS[number % 3], "seed": number % 5},
                config_snapshot={"optimizer": {"name": "adam", "lr": 10.0 ** -(number % 4)}, "seed": number},
            ) as run:
                for stage_index, stage_name in enumerate(("train", "evaluate")):
                    with run.stage(stage_name) as stage:
                        for offset in range(METRICS_PER_STAGE):
                            metric = stage_index * METRICS_PER_STAGE + offset
                            for step in range(3):
                                stage.metric(f"m{metric:02d}", _value(number, metric, step), step=step)
    return workspace, runs


@pytest.mark.benchmark(group="run-search")
@pytest.mark.parametrize(("search", "expression", "sort", "limit"), SEARCHES, ids=[s[0] for s in SEARCHES])
def test_filter_and_sort_over_many_runs(
    benchmark: Any, sweep: tuple[Path, int], search: str, expression: str, sort: str, limit: int | None
) -> None:
    workspace, runs = sweep
    ctx = Contexta(workspace=workspace, config={"project_name": PROJECT})  # a later investigation
    rounds = ROUNDS if benchmark.enabled else 1
    try:
        found = benchmark.pedantic(
            ctx.list_runs,
            kwargs={"filter": expression, "sort": sort, "limit": limit},
            rounds=rounds,
            iterations=1,
            warmup_rounds=1 if benchmark.enabled else 0,
        )
        everything = ctx.list_runs(filter=expression)  # untimed: the same runs, unsorted and unpaged
    finally:
        ctx.close()
    assert found, f"{search}: the seeded runs should match"
    assert {run.run_id for run in found} <= {run.run_id for run in everything}
    assert len(found) == (len(everything) if limit is None else min(limit, len(everything)))
    benchmark.extra_info.update(runs=runs, metrics_per_run=2 * METRICS_PER_STAGE, matched=len(everything))
    if benchmark.stats is not None:
        stats = benchmark.stats.stats
        benchmark.extra_info["mean_ms"] = round(stats.mean * 1000, 1)
        benchmark.extra_info["worst_ms"] = round(stats.max * 1000, 1)
