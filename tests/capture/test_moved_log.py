"""The capture log renamed away (logrotate's default, `mv record.jsonl record.jsonl.1`) or deleted
while a run captures: later records land in a new file at the log's path, in this process and in the
log-writer process, and what `capture_stats()` counts as written is in a file on disk."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from contexta import Contexta
from contexta.capture import CaptureBatch, InMemorySink, LocalJsonlSink, read_capture_log


def _steps(path: Path) -> list[int]:
    read = read_capture_log(path)
    assert read.clean, f"unreadable lines {read.skipped_lines} in {path}"
    return [
        line["payload"]["payload"]["step"] for line in read.lines if line["payload_type"] == "MetricRecord"
    ]


def _capture(ctx: Contexta, scope: Any, steps: range) -> None:
    for step in steps:
        scope.metric("loss", float(step), step=step)
    report = ctx.flush()
    assert report.ok, report.errors


def test_a_rotated_log_is_reopened_at_its_path_and_repair_reads_both_files(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    ctx = Contexta(workspace=workspace, config={"project_name": "p", "capture": {"log_process": False}})
    log = workspace / "cache" / "capture" / "record.jsonl"
    context_log = workspace / "cache" / "capture" / "context.jsonl"
    with ctx.run("r") as run:
        _capture(ctx, run, range(0, 1000))
        os.rename(log, log.with_name("record.jsonl.1"))  # logrotate's default: rename, then a new file
        os.rename(context_log, context_log.with_name("context.jsonl.1"))
        _capture(ctx, run, range(1000, 2000))
    # Counted once the run has closed: its environment snapshot, queued by a thread of its own, may
    # arrive after the last flush inside the block.
    ctx.flush()
    stats = ctx.capture_stats()
    ctx.close()

    assert stats.written == stats.queued and stats.failed == 0
    assert _steps(log.with_name("record.jsonl.1")) == list(range(1000))
    assert _steps(log) == list(range(1000, 2000))  # the later records are at the path readers look at
    runs = [
        line["payload"]["status"]
        for line in read_capture_log(context_log).lines
        if line["payload_type"] == "Run"
    ]
    assert runs == ["completed"]  # the run's closing went to the new context log too

    # Repair reads the rotated files as the log: the rebuilt store has the whole run, not half of it.
    with Contexta(workspace=workspace, config={"project_name": "p"}) as again:
        report = again.repair()
        assert report.runs == 1
        assert list(again.get_metric_series("r", "loss").steps) == list(range(2000))
        assert [run.status for run in again.list_runs()] == ["completed"]


def test_a_deleted_log_is_recreated_and_holds_every_record_captured_after(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    ctx = Contexta(workspace=workspace, config={"project_name": "p", "capture": {"log_process": False}})
    log = workspace / "cache" / "capture" / "record.jsonl"
    with ctx.run("r") as run:
        _capture(ctx, run, range(0, 500))
        before = ctx.capture_stats().written
        log.unlink()
        _capture(ctx, run, range(500, 1500))
        after = ctx.capture_stats()
    ctx.close()
    # Every record counted as written after the deletion is in the file now at the path.
    assert _steps(log) == list(range(500, 1500))
    assert after.written - before >= 1000 and after.failed == 0


class _SlowFirstWrite(InMemorySink):
    """Holds the writer back once, so the queue backs up and the following batches are full: the
    load that starts the log-writer process, made deterministic."""

    def __init__(self) -> None:
        super().__init__(name="slow-first")
        self._slowed = False

    def write(self, batch: CaptureBatch) -> None:
        if not self._slowed:
            self._slowed = True
            time.sleep(0.3)
        super().write(batch)


def test_the_log_writer_process_follows_a_rotated_and_a_deleted_log(tmp_path: Path) -> None:
    directory = tmp_path / "capture"
    log = LocalJsonlSink(directory)
    ctx = Contexta(
        workspace=tmp_path / ".contexta", config={"project_name": "p"}, sinks=[_SlowFirstWrite(), log]
    )
    path = log.file_path_for("RECORD")
    try:
        with ctx.run("r") as run:
            _capture(ctx, run, range(0, 20_000))
            writer = log.log_process_pid
            assert writer is not None, "full batches should have started the log-writer process"
            os.rename(path, path.with_name("record.jsonl.1"))
            _capture(ctx, run, range(20_000, 40_000))
            rotated_into = _steps(path)
            path.unlink()
            _capture(ctx, run, range(40_000, 60_000))
            assert log.log_process_pid == writer  # the child followed the path; nothing fell back
            stats = ctx.capture_stats()
    finally:
        ctx.close()
    assert stats.written == stats.queued and stats.failed == 0
    assert _steps(path.with_name("record.jsonl.1")) == list(range(20_000))
    assert rotated_into == list(range(20_000, 40_000))
    assert _steps(path) == list(range(40_000, 60_000))
