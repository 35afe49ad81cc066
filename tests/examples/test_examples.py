"""The examples run as a reader would run them: in an empty directory, printing what they measured."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from contexta import Contexta

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(example: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example)],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_quickstart_trains_captures_and_reads_back(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    output = _run("quickstart.py", tmp_path)
    assert "Captured run: run:breast-cancer.sgd-logistic" in output
    accuracy = float(re.search(r"Measured accuracy: ([0-9.]+)", output)[1])  # type: ignore[index]
    assert 0.8 < accuracy <= 1.0
    assert "train/loss in the store: 20 points" in output
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "breast-cancer"}) as ctx:
        assert [run.status for run in ctx.list_runs()] == ["completed"]


def test_async_evaluation_service_judges_every_case(tmp_path: Path) -> None:
    output = _run("async_evaluation_service.py", tmp_path)
    assert "Captured run: run:async-llm-eval.arithmetic-eval" in output
    match = re.search(r"Measured pass rate: ([0-9.]+) \((\d+)/200 cases", output)
    assert match is not None
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "async-llm-eval"}) as ctx:
        samples = ctx.list_samples("arithmetic-eval")
        correct = ctx.get_metric_series("arithmetic-eval", "correct").values
        (pass_rate,) = ctx.get_metric_series("arithmetic-eval", "pass.rate").values
        deployments = ctx.list_deployments()
    assert len(samples) == 200 and {sample.status for sample in samples} == {"completed"}
    assert len(correct) == 200 and int(match[2]) == int(sum(correct))
    assert pass_rate == pytest.approx(sum(correct) / 200) and f"{pass_rate:.2f}" == match[1]
    assert [deployment.run_id for deployment in deployments] == ["run:async-llm-eval.arithmetic-eval"]


def test_system_metrics_example_samples_beside_real_training(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("psutil")
    output = _run("system_metrics.py", tmp_path)
    accuracy = float(re.search(r"Measured test accuracy: ([0-9.]+)", output)[1])  # type: ignore[index]
    stored = int(re.search(r"every 0.2 s: (\d+) stored", output)[1])  # type: ignore[index]
    peak_mib = float(re.search(r"Peak resident memory: ([0-9.]+) MiB", output)[1])  # type: ignore[index]
    assert 0.9 < accuracy <= 1.0
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "digits"}) as ctx:
        (run,) = ctx.list_runs()
        stages = {stage.name: stage.status for stage in ctx.list_stages(run.run_id)}
        rss = ctx.get_metric_series(run.run_id, "process.rss_bytes", stage="system").values
        (stored_accuracy,) = ctx.get_metric_series(run.run_id, "accuracy", stage="evaluate").values
    assert stages == {"system": "completed", "train": "completed", "evaluate": "completed"}
    assert stored >= 1 and len(rss) == stored
    assert f"{max(rss) / 2**20:.1f}" == f"{peak_mib:.1f}" and peak_mib > 10
    assert f"{stored_accuracy:.4f}" == f"{accuracy:.4f}"
