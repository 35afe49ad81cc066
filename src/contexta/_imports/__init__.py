"""Importing history from other trackers: `contexta import mlflow` and `contexta import tensorboard`.

Readers of the source formats (`_mlflow.py`, `_tensorboard.py` over `_tfrecord.py`) turn each source
run into an `ImportedRun` (`_model.py`) carrying the source's own timestamps; `_writer.py` writes it
into the workspace's capture log and store, idempotently. Neither MLflow nor TensorBoard is needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from contexta._imports._model import ImportedRun
from contexta._imports._writer import ImportReport, ImportTarget
from contexta.config import UnifiedConfig, load_config

__all__ = ["ImportReport", "import_mlflow", "import_tensorboard"]

# Called once with the total (runs, units) and then with each run's units as it is written.
ProgressHook = Callable[[str, int], None]


def import_mlflow(
    source: str | os.PathLike[str],
    *,
    workspace: str | os.PathLike[str] = ".contexta",
    config: UnifiedConfig | Mapping[str, Any] | None = None,
    project: str | None = None,
    progress: ProgressHook | None = None,
) -> ImportReport:
    """Import every active run of the MLflow store at `source` (an mlruns directory,
    `sqlite:///mlflow.db` or `postgresql://...`) into the workspace; safe to run again."""
    from contexta._imports._mlflow import open_mlflow_source

    opened = open_mlflow_source(os.fspath(source), project=project)
    report = ImportReport(source="mlflow")
    _write_all(opened.runs(), opened.count, "points", report, workspace, config, progress, None)
    return report


def import_tensorboard(
    logdir: str | os.PathLike[str],
    *,
    workspace: str | os.PathLike[str] = ".contexta",
    config: UnifiedConfig | Mapping[str, Any] | None = None,
    project: str | None = None,
    progress: ProgressHook | None = None,
) -> ImportReport:
    """Import the scalars of every event directory under `logdir` (one run each); safe to run again."""
    from contexta._imports._tensorboard import TensorboardSource

    opened = TensorboardSource(Path(logdir), project)
    report = ImportReport(source="tensorboard")
    _write_all(opened.runs(), opened.count, "bytes", report, workspace, config, progress, opened.run_bytes)
    report.torn_records = opened.torn_records
    return report


def _write_all(
    runs: Iterator[ImportedRun],
    count: Callable[[], tuple[int, int]],
    unit: str,
    report: ImportReport,
    workspace: str | os.PathLike[str],
    config: UnifiedConfig | Mapping[str, Any] | None,
    progress: ProgressHook | None,
    run_units: dict[str, int] | None,
) -> None:
    """Write each run; `progress` gets the total first, then points as written (or, with
    `run_units`, each run's units once it is written)."""
    loaded = load_config(config, workspace=workspace)
    if progress is not None:
        progress(unit, count()[1])
    with ImportTarget(loaded) as target:
        for run in runs:
            step = None
            if progress is not None and run_units is None:
                step = lambda points: progress("", points)  # noqa: E731
            target.write_run(run, report, step)
            if progress is not None and run_units is not None:
                progress("", run_units.get(run.source_id, 0))
