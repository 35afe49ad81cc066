"""The canonical store's targets (issue 3): how fast live capture becomes durable and queryable, and how
fast the two commonest questions are answered.

Run with `python -m pytest benchmarks/test_store_throughput.py --benchmark-enable`. Without that flag
(the project default is `--benchmark-disable`) each body runs once on a smaller store as a smoke test.

- 1,000,000 `stage.metric` calls with the default configuration (capture log and store sink both on),
  timed from the first call until `with run` exits, the flush barrier after which every record is
  committed to the store. Target: >= 150,000 records/s. Each round captures into a new workspace; the
  series is counted afterwards (untimed) to confirm every point is queryable.
- `get_metric_series` of a 1,000,000-point series. Target: under 1 s.
- `list_runs` over 10,000 runs. Target: under 100 ms.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture import RunScope, StageScope
from contexta.contract import Project, Run
from contexta.contract._refs import new_execution_id
from contexta.store import StoreDatabase
from contexta.store._tables import TABLES
from sweeps import benchmarks_enabled

PROJECT = "bench"
METRICS = 1_000_000
RUNS = 10_000
SMOKE_METRICS = 20_000  # when benchmarks are disabled each body only has to show that it works
SMOKE_RUNS = 1_000
ROUNDS = 3  # the heavy benchmarks
LIST_ROUNDS = 10


def _store_path(workspace: Path) -> Path:
    return workspace / "metadata" / "contexta.db"


@pytest.mark.benchmark(group="store-capture")
def test_metric_calls_become_durable_and_queryable(benchmark: Any, tmp_path: Path) -> None:
    calls = METRICS if benchmark.enabled else SMOKE_METRICS
    rounds = ROUNDS if benchmark.enabled else 1
    workspaces = itertools.count()

    def setup() -> tuple[tuple[Contexta, RunScope, StageScope], dict[str, Any]]:
        ctx = Contexta(workspace=tmp_path / f"round-{next(workspaces)}", config={"project_name": PROJECT})
        run = ctx.run("throughput")
        return (ctx, run, run.stage("train")), {}

    def capture(ctx: Contexta, run: RunScope, stage: StageScope) -> None:
        metric = stage.metric
        with run, stage:
            for step in range(calls):
                metric("loss", 0.5, step=step)

    def check(ctx: Contexta, run: RunScope, stage: StageScope) -> None:
        series = ctx.get_metric_series(run.ref, "loss")
        assert len(series.points) == calls
        assert series.points[-1].step == calls - 1
        stats = ctx.capture_stats()
        ctx.close()
        assert (stats.dropped, stats.failed, stats.lost, stats.outboxed) == (0, 0, 0, 0)

    benchmark.extra_info["records_per_round"] = calls
    benchmark.pedantic(capture, setup=setup, teardown=check, rounds=rounds, iterations=1)
    if benchmark.stats is not None:
        stats = benchmark.stats.stats
        benchmark.extra_info["records_per_s"] = round(calls / stats.mean)
        benchmark.extra_info["best_records_per_s"] = round(calls / stats.min)
        benchmark.extra_info["worst_records_per_s"] = round(calls / stats.max)


@pytest.fixture(scope="module")
def long_series(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A workspace holding one run with a `loss` series of METRICS points, captured live."""
    points = METRICS if benchmarks_enabled(request.config) else SMOKE_METRICS
    workspace = tmp_path_factory.mktemp("long-series") / ".contexta"
    # A queue larger than the series: capture never waits for the writer, so building it is quick.
    ctx = Contexta(
        workspace=workspace, config={"project_name": PROJECT, "capture": {"queue_capacity": 1 << 21}}
    )
    with ctx.run("long") as run, run.stage("train") as stage:
        for step in range(points):
            stage.metric("loss", 1.0 / (step + 1), step=step)
    ctx.close()
    return workspace, points


@pytest.mark.benchmark(group="store-query")
def test_get_metric_series_of_a_long_series(benchmark: Any, long_series: tuple[Path, int]) -> None:
    workspace, points = long_series
    ctx = Contexta(workspace=workspace, config={"project_name": PROJECT})  # a later investigation
    try:
        series = benchmark.pedantic(
            ctx.get_metric_series, args=(f"run:{PROJECT}.long", "loss"), rounds=ROUNDS, iterations=1
        )
    finally:
        ctx.close()
    assert len(series.points) == points
    assert [series.points[0].step, series.points[-1].step] == [0, points - 1]
    benchmark.extra_info["points"] = points
    if benchmark.stats is not None:
        benchmark.extra_info["mean_s"] = round(benchmark.stats.stats.mean, 3)


@pytest.fixture
def many_runs(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, int]:
    """A workspace with RUNS completed runs, put in one transaction through the store's own run table
    (the upsert `put_run` and live capture use), with tags and metadata like captured runs have."""
    runs = RUNS if benchmarks_enabled(request.config) else SMOKE_RUNS
    workspace = tmp_path / ".contexta"
    Contexta(workspace=workspace, config={"project_name": PROJECT}).close()  # creates the schema
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def timestamp(offset_s: float) -> str:
        return (start + timedelta(seconds=offset_s)).isoformat(timespec="microseconds").replace("+00:00", "Z")

    database = StoreDatabase(_store_path(workspace))
    try:
        with database.transaction() as connection:
            TABLES["projects"].upsert(
                connection, Project(f"project:{PROJECT}", PROJECT, timestamp(0)).to_dict()
            )
            for number in range(runs):
                run = Run(
                    f"run:{PROJECT}.run-{number:05d}",
                    f"project:{PROJECT}",
                    f"run-{number:05d}",
                    "completed",
                    timestamp(number * 60),
                    timestamp(number * 60 + 42.5),
                )
                document = {
                    **run.to_dict(),
                    "execution_id": new_execution_id(),
                    "tags": {"seed": number % 5},
                    "metadata": {"lr": 0.001},
                }
                TABLES["runs"].upsert(connection, document)
    finally:
        database.close_all()
    return workspace, runs


@pytest.mark.benchmark(group="store-query")
def test_list_runs_over_many_runs(benchmark: Any, many_runs: tuple[Path, int]) -> None:
    workspace, runs = many_runs
    ctx = Contexta(workspace=workspace, config={"project_name": PROJECT})
    try:
        listed = benchmark.pedantic(ctx.list_runs, rounds=LIST_ROUNDS, iterations=1, warmup_rounds=1)
    finally:
        ctx.close()
    assert len(listed) == runs
    assert [listed[0].name, listed[-1].name] == ["run-00000", f"run-{runs - 1:05d}"]
    assert listed[0].tags == {"seed": 0}
    benchmark.extra_info["runs"] = runs
    if benchmark.stats is not None:
        benchmark.extra_info["mean_ms"] = round(benchmark.stats.stats.mean * 1000, 1)


@pytest.mark.benchmark(group="store-query")
def test_snapshot_and_report_of_a_long_run(benchmark: Any, long_series: tuple[Path, int]) -> None:
    """`get_run_snapshot` plus `build_snapshot_report` (with its chart) of the run holding the long
    series, rendered to Markdown and HTML. Target: under 2 s."""
    workspace, points = long_series
    ctx = Contexta(workspace=workspace, config={"project_name": PROJECT})

    def investigate() -> tuple[int, str, str]:
        snapshot = ctx.get_run_snapshot(f"run:{PROJECT}.long")
        report = ctx.build_snapshot_report(f"run:{PROJECT}.long")
        return len(snapshot.records), report.to_markdown(), report.to_html()

    try:
        records, markdown, html = benchmark.pedantic(investigate, rounds=ROUNDS, iterations=1)
    finally:
        ctx.close()
    assert records >= points
    assert "loss in stage train" in markdown
    assert html.count("<svg") >= 1
    benchmark.extra_info["points"] = points
    if benchmark.stats is not None:
        benchmark.extra_info["mean_s"] = round(benchmark.stats.stats.mean, 3)
