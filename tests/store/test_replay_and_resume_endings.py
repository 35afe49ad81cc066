"""How an execution ends when its documents reach the store out of order or from two processes.

- The store refuses the batch holding execution 2's opening (and its events); they are parked and
  replayed after the execution closed: its events stay under execution 2, execution 1 stays
  completed (never reopened), and a later Contexta marks nothing interrupted.
- Process B resumes process A's live execution and closes: the run stays open while A captures; A
  killed, the next Contexta marks it failed / interrupted; A closing normally completes it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from refusing_store import StoreSwitch

from contexta import Contexta
from contexta.capture import CaptureWarning

CONFIG = {"project_name": "p"}

LIST_RUNS = textwrap.dedent(
    """
    import json, sys
    from contexta import Contexta
    with Contexta(workspace=sys.argv[1], config={"project_name": "p"}) as ctx:
        print(json.dumps([[r.run_id, r.status, r.end_reason] for r in ctx.list_runs(all_executions=True)]))
    """
)


def _runs_seen_by_another_process(workspace: Path) -> list[list[str | None]]:
    done = subprocess.run(
        [sys.executable, "-c", LIST_RUNS, str(workspace)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _messages(ctx: Contexta, run_id: str) -> list[str]:
    return [
        record.payload.message
        for record in ctx.get_run_snapshot(run_id).records
        if record.envelope.record_type == "event"
    ]


@pytest.mark.parametrize("refused", ["opening", "opening and events"])
def test_a_replayed_opening_of_execution_two_neither_moves_its_events_nor_reopens_anything(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, refused: str, refusing_store: StoreSwitch
) -> None:
    # Breaks if records naming an execution the store did not hold yet went to the run's latest
    # (execution 1 showed `exec2`), or if the replayed opening reopened the execution it names after
    # its close had been stored (it stayed `open` for good, and a later Contexta called it dead).
    with Contexta(workspace=workspace, config=CONFIG) as ctx:
        with ctx.run("r") as first:
            first.event("e", message="exec1")
            first.metric("m", 1.0)
        refusing_store.refusing = True
        second = ctx.run("r")
        if refused == "opening":
            with pytest.warns(CaptureWarning, match="canonical-store"):
                assert not ctx.flush().ok
            refusing_store.refusing = False
        second.event("e", message="exec2")
        second.metric("m", 2.0)
        if refused == "opening and events":
            with pytest.warns(CaptureWarning, match="canonical-store"):
                assert not ctx.flush().ok
            refusing_store.refusing = False
        second.close()

        ctx.replay_outbox()

        runs = {r.execution_id: r for r in ctx.list_runs(all_executions=True)}
        assert [(runs[e].run_id, runs[e].status) for e in (first.execution_id, second.execution_id)] == [
            ("run:p.r@1", "completed"),
            ("run:p.r", "completed"),
        ]
        assert runs[second.execution_id].ended_at == second.ended_at
        assert _messages(ctx, "r@1") == ["exec1"]
        assert _messages(ctx, "r") == ["exec2"]
        assert ctx.get_metric_series("r@1", "m").values == (1.0,)
        assert ctx.get_metric_series("r", "m").values == (2.0,)

    assert _runs_seen_by_another_process(workspace) == [
        ["run:p.r@1", "completed", None],
        ["run:p.r", "completed", None],
    ]


PROCESS_A = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from contexta import Contexta

    workspace, stop = sys.argv[1], Path(sys.argv[2])
    ctx = Contexta(workspace=workspace, config={"project_name": "p"})
    run = ctx.run("train")
    ctx.flush()
    print(run.execution_id, flush=True)
    step = 0
    while not stop.exists():
        run.metric("loss", 1.0, step=step)
        step += 1
        time.sleep(0.002)
    run.close()
    ctx.close()
    print("closed", flush=True)
    """
)


def _start_a(workspace: Path, stop: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", PROCESS_A, str(workspace), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    execution_id = process.stdout.readline().strip()
    if not execution_id:
        process.kill()
        raise AssertionError(process.communicate()[1])
    return process, execution_id


def _statuses(workspace: Path) -> list[tuple[str, str, str | None]]:
    with Contexta(workspace=workspace, config=CONFIG) as ctx:
        return [(r.run_id, r.status, r.end_reason) for r in ctx.list_runs(all_executions=True)]


def _resume_from_b_and_close(workspace: Path, execution_id: str) -> None:
    with Contexta(workspace=workspace, config=CONFIG) as b:
        with b.run("train", resume=True) as run:
            run.metric("eval", 0.9)
        assert run.execution_id == execution_id
        assert [(r.run_id, r.status) for r in b.list_runs(all_executions=True)] == [("run:p.train", "open")]


@pytest.mark.parametrize("a_ends", ["killed", "closes"])
def test_a_resume_closing_in_one_process_leaves_the_run_open_while_another_still_captures(
    workspace: Path, tmp_path: Path, a_ends: str
) -> None:
    # An eval job (B) appends to the training run (A) still in progress, then ends. Breaks if B's
    # close completed the execution under A (A's later points landed in a completed run, and A
    # killed afterwards was never noticed: it stayed `completed`).
    stop = tmp_path / "stop"
    a, execution_id = _start_a(workspace, stop)
    try:
        _resume_from_b_and_close(workspace, execution_id)
        time.sleep(0.2)  # A keeps capturing after B left
        assert _statuses(workspace) == [("run:p.train", "open", None)]
        if a_ends == "killed":
            a.send_signal(signal.SIGKILL)
            a.wait(timeout=60)
            assert _statuses(workspace) == [("run:p.train", "failed", "interrupted")]
        else:
            stop.touch()
            out, errors = a.communicate(timeout=120)
            assert a.returncode == 0, errors
            assert out.strip() == "closed"
            assert _statuses(workspace) == [("run:p.train", "completed", None)]
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    with Contexta(workspace=workspace, config=CONFIG) as ctx:
        assert ctx.get_metric_series("train", "eval").values == (0.9,)
        assert len(ctx.get_metric_series("train", "loss").values) > 0
