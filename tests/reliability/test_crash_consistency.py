"""SIGKILL at random moments of a capture (store on): what survives must be whole and consistent.

Each round starts a child interpreter that captures into its own workspace without end, kills it with
SIGKILL after a random delay, and then checks, from this process:
- the capture log's records, read across its segments, are an in-order prefix of what was captured (a
  torn last line is skipped and reported, never fatal, and nothing before it is lost or reordered);
  the child seals a segment every few batches and compresses sealed ones in the background, so many
  kills land during a sealing or a compression;
- the store opens cleanly (SQLite integrity check), and what it holds is a prefix of the log: the store
  writes a batch only after the log has it, so it is never ahead of the log;
- the next Contexta on the workspace marks the run failed with an `interrupted` diagnostic;
- every sixth round, `repair()` rebuilds the store from the log and then holds exactly the log's points.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.capture import read_capture_log
from contexta.errors import NotFoundError

ROUNDS = 30
PROJECT = "crash"

_CHILD = textwrap.dedent(
    """
    import pathlib, sys
    from contexta import Contexta

    workspace = sys.argv[1]
    ctx = Contexta(
        workspace=workspace,
        config={"project_name": "crash", "capture": {"max_batch_size": 512, "segment_bytes": 1 << 20}},
    )
    run = ctx.run("endless")
    stage = run.stage("train")
    ctx.flush()  # the run is in the store before the parent starts its clock
    pathlib.Path(workspace, "ready").touch()
    step = 0
    while True:
        stage.metric("loss", float(step), step=step)
        if step % 250 == 0:
            with stage.sample(f"probe-{step}") as sample:
                sample.event("probe", message=f"step {step}")
        step += 1
    """
)


def _kill_one(workspace: Path, delay_s: float) -> None:
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(workspace)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (workspace / "ready").exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the child never got ready"
            time.sleep(0.005)
        time.sleep(delay_s)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL


def _check(workspace: Path, repair: bool) -> tuple[int, int, bool, int, int]:
    capture_dir = workspace / "cache" / "capture"
    sealed = len(list(capture_dir.glob("record.*.jsonl*")))
    left_plain = len(list(capture_dir.glob("record.*.jsonl")))  # killed before or while compressing
    log = read_capture_log(capture_dir / "record.jsonl")
    lines = log.lines
    total = len(lines) + len(log.skipped_lines)
    # Only the very last line may be unreadable: a write cut short by the kill.
    assert all(number == total for number in log.skipped_lines), log.skipped_lines
    logged = [
        line["payload"]["payload"]["step"]
        for line in lines
        if line["payload_type"] == "MetricRecord" and line["payload"]["payload"]["metric_key"] == "loss"
    ]
    assert logged == list(range(len(logged))), "the log is not an in-order prefix"

    database = workspace / "metadata" / "contexta.db"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        (run,) = ctx.list_runs()
        assert (run.status, run.end_reason) == ("failed", "interrupted")
        codes = {issue.code for issue in ctx.diagnose_run(run.run_id).issues}
        assert "interrupted" in codes
        stored = _steps(ctx, run.run_id)
    assert stored == list(range(len(stored))), "the store is not an in-order prefix"
    assert len(stored) <= len(logged), "the store holds records the log does not"
    if repair:  # rebuilt from the log, the store holds exactly what the log kept
        with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
            ctx.repair()
            rebuilt = _steps(ctx, "endless")
            assert ctx.list_runs()[0].end_reason == "interrupted"
        assert rebuilt == logged
    return len(logged), len(stored), log.torn_tail, sealed, left_plain


def _steps(ctx: Contexta, run_id: str) -> list[int | None]:
    """The steps of the run's loss series; none when a kill came before its first point reached the
    store (asking for a key a run never recorded is a NotFoundError)."""
    try:
        return [point.step for point in ctx.get_metric_series(run_id, "loss").points]
    except NotFoundError:
        return []


@pytest.mark.sqlite_only("reads the SQLite file's rows directly")
def test_thirty_sigkills_leave_a_consistent_log_and_store(tmp_path: Path) -> None:
    rng = random.Random(20261201)
    delays = [rng.uniform(0.02, 1.0) for _ in range(ROUNDS)]
    workspaces = [tmp_path / f"round-{number:02d}" for number in range(ROUNDS)]
    for workspace in workspaces:
        workspace.mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:  # two children at a time: the machine has 2 cores
        list(pool.map(_kill_one, workspaces, delays))
    results = [_check(workspace, repair=number % 6 == 0) for number, workspace in enumerate(workspaces)]
    assert sum(result[0] for result in results) > 0
    assert any(result[1] for result in results), "no round got as far as storing a metric"
    assert sum(result[3] for result in results) > ROUNDS, "too few kills came after a sealing"
    assert any(result[4] for result in results), "no kill came before a compression finished"
