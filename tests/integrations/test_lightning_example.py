"""examples/lightning_training.py runs as a reader would run it: in an empty directory, printing what
Lightning reported beside what the store holds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from contexta import Contexta

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lightning_training.py"


def test_lightning_example_trains_and_reads_back_what_lightning_reported(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    pytest.importorskip("sklearn")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "Captured run: run:lightning-digits.digits-mlp (completed)" in output
    assert "Hyperparameters: {'hidden': 64, 'lr': 0.05}" in output
    assert "Stages: train, validate" in output
    reported = re.search(r"reported by Lightning: ([0-9.]+)", output)
    stored = re.search(r"read from the store: ([0-9.]+) \(5 epochs\)", output)
    assert reported is not None and stored is not None
    assert reported[1] == stored[1] and float(reported[1]) > 0.8  # it learned the digits
    assert re.search(r"Checkpoints registered: 5; best: path:.*\.ckpt \(verified\)", output)
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "lightning-digits"}) as ctx:
        (run,) = ctx.list_runs()
        val_acc = ctx.get_metric_series(run.run_id, "val_acc", stage="validate").values
        assert f"{val_acc[-1]:.4f}" == stored[1]
        assert len(ctx.list_artifacts(run.run_id)) == 5
