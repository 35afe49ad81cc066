"""The store file deleted, renamed away or replaced while a run captures.

A live SQLite connection keeps committing into the file it opened, deleted or not, and every commit
succeeds: without a check, `capture_stats()` counts the records as written and no reader ever sees
them. The store sink follows the path instead: a deleted store is created anew, another store put in
its place is written into, and a file there that is not a store makes the batches park in the outbox.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture import CaptureWarning

pytestmark = pytest.mark.sqlite_only("a SQLite store file deleted, renamed or replaced under a live capture")

_CONFIG = {"project_name": "p", "capture": {"log_process": False}}


def _store(workspace: Path) -> Path:
    return workspace / "metadata" / "contexta.db"


def _capture(ctx: Contexta, scope: Any, steps: range) -> None:
    for step in steps:
        scope.metric("loss", float(step), step=step)
    ctx.flush()


def _delete_store(workspace: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{_store(workspace)}{suffix}").unlink(missing_ok=True)


def _warnings_about_the_store(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if issubclass(w.category, CaptureWarning) and "store file" in str(w.message)
    ]


def _integrity(workspace: Path) -> str:
    connection = sqlite3.connect(_store(workspace))
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


def test_a_deleted_store_is_recreated_with_the_open_run_and_everything_after(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    ctx = Contexta(workspace=workspace, config=_CONFIG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ctx.run("r") as run, run.stage("train") as stage:
            _capture(ctx, stage, range(0, 1000))
            _delete_store(workspace)
            _capture(ctx, stage, range(1000, 2000))
        stats = ctx.close().stats

    assert stats.written == stats.queued and stats.failed == 0
    told = _warnings_about_the_store(caught)
    assert len(told) == 1 and "deleted" in told[0] and "contexta repair" in told[0]
    with Contexta(workspace=workspace, config=_CONFIG) as later:
        [listed] = later.list_runs()
        assert (listed.name, listed.status) == ("r", "completed")
        assert [stage.name for stage in later.list_stages("r")] == ["train"]
        # What was captured after the deletion is in the new store; the rest is in the capture log.
        assert list(later.get_metric_series("r", "loss").steps) == list(range(1000, 2000))
        later.repair()
        assert list(later.get_metric_series("r", "loss").steps) == list(range(2000))
    assert _integrity(workspace) == "ok"


def test_a_store_renamed_away_is_created_anew_and_stays_intact(tmp_path: Path) -> None:
    # `mv contexta.db elsewhere` leaves the -wal and -shm of the moved file at the path; the store
    # created there sets them aside rather than letting SQLite pair them with the new file.
    workspace = tmp_path / ".contexta"
    ctx = Contexta(workspace=workspace, config=_CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        with ctx.run("r") as run:
            _capture(ctx, run, range(0, 500))
            os.rename(_store(workspace), tmp_path / "moved.db")
            _capture(ctx, run, range(500, 1000))
        ctx.close()
    assert _integrity(workspace) == "ok"
    with Contexta(workspace=workspace, config=_CONFIG) as later:
        assert [run.name for run in later.list_runs()] == ["r"]
        assert list(later.get_metric_series("r", "loss").steps) == list(range(500, 1000))


def test_a_store_replaced_by_another_store_is_written_into(tmp_path: Path) -> None:
    other = tmp_path / "other"
    with Contexta(workspace=other, config=_CONFIG) as elsewhere, elsewhere.run("other") as run:
        run.metric("loss", 1.0, step=0)
    workspace = tmp_path / ".contexta"
    ctx = Contexta(workspace=workspace, config=_CONFIG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ctx.run("r") as run:
            _capture(ctx, run, range(0, 500))
            # A restored backup put in place with `mv`: this store's -wal and -shm stay at the path.
            os.replace(_store(other), _store(workspace))
            _capture(ctx, run, range(500, 1000))
        ctx.close()
    told = _warnings_about_the_store(caught)
    assert len(told) == 1 and "replaced" in told[0]
    assert _integrity(workspace) == "ok"
    with Contexta(workspace=workspace, config=_CONFIG) as later:
        assert sorted(run.name for run in later.list_runs()) == ["other", "r"]
        assert [run.status for run in later.list_runs()] == ["completed", "completed"]
        assert list(later.get_metric_series("r", "loss").steps) == list(range(500, 1000))
        assert list(later.get_metric_series("other", "loss").steps) == [0]


def test_a_store_replaced_by_garbage_parks_the_batches_until_it_is_fixed(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    ctx = Contexta(workspace=workspace, config=_CONFIG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ctx.run("r") as run:
            _capture(ctx, run, range(0, 500))
            garbage = tmp_path / "garbage"
            garbage.write_bytes(b"not a database " * 1000)
            os.replace(garbage, _store(workspace))
            _capture(ctx, run, range(500, 1000))
            during = ctx.capture_stats()
            # The user moves the bad file aside: the next batch creates a new store.
            os.replace(_store(workspace), tmp_path / "garbage.aside")
            _capture(ctx, run, range(1000, 1500))
        replayed = ctx.replay_outbox()
        ctx.close()

    # While the file was unusable, nothing was counted as written that was not stored: the loss was
    # counted, parked and warned about.
    assert during.failed >= 500 and during.outboxed >= during.failed
    assert during.sink_failures.get("canonical-store", 0) > 0
    assert during.written + during.failed == during.queued
    assert any("not a usable Contexta store" in message for message in _warnings_about_the_store(caught))
    assert replayed.remaining_batches == 0 and replayed.delivered_records >= 500
    with Contexta(workspace=workspace, config=_CONFIG) as later:
        [listed] = later.list_runs()
        assert listed.status == "completed"
        assert sorted(later.get_metric_series("r", "loss").steps) == list(range(500, 1500))


_CHILD = textwrap.dedent(
    """
    import os, sys, time, warnings
    from contexta import Contexta

    warnings.simplefilter("ignore")
    workspace, name, signals = sys.argv[1], sys.argv[2], sys.argv[3]
    ctx = Contexta(workspace=workspace, config={"project_name": "p", "capture": {"log_process": False}})

    def wait_for(path):
        deadline = time.monotonic() + 60
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)

    with ctx.run(name) as run:
        for step in range(500):
            run.metric("loss", float(step), step=step)
        ctx.flush()
        open(os.path.join(signals, f"ready-{name}"), "w").close()
        wait_for(os.path.join(signals, "deleted"))
        for step in range(500, 1000):
            run.metric("loss", float(step), step=step)
    stats = ctx.capture_stats()
    ctx.close()
    print(stats.written == stats.queued and stats.failed == 0)
    """
)


def test_processes_that_see_one_deletion_create_one_store_and_list_both_runs(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    signals = tmp_path / "signals"
    signals.mkdir()
    Contexta(workspace=workspace, config=_CONFIG).close()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(workspace), name, str(signals)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    deadline = time.monotonic() + 60
    while not all((signals / f"ready-{name}").exists() for name in "ab"):
        assert time.monotonic() < deadline and all(child.poll() is None for child in children)
        time.sleep(0.01)
    shutil.rmtree(workspace / "metadata")
    (signals / "deleted").touch()
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.strip() == "True", err
    assert _integrity(workspace) == "ok"
    with Contexta(workspace=workspace, config=_CONFIG) as later:
        assert sorted((run.name, run.status) for run in later.list_runs()) == [
            ("a", "completed"),
            ("b", "completed"),
        ]
        for name in "ab":
            assert list(later.get_metric_series(name, "loss").steps) == list(range(500, 1000))


@pytest.mark.parametrize("moved", ["deleted", "replaced"])
def test_nothing_is_counted_as_stored_that_a_later_contexta_cannot_read(tmp_path: Path, moved: str) -> None:
    # What a user checks: capture_stats() said written, so a fresh Contexta must find the points.
    workspace = tmp_path / ".contexta"
    if moved == "replaced":
        Contexta(workspace=tmp_path / "other", config=_CONFIG).close()
    ctx = Contexta(workspace=workspace, config=_CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        run = ctx.run("r")
        _capture(ctx, run, range(0, 100))
        if moved == "deleted":
            _delete_store(workspace)
        else:
            os.replace(_store(tmp_path / "other"), _store(workspace))
        _capture(ctx, run, range(100, 200))
        stats = ctx.capture_stats()
        with Contexta(workspace=workspace, config=_CONFIG) as reader:
            stored = list(reader.get_metric_series("r", "loss").steps)
        run.close()
        ctx.close()
    assert stats.failed == 0
    assert stored == list(range(100, 200))
