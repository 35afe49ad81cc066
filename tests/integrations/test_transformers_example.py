"""examples/transformers_training.py runs as a reader would run it: in an empty directory, printing
what it read back from the store, which must be what the store holds and what the Trainer reported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from contexta import Contexta

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "transformers_training.py"


def test_the_example_fine_tunes_and_prints_the_eval_loss_from_the_store(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    output = result.stdout

    assert "Captured run: run:hf-tiny.tiny-bert (completed)" in output
    stored = float(re.search(r"Final eval loss \(from the store\): ([0-9.]+)", output)[1])  # type: ignore[index]
    reported = float(re.search(r"Final eval loss \(as the Trainer reported it\): ([0-9.]+)", output)[1])  # type: ignore[index]
    first_train = float(re.search(r"Training loss in the store: \d+ points, first ([0-9.]+)", output)[1])  # type: ignore[index]
    assert stored == reported
    assert stored < first_train / 2  # it learned the signal; an untrained model stays near ln 2
    assert "Checkpoint files registered: 21 from 3 checkpoints" in output
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "hf-tiny"}) as ctx:
        eval_loss = ctx.get_metric_series("tiny-bert", "eval_loss", stage="evaluate")
        accuracy = ctx.get_metric_series("tiny-bert", "eval_accuracy", stage="evaluate")
        artifacts = ctx.list_artifacts("tiny-bert")
    assert eval_loss.steps == (16, 32, 48)
    assert f"{eval_loss.values[-1]:.4f}" == f"{stored:.4f}"
    assert accuracy.values[-1] > 0.9
    assert all(Path(artifact.location.removeprefix("path:")).is_file() for artifact in artifacts)
