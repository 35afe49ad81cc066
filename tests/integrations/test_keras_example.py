"""examples/keras_training.py runs as a reader would run it: in an empty directory, training for real
and printing numbers read back from the store that match what Keras itself reported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from contexta import Contexta

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keras_training.py"


def test_keras_example_trains_captures_and_reads_back(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env={**os.environ, "KERAS_BACKEND": "torch"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout

    assert "Captured run: run:keras-digits.digits-mlp (completed)" in output
    assert "Stages: train, validate, evaluate" in output
    stored = re.search(r"val_accuracy by epoch in the store: (\[.*\])", output)
    reported = re.search(r"val_accuracy by epoch from Keras: +(\[.*\])", output)
    assert stored is not None and reported is not None and stored[1] == reported[1]
    test = re.search(r"Test accuracy in the store: ([0-9.]+) \(Keras evaluate: ([0-9.]+)\)", output)
    assert test is not None and test[1] == test[2] and float(test[1]) > 0.85
    # 1797 digits: 1347 to train, of which 80% (1077 rows) fitted in batches of 64, for 5 epochs.
    assert "batch/loss in the store: 85 points" in output

    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "keras-digits"}) as ctx:
        [artifact] = ctx.list_artifacts("digits-mlp")
        verified = ctx.verify_artifact(artifact.artifact_ref)
    assert f"blake3 {artifact.hash_value}" in output
    assert (tmp_path / "digits-mlp.keras").stat().st_size == artifact.size_bytes
    assert verified.status == "verified"
