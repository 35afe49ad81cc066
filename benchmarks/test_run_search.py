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
from sweeps import METRICS_PER_STAGE, benchmarks_enabled, capture_sweep

PROJECT = "sweep"
RUNS = 10_000
SMOKE_RUNS = 500
ROUNDS = 20

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


@pytest.fixture(scope="module")
def sweep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A workspace with the runs described above, captured live."""
    runs = RUNS if benchmarks_enabled(request.config) else SMOKE_RUNS
    return capture_sweep(tmp_path_factory.mktemp("run-search") / ".contexta", runs, PROJECT), runs


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
