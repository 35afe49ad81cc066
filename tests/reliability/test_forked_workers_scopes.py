"""Scopes a forked worker (a DataLoader worker: multiprocessing's fork context, or a bare os.fork)
opens inside its parent's run.

- A worker that opens a sample in its parent's stage and exits normally without closing it ends that
  sample when it exits (completed or cancelled, with the reason), instead of leaving it open.
- A worker SIGKILLed with a sample open while its parent completes the run: the next Contexta closes
  that sample failed / interrupted (nobody else ever will); the parent's run stays completed.
- A forked child opening its parent's run name records an execution of its own without warning that
  the run is "already open in this process" (it is open in the parent, not in the child).

Each case runs in a process of its own (the parent forks; the test process only reads the store).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta

_PARENT = textwrap.dedent(
    """
    import json, multiprocessing, os, signal, sys, warnings
    from contexta import Contexta

    workspace, method, case, report = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    ctx = Contexta(workspace=workspace, config={"project_name": "loader"})

    def left_open(stage):
        sample = stage.sample("from-worker")
        sample.metric("x", 1.0)  # never closed: the worker just returns

    def killed(stage):
        sample = stage.sample("from-worker")
        sample.metric("x", 1.0)
        ctx.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def same_name(stage):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with ctx.run("parent") as run:
                run.metric("x", 2.0)
        with open(report, "w") as out:
            json.dump([str(warning.message) for warning in caught], out)

    work = {"left-open": left_open, "killed": killed, "same-name": same_name}[case]
    # No `with` blocks: a child leaving through sys.exit must not unwind its parent's scopes.
    run = ctx.run("parent")
    stage = run.stage("load")
    if method == "os.fork":
        pid = os.fork()
        if pid == 0:
            work(stage)
            sys.exit(0)  # a normal interpreter exit: exit hooks run
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    else:
        worker = multiprocessing.get_context("fork").Process(target=work, args=(stage,))
        worker.start()
        worker.join()
        code = worker.exitcode
    ctx.flush()
    seen = [[s.name, s.status, s.end_reason] for s in ctx.list_samples("parent")]
    stage.close()
    run.close()
    ctx.close()
    print(json.dumps({"code": code, "seen_after_child": seen}))
    """
)

METHODS = ["os.fork", "multiprocessing"]


def _run_parent(tmp_path: Path, method: str, case: str) -> tuple[Path, dict[str, Any], Path]:
    workspace = tmp_path / ".contexta"
    report = tmp_path / "child.json"
    done = subprocess.run(
        [sys.executable, "-c", _PARENT, str(workspace), method, case, str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return workspace, json.loads(done.stdout.splitlines()[-1]), report


def _samples(workspace: Path) -> list[tuple[str, str | None, str | None]]:
    with Contexta(workspace=workspace, config={"project_name": "loader"}) as ctx:
        return [(s.name, s.status, s.end_reason) for s in ctx.list_samples("parent")]


def _runs(workspace: Path) -> list[tuple[str, str, str | None]]:
    with Contexta(workspace=workspace, config={"project_name": "loader"}) as ctx:
        return [(r.run_id, r.status, r.end_reason) for r in ctx.list_runs(all_executions=True)]


@pytest.mark.parametrize("method", METHODS)
def test_a_sample_a_worker_left_open_ends_when_the_worker_exits(tmp_path: Path, method: str) -> None:
    # Breaks if a forked child ended only the runs it opened at its exit: the sample it opened in
    # its parent's stage stayed `open` for good, in a run long completed.
    workspace, parent, _ = _run_parent(tmp_path, method, "left-open")
    assert parent["code"] == 0
    ((name, status, reason),) = parent["seen_after_child"]  # read by the parent once the child exited
    assert name == "from-worker"
    assert status in ("completed", "cancelled") and reason is not None
    ((name, status, reason),) = _samples(workspace)
    assert status in ("completed", "cancelled") and reason is not None
    assert _runs(workspace) == [("run:loader.parent", "completed", None)]


@pytest.mark.parametrize("method", METHODS)
def test_a_killed_workers_sample_is_closed_interrupted_by_the_next_contexta(
    tmp_path: Path, method: str
) -> None:
    # Breaks if nothing closed scopes left open in a run that had ended: the killed worker's sample
    # stayed `open` forever (the parent completed its run, so no recovery of open runs saw it).
    workspace, parent, _ = _run_parent(tmp_path, method, "killed")
    assert parent["code"] == -9
    assert parent["seen_after_child"] == [["from-worker", "open", None]]
    assert _samples(workspace) == [("from-worker", "failed", "interrupted")]
    assert _runs(workspace) == [("run:loader.parent", "completed", None)]


_SAME_PROCESS = textwrap.dedent(
    """
    import json, os, signal, sys
    from contexta import Contexta

    workspace = sys.argv[1]
    ctx = Contexta(workspace=workspace, config={"project_name": "loader"})
    run = ctx.run("parent")
    stage = run.stage("load")
    pid = os.fork()
    if pid == 0:
        sample = stage.sample("from-worker")
        sample.metric("x", 1.0)
        ctx.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    stage.close()
    run.close()
    ctx.close()
    with Contexta(workspace=workspace, config={"project_name": "loader"}) as again:
        print(json.dumps([[s.name, s.status, s.end_reason] for s in again.list_samples("parent")]))
    """
)


def test_a_killed_workers_sample_is_closed_by_the_next_contexta_of_the_same_process(tmp_path: Path) -> None:
    # A notebook: the training cell's Contexta is closed, and a later cell opens a new one in the
    # same kernel to look at the run. Nobody can close the killed worker's sample any more (the run
    # completed, its Contexta closed); it must not stay `open` until some other process opens the
    # workspace.
    workspace = tmp_path / ".contexta"
    done = subprocess.run(
        [sys.executable, "-c", _SAME_PROCESS, str(workspace)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [["from-worker", "failed", "interrupted"]]


@pytest.mark.parametrize("method", METHODS)
def test_a_child_opening_its_parents_run_name_does_not_warn_it_is_open_in_this_process(
    tmp_path: Path, method: str
) -> None:
    # Breaks if the child counted the runs it inherited (its parent's) as open in this process: it
    # warned "run:loader.parent is already open in this process" for a run it never opened.
    workspace, parent, report = _run_parent(tmp_path, method, "same-name")
    assert parent["code"] == 0
    warned = json.loads(report.read_text())
    assert not [message for message in warned if "in this process" in message], warned
    runs = _runs(workspace)  # two executions of one name: the parent's and the child's
    assert [status for _, status, _ in runs] == ["completed", "completed"]
    assert len({run_id for run_id, _, _ in runs}) == 2
