"""Many processes, one workspace: 8 ranks capturing 100,000 metrics each, and a PyTorch DataLoader
whose forked workers capture samples. Every record lands exactly once, no log line is interleaved
with another, and no `database is locked` reaches anyone."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.capture import read_capture_log

RANKS = 8
PER_RANK = 100_000

_RANK = textwrap.dedent(
    """
    import sys
    from contexta import Contexta

    workspace, rank, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ctx = Contexta(workspace=workspace, config={"project_name": "ddp"})
    with ctx.run(f"rank-{rank}") as run, run.stage("train") as stage:
        for step in range(count):
            stage.metric("loss", float(rank), step=step)
    ctx.close()
    """
)


def _log(workspace: Path, name: str) -> list[dict[str, object]]:
    read = read_capture_log(workspace / "cache" / "capture" / name)
    assert read.clean, f"{name}: unreadable lines {read.skipped_lines[:5]}"  # nothing interleaved
    return read.lines


def test_eight_ranks_capture_into_one_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    Contexta(workspace=workspace, config={"project_name": "ddp"}).close()
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", _RANK, str(workspace), str(rank), str(PER_RANK)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(RANKS)
    ]
    for process in ranks:
        _, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors
        assert "locked" not in errors.lower() and "Traceback" not in errors, errors
    lines = _log(workspace, "record.jsonl")
    refs = Counter(line["payload_ref"] for line in lines if line["payload_type"] == "MetricRecord")
    assert len(refs) == RANKS * PER_RANK and set(refs.values()) == {1}
    with Contexta(workspace=workspace, config={"project_name": "ddp"}) as ctx:
        assert sorted((run.name, run.status) for run in ctx.list_runs()) == [
            (f"rank-{rank}", "completed") for rank in range(RANKS)
        ]
        for rank in range(RANKS):
            series = ctx.get_metric_series(f"rank-{rank}", "loss")
            assert series.steps == tuple(range(PER_RANK)) and set(series.values) == {float(rank)}


_LOADER = textwrap.dedent(
    """
    import sys
    import torch
    from torch.utils.data import DataLoader, Dataset
    from contexta import Contexta

    workspace = sys.argv[1]
    ctx = Contexta(workspace=workspace, config={"project_name": "loader"})

    class Squares(Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, index):
            stage = ctx.current_stage()
            with stage.sample(f"item-{index}") as sample:  # captured inside the worker process
                value = torch.tensor(float(index)) ** 2
                sample.metric("value", value.item(), step=index)
            return value

    with ctx.run("loading") as run, run.stage("load") as stage:
        loader = DataLoader(Squares(), batch_size=8, num_workers=2, multiprocessing_context="fork")
        total = sum(batch.sum().item() for batch in loader)
        stage.metric("total", total)
    ctx.close()
    print(total)
    """
)


def test_dataloader_workers_capture_samples_into_the_parents_stage(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    workspace = tmp_path / ".contexta"
    done = subprocess.run(
        [sys.executable, "-c", _LOADER, str(workspace)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == sum(index**2 for index in range(64))
    lines = _log(workspace, "record.jsonl")
    refs = Counter(line["payload_ref"] for line in lines if line["payload_type"] == "MetricRecord")
    assert set(refs.values()) == {1}
    with Contexta(workspace=workspace, config={"project_name": "loader"}) as ctx:
        samples = ctx.list_samples("loading")
        assert sorted(sample.name for sample in samples) == sorted(f"item-{index}" for index in range(64))
        assert {sample.status for sample in samples} == {"completed"}
        points = ctx.get_metric_series("loading", "value").points
        assert sorted(point.step for point in points) == list(range(64))  # type: ignore[type-var]
        assert all(point.value == point.step**2 for point in points)  # type: ignore[operator]
        assert ctx.get_metric_series("loading", "total").values == (float(sum(i * i for i in range(64))),)
