"""What several benchmarks share: whether benchmarks are enabled (a fixture sizes its data by it) and
the sweep of many runs that run search and the dashboard's run table are measured on.

The sweep is a hyperparameter search as a store sees it: each run has tags, a config snapshot with
a learning rate, and 20 metrics (10 per stage, `train` and `evaluate`) of three steps, with values
spread over [0, 1) so filters select about a known share."""

from __future__ import annotations

from pathlib import Path

import pytest

from contexta import Contexta

METRICS_PER_STAGE = 10
TEAMS = ("nlp", "vision", "speech")


def benchmarks_enabled(config: pytest.Config) -> bool:
    """Mirrors pytest-benchmark: `--benchmark-enable` wins over the `--benchmark-disable` in addopts."""
    return bool(config.getoption("benchmark_enable")) or not config.getoption("benchmark_disable")


def sweep_value(run: int, metric: int, step: int) -> float:
    """A spread of values in [0, 1) that differs per run, metric and step."""
    return ((run * 7919 + metric * 104_729 + step * 1_299_709) % 1000) / 1000


def capture_sweep(workspace: Path, runs: int, project: str, store_url: str | None = None) -> Path:
    """`runs` runs captured live into `workspace` (see the module docstring), its store in PostgreSQL
    when `store_url` names one; returns it."""
    with Contexta(workspace=workspace, config={"project_name": project, "store": {"url": store_url}}) as ctx:
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
                                stage.metric(f"m{metric:02d}", sweep_value(number, metric, step), step=step)
    return workspace
