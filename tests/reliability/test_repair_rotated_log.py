"""`repair` after logrotate: the rotated files are part of the capture log, so the rebuilt store has
the runs they hold, whether rotated by number, by date, or compressed."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from contexta import Contexta

pytestmark = pytest.mark.sqlite_only("repair rebuilds the SQLite file from the capture log")

_CONFIG = {"project_name": "p", "capture": {"log_process": False}}


def _capture_run(workspace: Path, name: str, steps: range) -> None:
    with Contexta(workspace=workspace, config=_CONFIG) as ctx, ctx.run(name) as run:
        for step in steps:
            run.metric("loss", float(step), step=step)


def _rotate(capture: Path, suffix: str, *, compress: bool = False) -> None:
    """What logrotate does to each file: rename it (then gzip it, with `compress`)."""
    for name in ("record.jsonl", "context.jsonl", "artifact.jsonl"):
        live = capture / name
        if not live.exists():
            continue
        rotated = capture / f"{name}{suffix}"
        os.rename(live, rotated)
        if compress:
            with rotated.open("rb") as source, gzip.open(f"{rotated}.gz", "wb") as target:
                shutil.copyfileobj(source, target)
            rotated.unlink()


def test_repair_rebuilds_the_runs_that_only_rotated_files_hold(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    capture = workspace / "cache" / "capture"
    _capture_run(workspace, "first", range(0, 300))
    _rotate(capture, ".2", compress=True)  # the oldest: rotated twice, compressed
    _capture_run(workspace, "second", range(300, 600))
    _rotate(capture, ".1")
    _capture_run(workspace, "third", range(600, 900))
    _rotate(capture, "-20250101")  # logrotate's dateext
    _capture_run(workspace, "fourth", range(900, 1200))

    with Contexta(workspace=workspace, config=_CONFIG) as ctx:
        report = ctx.repair()
        assert report.runs == 4 and report.skipped_lines == {}
        assert [(run.name, run.status) for run in ctx.list_runs()] == [
            ("first", "completed"),
            ("second", "completed"),
            ("third", "completed"),
            ("fourth", "completed"),
        ]
        for name, start in (("first", 0), ("second", 300), ("third", 600), ("fourth", 900)):
            assert list(ctx.get_metric_series(name, "loss").steps) == list(range(start, start + 300))
