"""Import rate of `contexta import` (issue 20): a history of 100,000 metric points.

Run with `python -m pytest benchmarks/test_imports.py --benchmark-enable`. Without that flag each
body runs once on 2,000 points as a smoke test.

- MLflow: an mlruns directory of 10 runs x 5 metrics, written in MLflow's file-store format (the
  layout tests/cli/test_import_mlflow.py checks against real MLflow; written directly here so the
  setup takes a second, not minutes of MlflowClient calls).
- TensorBoard: 2 runs x 5 tags written by tensorboardX.

Each round imports into a fresh workspace (capture log and store, as `contexta import` does).
Reported in `extra_info`: points/s for the mean round and for the worst (slowest) round.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from contexta._imports import import_mlflow, import_tensorboard

POINTS = 100_000
SMOKE_POINTS = 2_000
ROUNDS = 3
T0_MS = 1_767_225_600_000
_round = itertools.count()


def _write_mlruns(root: Path, points: int) -> None:
    runs, keys = 10, ("loss", "val_loss", "acc", "val_acc", "lr")
    steps = points // (runs * len(keys))
    experiment = root / "1"
    experiment.mkdir(parents=True)
    (experiment / "meta.yaml").write_text("experiment_id: '1'\nlifecycle_stage: active\nname: bench\n")
    for number in range(runs):
        run_id = f"{number:032x}"
        run = experiment / run_id
        (run / "metrics").mkdir(parents=True)
        (run / "params").mkdir()
        (run / "params" / "lr").write_text("0.001")
        (run / "meta.yaml").write_text(
            f"run_id: {run_id}\nrun_name: run-{number}\nexperiment_id: '1'\nstatus: 3\n"
            f"start_time: {T0_MS}\nend_time: {T0_MS + steps * 100}\nlifecycle_stage: active\n"
        )
        for index, key in enumerate(keys):
            lines = (
                f"{T0_MS + step * 100 + index} {1.0 / (step + 1 + index)} {step}\n" for step in range(steps)
            )
            (run / "metrics" / key).write_text("".join(lines))


def _write_events(logdir: Path, points: int) -> None:
    import tensorboardX

    runs, tags = 2, ("loss", "val_loss", "acc", "val_acc", "lr")
    steps = points // (runs * len(tags))
    for number in range(runs):
        with tensorboardX.SummaryWriter(str(logdir / f"run-{number}"), max_queue=10_000) as writer:
            for step in range(steps):
                for index, tag in enumerate(tags):
                    writer.add_scalar(tag, 1.0 / (step + 1 + index), step, walltime=T0_MS / 1000 + step * 0.1)


def _measure(benchmark: Any, source: Path, run_import: Any, points: int) -> None:
    workspaces: list[Path] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        workspace = source.parent / f"ws-{next(_round)}"
        workspaces.append(workspace)
        return (source,), {"workspace": workspace}

    rounds = ROUNDS if benchmark.enabled else 1
    benchmark.pedantic(run_import, setup=setup, rounds=rounds, iterations=1)
    report = run_import(source, workspace=workspaces[-1])  # the last workspace again: nothing new
    assert report.imported_runs == [] and report.skipped_runs
    benchmark.extra_info["points"] = points
    if benchmark.stats is not None:
        benchmark.extra_info["points_per_s_mean"] = round(points / benchmark.stats.stats.mean)
        benchmark.extra_info["points_per_s_worst"] = round(points / benchmark.stats.stats.max)


@pytest.mark.benchmark(group="imports")
def test_import_mlflow_rate(benchmark: Any, tmp_path: Path) -> None:
    points = POINTS if benchmark.enabled else SMOKE_POINTS
    _write_mlruns(tmp_path / "mlruns", points)
    _measure(benchmark, tmp_path / "mlruns", import_mlflow, points)


@pytest.mark.benchmark(group="imports")
def test_import_tensorboard_rate(benchmark: Any, tmp_path: Path) -> None:
    pytest.importorskip("tensorboardX")
    points = POINTS if benchmark.enabled else SMOKE_POINTS
    _write_events(tmp_path / "logs", points)
    _measure(benchmark, tmp_path / "logs", import_tensorboard, points)
