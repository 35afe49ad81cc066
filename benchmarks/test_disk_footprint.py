"""Bytes on disk per scalar metric, for the whole workspace (issue 16): capture log (sealed segments
compressed, the active one plain), store, everything under the workspace root, after capture has
finished; next to tensorboardX's event file for the same metrics, where tensorboardX is installed.

Run with `python -m pytest benchmarks/test_disk_footprint.py --benchmark-enable -s`: 10,000,000
`stage.metric` calls (a few minutes). Without the flag (the project default) each body runs once on
20,000 metrics as a smoke test. Figures land in the benchmark's `extra_info` and are printed; bytes
are counted, not timed, so one round is the measurement.

The values are a training loss as it looks in practice: slowly decaying, with noise in every
mantissa bit (seeded), logged with its step at full rate, one call after another.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta

METRICS = 10_000_000
SMOKE_METRICS = 20_000


def _losses(count: int) -> Iterator[float]:
    rng = random.Random(16)
    loss = 2.0
    for _ in range(count):
        loss = loss * 0.99999 + rng.random() * 1e-3
        yield loss


def _bytes_under(root: Path) -> dict[str, int]:
    """Bytes of every file under `root`, by top-level part: log (sealed, active), store, other."""
    sizes = {"log_sealed": 0, "log_active": 0, "store": 0, "other": 0}
    for directory, _, files in os.walk(root):
        for name in files:
            size = os.path.getsize(os.path.join(directory, name))
            if directory.endswith(os.path.join("cache", "capture")):
                sizes["log_active" if name.endswith(".jsonl") and name.count(".") == 1 else "log_sealed"] += (
                    size
                )
            elif directory.endswith("metadata"):
                sizes["store"] += size
            else:
                sizes["other"] += size
    return sizes


@pytest.mark.benchmark(group="disk-footprint")
def test_bytes_per_scalar_metric_of_the_whole_workspace(benchmark: Any, tmp_path: Path) -> None:
    count = METRICS if benchmark.enabled else SMOKE_METRICS
    workspace = tmp_path / ".contexta"

    def capture() -> None:
        with Contexta(workspace=workspace, config={"project_name": "footprint"}) as ctx:
            with ctx.run("train") as run, run.stage("train") as stage:
                metric = stage.metric
                for step, loss in enumerate(_losses(count)):
                    metric("loss", loss, step=step)
            stats = ctx.capture_stats()
        assert (stats.dropped, stats.failed, stats.lost) == (0, 0, 0)

    benchmark.pedantic(capture, rounds=1, iterations=1)
    sizes = _bytes_under(workspace)
    total = sum(sizes.values())
    benchmark.extra_info.update(metrics=count, total_bytes=total, bytes_per_metric=round(total / count, 2))
    for part, size in sizes.items():
        benchmark.extra_info[f"{part}_bytes_per_metric"] = round(size / count, 2)
    print(f"\ncontexta: {total / count:.2f} bytes per metric over {count:,} metrics; {benchmark.extra_info}")
    with Contexta(workspace=workspace) as ctx:
        assert len(ctx.get_metric_series("run:footprint.train", "loss").points) == count


@pytest.mark.benchmark(group="disk-footprint")
def test_bytes_per_scalar_metric_of_a_tensorboardx_event_file(benchmark: Any, tmp_path: Path) -> None:
    summary = pytest.importorskip(
        "tensorboardX", reason="tensorboardX is not installed: `pip install tensorboardX` to compare"
    )
    count = METRICS if benchmark.enabled else SMOKE_METRICS
    logdir = tmp_path / "tb"

    def capture() -> None:
        writer = summary.SummaryWriter(str(logdir))
        add_scalar = writer.add_scalar
        for step, loss in enumerate(_losses(count)):
            add_scalar("loss", loss, step)
        writer.close()

    benchmark.pedantic(capture, rounds=1, iterations=1)
    total = sum(path.stat().st_size for path in logdir.rglob("*") if path.is_file())
    benchmark.extra_info.update(metrics=count, total_bytes=total, bytes_per_metric=round(total / count, 2))
    print(f"\ntensorboardX: {total / count:.2f} bytes per metric over {count:,} metrics")
