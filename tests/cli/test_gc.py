"""`contexta gc` reclaims exactly the executions its policy names (store rows, metric points, artifact
copies, parked batches, lines in sealed log segments) and nothing else: never the active segment,
never a live run, never the latest execution of a name; `--dry-run` changes nothing; a gc killed
while it rewrites segments leaves a readable log and a consistent store, and the next one finishes."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import orjson
import pytest
from gc_workspace import (
    CONFIG,
    POINTS,
    PROJECT,
    capture_workspace,
    executions_in_log,
    file_digests,
    integrity,
    log_lines,
    store_rows,
)

from conftest import CliRunner
from contexta import Workspace
from contexta.capture import execution_of_line
from contexta.errors import NotFoundError


@pytest.fixture
def captured(tmp_path: Path) -> tuple[Path, dict[str, list[str]]]:
    return capture_workspace(tmp_path)


def _gc(cli: CliRunner, workspace: Path, *options: str) -> dict[str, Any]:
    result = cli("gc", "--workspace", workspace, "--format", "json", *options)
    assert result.code == 0, result.err
    report: dict[str, Any] = json.loads(result.out)
    return report


def _active(workspace: Path) -> dict[str, bytes]:
    capture = workspace / "cache" / "capture"
    return {
        name: (capture / name).read_bytes() for name in ("context.jsonl", "record.jsonl", "artifact.jsonl")
    }


def _assert_reclaimed(
    workspace: Path, gone: list[str], kept: list[str], before: dict[str, list[Any]]
) -> None:
    """`gone` left no row, point or sealed-segment line; `kept` are whole, and read back as before."""
    for execution in gone:
        assert set(store_rows(workspace, execution).values()) == {0}, execution
    sealed = executions_in_log(workspace, sealed_only=True)
    assert not sealed & set(gone)
    after = log_lines(workspace)
    for family, lines in before.items():
        # What stays is the same lines in the same order: only lines of reclaimed executions went.
        expected = [line for line in lines if execution_of_line(line) not in gone]
        remaining_gone = [line for line in after[family] if execution_of_line(line) in gone]
        assert [line for line in after[family] if execution_of_line(line) not in gone] == expected
        assert all(line in lines for line in remaining_gone)  # only in the active segment, untouched
    with Workspace(workspace) as reader:
        for execution in kept:
            series = reader.get_metric_series(
                f"run:{PROJECT}.{_name_of(before, execution)}@{execution}", "loss"
            )
            assert len(series.values) == POINTS
            assert store_rows(workspace, execution)["runs"] == 1
        for execution in gone:
            with pytest.raises(NotFoundError):
                reader.get_metric_series(f"run:{PROJECT}.{_name_of(before, execution)}@{execution}", "loss")
    assert integrity(workspace) == "ok"


def _name_of(before: dict[str, list[Any]], execution: str) -> str:
    for line in before["context.jsonl"]:
        payload = line["payload"]
        if line["payload_type"] == "Run" and payload.get("execution_id") == execution:
            return str(payload["name"])
    raise AssertionError(execution)


def test_keep_executions_reclaims_all_but_the_latest_n_of_each_name(
    cli: CliRunner, captured: tuple[Path, dict[str, list[str]]]
) -> None:
    workspace, executions = captured
    before, active = log_lines(workspace), _active(workspace)
    copies_before = sorted(p.name for p in (workspace / "artifacts").rglob("*") if p.is_file())

    report = _gc(cli, workspace, "--keep-executions", "2")

    gone = [executions["a"][0], executions["b"][0]]
    kept = executions["a"][1:] + executions["b"][1:]
    assert sorted(row["execution_id"] for row in report["reclaimed"]) == sorted(gone)
    assert sorted(row["execution_id"] for row in report["kept"]) == sorted(kept)
    assert report["store_rows"]["metric_points"] == 2 * POINTS
    assert report["log"]["lines_removed"] > 0
    _assert_reclaimed(workspace, gone, kept, before)
    assert _active(workspace) == active  # the active segment is never touched
    # b@1's copy went; a@1's content is also a@2's, which is kept, so its copy stays.
    copies_after = sorted(p.name for p in (workspace / "artifacts").rglob("*") if p.is_file())
    assert len(copies_after) == len(copies_before) - 1
    assert report["artifact_files_removed"] == 1
    assert report["freed"]["log_sealed_compressed"] > 0


def test_keep_age_reclaims_executions_that_ended_before_the_limit(
    cli: CliRunner, captured: tuple[Path, dict[str, list[str]]]
) -> None:
    workspace, executions = captured
    old = [executions["a"][0], executions["b"][1]]
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        connection.executemany(
            "UPDATE runs SET ended_at = '2020-01-01T00:00:00Z' WHERE execution_id = ?", [(e,) for e in old]
        )
    before = log_lines(workspace)

    report = _gc(cli, workspace, "--keep-age", "30d")

    assert sorted(row["execution_id"] for row in report["reclaimed"]) == sorted(old)
    kept = [e for name in "ab" for e in executions[name] if e not in old]
    _assert_reclaimed(workspace, old, kept, before)


def test_keep_size_reclaims_the_oldest_until_under_the_limit(
    cli: CliRunner, captured: tuple[Path, dict[str, list[str]]]
) -> None:
    workspace, executions = captured
    du = json.loads(cli("du", "--workspace", workspace, "--format", "json").out)
    before = log_lines(workspace)

    # One byte under the total: reclaiming the oldest execution is enough, and only it goes.
    report = _gc(cli, workspace, "--keep-size", str(du["total_bytes"] - 1))

    assert [row["execution_id"] for row in report["reclaimed"]] == [executions["a"][0]]
    kept = [e for name in "ab" for e in executions[name]][1:]
    _assert_reclaimed(workspace, [executions["a"][0]], [e for e in kept if e != executions["a"][0]], before)


def test_the_configured_policy_applies_and_the_default_keeps_everything(
    cli: CliRunner, captured: tuple[Path, dict[str, list[str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, executions = captured
    digests = file_digests(workspace)

    report = _gc(cli, workspace)

    assert report["reclaimed"] == []
    assert {row["reason"] for row in report["kept"]} >= {"the policy keeps everything"}
    assert file_digests(workspace).keys() - {"cache/gc/reclaimed.jsonl"} == digests.keys()
    assert store_rows(workspace, executions["a"][0])["runs"] == 1

    monkeypatch.setenv("CONTEXTA_CAPTURE_RETENTION", "executions=1")
    report = _gc(cli, workspace)

    assert len(report["reclaimed"]) == 4
    assert {row["execution_id"] for row in report["kept"]} == {executions["a"][-1], executions["b"][-1]}


def test_dry_run_changes_nothing(cli: CliRunner, captured: tuple[Path, dict[str, list[str]]]) -> None:
    workspace, _ = captured
    digests = file_digests(workspace)

    report = _gc(cli, workspace, "--dry-run", "--keep-executions", "1")

    assert report["dry_run"] is True
    assert len(report["reclaimed"]) == 4
    assert all(row["estimated_bytes"] > 0 for row in report["reclaimed"])
    assert file_digests(workspace) == digests
    text = cli("gc", "--workspace", workspace, "--dry-run", "--keep-executions", "1")
    assert "Would reclaim 4 execution(s)" in text.out and "nothing was changed" in text.out
    assert file_digests(workspace) == digests


def test_bad_policy_overrides_are_usage_errors(
    cli: CliRunner, captured: tuple[Path, dict[str, list[str]]]
) -> None:
    workspace, _ = captured
    assert cli("gc", "--workspace", workspace, "--keep-age", "30").code == 2
    assert cli("gc", "--workspace", workspace, "--keep-size", "lots").code == 2
    assert cli("gc", "--workspace", workspace, "--keep-executions", "0").code == 2


HOLD_RUN_OPEN = textwrap.dedent(
    """
    import sys
    from contexta import Contexta
    workspace, config = sys.argv[1], {"project_name": "gcp", "capture": {"segment_bytes": 65536}}
    with Contexta(workspace=workspace, config=config) as ctx, ctx.run("a") as run:
        with run.stage("train") as stage:
            for step in range(200):
                stage.metric("loss", float(step), step=step)
            ctx.flush()
            print(run.execution_id, flush=True)
            sys.stdin.readline()  # the parent runs gc meanwhile
            for step in range(200, 400):
                stage.metric("loss", float(step), step=step)
    """
)


def test_a_live_run_is_never_reclaimed(
    cli: CliRunner, captured: tuple[Path, dict[str, list[str]]], tmp_path: Path
) -> None:
    workspace, executions = captured
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_RUN_OPEN, str(workspace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        live = child.stdout.readline().strip()
        from gc_workspace import capture_one

        from contexta import Contexta

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the same name open in two processes is warned about
            with Contexta(workspace=workspace, config=CONFIG) as ctx:
                latest = capture_one(ctx, tmp_path, "a", 3)  # so the live one is not the latest
        report = _gc(cli, workspace, "--keep-executions", "1")

        kept = {row["execution_id"]: row["reason"] for row in report["kept"]}
        assert kept[live].startswith("live")
        assert latest in kept
        assert {row["execution_id"] for row in report["reclaimed"]} == set(
            executions["a"] + executions["b"][:2]
        )
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
    with Workspace(workspace) as reader:
        series = reader.get_metric_series(f"run:{PROJECT}.a@{live}", "loss")
    assert series.values == tuple(float(step) for step in range(400))


def test_outbox_batches_of_reclaimed_executions_are_removed_and_mixed_ones_kept(
    cli: CliRunner, captured: tuple[Path, dict[str, list[str]]]
) -> None:
    workspace, executions = captured
    lines = log_lines(workspace)["record.jsonl"]
    gone, kept = executions["b"][0], executions["b"][-1]
    outbox = workspace / "cache" / "outbox" / "store"
    outbox.mkdir(parents=True)
    header = orjson.dumps(
        {"sink": "store", "error": "test", "parked_at": "2026-01-01T00:00:00Z", "records": 2}
    )

    def park(name: str, executions_in_it: list[str]) -> Path:
        chosen = [next(line for line in lines if execution_of_line(line) == e) for e in executions_in_it]
        path = outbox / name
        path.write_bytes(b"\n".join([header, *map(orjson.dumps, chosen)]) + b"\n")
        return path

    only_gone = park("1-1-1.jsonl", [gone, gone])
    mixed = park("1-1-2.jsonl", [gone, kept])

    report = _gc(cli, workspace, "--keep-executions", "2")

    assert not only_gone.exists() and mixed.exists()
    assert report["outbox"] == {
        "batches_removed": 1,
        "batches_kept_holding_other_executions": 1,
        "batches_kept_being_delivered": 0,
    }


def test_text_report_says_what_was_reclaimed_and_kept(
    cli: CliRunner, captured: tuple[Path, dict[str, list[str]]]
) -> None:
    workspace, _ = captured
    result = cli("gc", "--workspace", workspace, "--keep-executions", "2")

    assert result.code == 0
    assert "Reclaimed 2 execution(s) (policy: executions=2)." in result.out
    assert "active segments are never touched" in result.out
    assert "Kept 4 execution(s):" in result.out
    assert "latest execution of its name" in result.out


def _original_order_kept(original: list[dict[str, Any]], now: list[dict[str, Any]], gone: set[str]) -> None:
    """`now` is `original` without some lines of `gone`: in order, nothing duplicated or added."""
    position = 0
    for line in now:
        while position < len(original) and original[position] != line:
            assert execution_of_line(original[position]) in gone  # only reclaimed lines are skipped
            position += 1
        assert position < len(original), "a line that was not there, or out of order, or twice"
        position += 1


def test_sigkill_during_gc_leaves_a_readable_log_and_a_consistent_store(
    tmp_path: Path, cli: CliRunner
) -> None:
    template, executions = capture_workspace(tmp_path / "template", attempts=4, points=3000)
    original = log_lines(template)
    gone = {e for name in "ab" for e in executions[name][:-1]}
    whole = {execution: store_rows(template, execution) for execution in gone}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "contexta", "gc", "--keep-executions", "1", "--workspace"]
    # How long a whole gc takes here (interpreter start included): kills land within it.
    shutil.copytree(template, tmp_path / "timed")
    started = time.monotonic()
    subprocess.run([*command, str(tmp_path / "timed")], env=env, check=True, stdout=subprocess.DEVNULL)
    duration = time.monotonic() - started
    moments = random.Random(16)
    interrupted = 0
    for round_number in range(6):
        workspace = tmp_path / f"round-{round_number}"
        shutil.copytree(template, workspace)
        child = subprocess.Popen([*command, str(workspace)], env=env, stdout=subprocess.DEVNULL)
        # One kill in each sixth of a whole gc's duration, so they spread over all of it.
        time.sleep(moments.uniform(duration * round_number / 6, duration * (round_number + 1) / 6))
        child.send_signal(signal.SIGKILL)
        child.wait()
        now = log_lines(workspace)  # every line readable: no torn or half-rewritten segment
        for family, lines in original.items():
            _original_order_kept(lines, now[family], gone)
        assert integrity(workspace) == "ok"
        for execution in gone:  # each execution whole or gone, never half
            rows = store_rows(workspace, execution)
            assert set(rows.values()) == {0} or rows == whole[execution], rows
        if executions_in_log(workspace, sealed_only=True) & gone:
            interrupted += 1
        # The next gc finishes the job, whatever the killed one had done.
        report = _gc(cli, workspace, "--keep-executions", "1")
        assert len(report["kept"]) == 2
        assert not executions_in_log(workspace, sealed_only=True) & gone
        for execution in gone:
            assert set(store_rows(workspace, execution).values()) == {0}
        assert integrity(workspace) == "ok"
    assert interrupted, "no kill landed before gc had rewritten the log: the test proved nothing"
