"""examples/opentelemetry_export.py runs as a reader would run it, in an empty directory, and its
printed counts agree with what it captured."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from contexta import Contexta

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "opentelemetry_export.py"


def test_the_example_exports_one_span_per_sample_and_the_metric_counts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "Captured run: run:iris-otel.logreg" in output
    # 150 flowers, 20% held out: 30 samples, under one batch, two stages and the run.
    assert "Spans exported: 34 (batch=1, run=1, sample=30, stage=2)" in output
    accuracy = float(re.search(r"Holdout accuracy from the store: ([0-9.]+)", output)[1])  # type: ignore[index]
    correct = float(re.search(r"Metric correct: count=30 sum=([0-9.]+)", output)[1])  # type: ignore[index]
    assert correct == round(accuracy * 30) and 0.8 <= accuracy <= 1.0
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "iris-otel"}) as ctx:
        assert [run.status for run in ctx.list_runs()] == ["completed"]
    assert list((tmp_path / ".contexta" / "cache" / "capture").glob("*.jsonl")), "the capture log is kept"
