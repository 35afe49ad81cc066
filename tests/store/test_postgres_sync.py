"""`contexta sync --from WORKSPACE --to postgresql://...`: a workspace captured offline, pushed into a
shared PostgreSQL store; running it twice, after a SIGKILL, or after more capture leaves the store it
should (each run's points once, in order)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contexta import Contexta, Workspace, sync_workspace
from contexta.cli import main
from contexta.errors import ConfigurationError


def _capture_offline(workspace: Path, runs: dict[str, int]) -> None:
    """Runs captured into the workspace's own store (no server): `runs` maps a name to its steps."""
    with Contexta(workspace=workspace, config={"project_name": "laptop"}) as ctx:
        for name, steps in runs.items():
            with ctx.run(name, tags={"machine": "laptop"}) as run:
                with run.stage("train") as stage:
                    for step in range(steps):
                        stage.metric("loss", 1.0 / (step + 1), step=step)
                with run.stage("evaluate") as stage:
                    stage.metric("accuracy", steps / (steps + 1.0))
                    stage.event("done", message=f"{name} evaluated")


def _contents(url: str) -> dict[str, Any]:
    """What a reader of the store sees: runs, and every series' points."""
    with Workspace(Path("/nonexistent-reader"), config={"store": {"url": url}}) as reader:
        runs = sorted(reader.list_runs(), key=lambda run: run.name)
        return {
            run.name: {
                "status": run.status,
                "tags": run.tags,
                "loss": [(p.step, p.value) for p in reader.get_metric_series(run.run_id, "loss").points],
                "accuracy": [p.value for p in reader.get_metric_series(run.run_id, "accuracy").points],
            }
            for run in runs
        }


def _table_counts(url: str) -> dict[str, int]:
    tables = ("runs", "stages", "records", "metric_series", "metric_chunks", "environments")
    with psycopg.connect(url) as connection:
        counts = {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone() for table in tables}
        points = connection.execute("SELECT sum(point_count) FROM metric_chunks").fetchone()
    return {
        **{table: int(row[0]) for table, row in counts.items() if row},
        "points": int(points[0] or 0) if points else 0,
    }


def test_a_workspace_captured_offline_reads_the_same_from_the_shared_store(
    postgres_url: str, tmp_path: Path
) -> None:
    workspace = tmp_path / "laptop"
    _capture_offline(workspace, {"small": 10, "large": 5_000})
    report = sync_workspace(workspace, postgres_url)
    assert report.delivered_lines > 5_000 and report.already_there_lines == 0

    with Workspace(workspace) as local:
        expected_names = sorted(run.name for run in local.list_runs())
    synced = _contents(postgres_url)
    assert sorted(synced) == expected_names == ["large", "small"]
    assert synced["large"]["loss"] == [(step, 1.0 / (step + 1)) for step in range(5_000)]
    assert synced["small"]["accuracy"] == [10 / 11.0]
    assert {run["status"] for run in synced.values()} == {"completed"}
    assert synced["large"]["tags"] == {"machine": "laptop"}


def test_syncing_twice_changes_nothing(postgres_url: str, tmp_path: Path) -> None:
    workspace = tmp_path / "laptop"
    _capture_offline(workspace, {"r": 3_000})
    sync_workspace(workspace, postgres_url)
    before = _table_counts(postgres_url)
    again = sync_workspace(workspace, postgres_url)
    assert again.delivered_lines == 0 and again.batches == 0
    assert again.already_there_lines > 3_000
    assert _table_counts(postgres_url) == before


def test_a_log_that_grew_since_gets_only_what_is_new(postgres_url: str, tmp_path: Path) -> None:
    workspace = tmp_path / "laptop"
    _capture_offline(workspace, {"first": 1_000})
    sync_workspace(workspace, postgres_url)
    _capture_offline(workspace, {"second": 2_000})
    report = sync_workspace(workspace, postgres_url)
    assert 0 < report.delivered_lines < 2_100
    contents = _contents(postgres_url)
    assert [step for step, _ in contents["first"]["loss"]] == list(range(1_000))
    assert [step for step, _ in contents["second"]["loss"]] == list(range(2_000))


def test_a_sync_killed_midway_and_run_again_leaves_the_store_a_clean_sync_leaves(
    postgres_server: Any, tmp_path: Path
) -> None:
    from services import database

    workspace = tmp_path / "laptop"
    _capture_offline(workspace, {f"run-{n}": 20_000 for n in range(6)})
    with database(postgres_server) as killed_url, database(postgres_server) as clean_url:
        sync = subprocess.Popen(
            [sys.executable, "-m", "contexta", "sync", "--from", str(workspace), "--to", killed_url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _wait_for_some_batches(killed_url, sync)
        os.kill(sync.pid, signal.SIGKILL)
        sync.wait(30)
        partial = _table_counts(killed_url)["points"]
        assert 0 < partial < 6 * 20_000, "the kill should land mid-sync"

        resumed = sync_workspace(workspace, killed_url)
        assert resumed.already_there_lines > 0
        sync_workspace(workspace, clean_url)
        assert _table_counts(killed_url) == _table_counts(clean_url)
        assert _contents(killed_url) == _contents(clean_url)


def _wait_for_some_batches(url: str, process: subprocess.Popen[bytes]) -> None:
    """Until the sync in `process` has committed a batch (polling the target)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sync ended before it could be killed"
        try:
            with psycopg.connect(url) as connection:
                row = connection.execute(
                    "SELECT count(*) FROM delivered_batches WHERE batch_id LIKE 'sync:%'"
                ).fetchone()
            if row and row[0] >= 2:
                return
        except psycopg.Error:
            pass  # the schema is being made
        time.sleep(0.02)
    pytest.fail("the sync never committed a batch")


def test_the_command_line_syncs_and_refuses_a_target_of_another_kind(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tmp_path / "laptop"
    _capture_offline(workspace, {"r": 100})
    assert main(["sync", "--from", str(workspace), "--to", postgres_url, "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["delivered_lines"] > 100 and printed["batches"] == 1

    assert main(["sync", "--from", str(workspace), "--to", "mysql://root:hunter2@db/x"]) == 1
    error = capsys.readouterr().err
    assert "postgresql://" in error and "hunter2" not in error
    with pytest.raises(ConfigurationError):
        sync_workspace(workspace, "sqlite:///elsewhere.db")
