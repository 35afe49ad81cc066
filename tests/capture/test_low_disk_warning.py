"""Low free space on the capture log's file system is warned about before anything is lost: once per
crossing of `capture.min_free_bytes`, saying how much is left and how to reclaim space; 0 turns it
off. The file system is faked (os.statvfs); no test depends on timing."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture import CaptureWarning, LocalJsonlSink
from contexta.capture._sinks._disk_space import DiskSpaceWatch

GiB = 1 << 30
MiB = 1 << 20


class FakeDisk:
    """Stands in for os.statvfs; `free` is the space left, and `asked` counts the calls."""

    def __init__(self, free: int):
        self.free = free
        self.asked = 0

    def __call__(self, path: Any) -> SimpleNamespace:
        self.asked += 1
        return SimpleNamespace(f_bavail=self.free // 4096, f_frsize=4096)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FakeDisk:
    fake = FakeDisk(100 * GiB)
    monkeypatch.setattr(os, "statvfs", fake)
    return fake


def _checked(watch: DiskSpaceWatch) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        watch.check()
    return [w for w in caught if issubclass(w.category, CaptureWarning)]


def test_warns_once_per_crossing(disk: FakeDisk, tmp_path: Path) -> None:
    watch = DiskSpaceWatch(tmp_path, GiB, interval_s=0.0)

    assert _checked(watch) == []
    disk.free = 300 * MiB
    first = _checked(watch)
    assert len(first) == 1
    message = str(first[0].message)
    assert "300.0 MiB left" in message and "1.0 GiB" in message
    assert "contexta gc" in message and "contexta du" in message
    assert _checked(watch) == []  # still low: already said
    disk.free = 2 * GiB
    assert _checked(watch) == []  # space came back
    disk.free = 10 * MiB
    assert len(_checked(watch)) == 1  # and went again
    assert watch.warnings == 2


def test_zero_turns_it_off(disk: FakeDisk, tmp_path: Path) -> None:
    disk.free = 0
    watch = DiskSpaceWatch(tmp_path, 0, interval_s=0.0)

    assert _checked(watch) == []
    assert disk.asked == 0


def test_a_file_system_that_cannot_be_asked_is_not_warned_about(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(path: Any) -> None:
        raise PermissionError("no")

    monkeypatch.setattr(os, "statvfs", refuse)
    assert _checked(DiskSpaceWatch(tmp_path, GiB, interval_s=0.0)) == []


def test_capture_warns_when_the_log_disk_runs_low(disk: FakeDisk, tmp_path: Path) -> None:
    disk.free = 100 * MiB
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Contexta(workspace=tmp_path / ".contexta", config={"capture": {"log_process": False}}) as ctx:
            for attempt in range(3):
                with ctx.run("train") as run:
                    run.metric("loss", float(attempt))
            sink = next(sink for sink in ctx.sinks if isinstance(sink, LocalJsonlSink))
            assert sink.disk_space.warnings == 1
    low = [
        w
        for w in caught
        if issubclass(w.category, CaptureWarning) and "left on the file system" in str(w.message)
    ]
    assert len(low) == 1
    assert "100.0 MiB left" in str(low[0].message)
    assert str(tmp_path / ".contexta" / "cache" / "capture") in str(low[0].message)


def test_capture_stays_quiet_with_the_warning_off(disk: FakeDisk, tmp_path: Path) -> None:
    disk.free = 0
    config = {"capture": {"min_free_bytes": 0}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Contexta(workspace=tmp_path / ".contexta", config=config) as ctx, ctx.run("train") as run:
            run.metric("loss", 1.0)
    assert not [w for w in caught if "left on the file system" in str(w.message)]
