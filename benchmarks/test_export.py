"""Exporting (issue 17, item 5): a run's metric points, read from the store and written as Parquet.

Run with `python -m pytest benchmarks/test_export.py --benchmark-enable`. Without that flag (the
project default is `--benchmark-disable`) the body runs once on a smaller store as a smoke test.

- 1,000,000 points (two series of 500,000, `loss` and `lr`, captured live at every step of one
  stage) exported as `contexta export --table points --format parquet -o PATH` does it: the run's
  metric history read from the store's chunk columns, made an Arrow table and written with pyarrow.
  Target: under 2 s. Each round writes a new file; extra_info has the mean and the worst round.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta, Workspace
from contexta.cli._export import build_table
from contexta.query import write_table
from sweeps import benchmarks_enabled

pq = pytest.importorskip("pyarrow.parquet")

PROJECT = "bench"
POINTS = 1_000_000
SMOKE_POINTS = 20_000
ROUNDS = 5


@pytest.fixture(scope="module")
def captured(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A workspace holding one run whose train stage captured `loss` and `lr` at every step."""
    points = POINTS if benchmarks_enabled(request.config) else SMOKE_POINTS
    workspace = tmp_path_factory.mktemp("export") / ".contexta"
    ctx = Contexta(
        workspace=workspace, config={"project_name": PROJECT, "capture": {"queue_capacity": 1 << 21}}
    )
    with ctx.run("long") as run, run.stage("train") as stage:
        metric = stage.metric
        for step in range(points // 2):
            metric("loss", 1.0 / (step + 1), step=step)
            metric("lr", 0.001, step=step)
    ctx.close()
    return workspace, points


@pytest.mark.benchmark(group="export")
def test_a_million_points_to_parquet(benchmark: Any, captured: tuple[Path, int], tmp_path: Path) -> None:
    workspace, points = captured
    files = itertools.count()
    with Workspace(workspace) as reader:
        run = reader.get_run(f"run:{PROJECT}.long")

        def export() -> Path:
            return write_table(
                build_table(reader, "points", [run]), tmp_path / f"points-{next(files)}.parquet", "parquet"
            )

        written = benchmark.pedantic(export, rounds=ROUNDS if benchmark.enabled else 1, iterations=1)
    table = pq.read_table(written)
    assert table.num_rows == points
    assert table.column("metric_key").to_pylist()[:1] == ["loss"]
    assert table.column("step").to_pylist()[points // 2 - 1] == points // 2 - 1
    benchmark.extra_info["points"] = points
    benchmark.extra_info["file_bytes"] = written.stat().st_size
    if benchmark.stats is not None:
        stats = benchmark.stats.stats
        benchmark.extra_info["mean_s"] = round(stats.mean, 3)
        benchmark.extra_info["worst_s"] = round(stats.max, 3)
