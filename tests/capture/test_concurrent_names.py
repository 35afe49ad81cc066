"""One run name opened twice at once (SPEC §2 "Executions"): two jobs launched with the same name, or
two threads of one job, get two executions and never one merged series; the one that opens second
is warned, told which process (and host) has the other.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.capture import CaptureWarning
from contexta.contract._timestamps import parse_timestamp

STEPS = 2_000

# A job that opens `same` once every job is ready, holds it open until every job has opened it (so
# the two executions really overlap), then logs STEPS steps whose values say which job logged them.
JOB = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from contexta import Contexta

    workspace, signals = sys.argv[1], Path(sys.argv[2])
    job, jobs, steps = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

    def wait_for(names):
        deadline = time.monotonic() + 60
        while not all((signals / name).exists() for name in names):
            if time.monotonic() > deadline:
                sys.exit(f"job {job}: gave up waiting for {names}")
            time.sleep(0.002)

    ctx = Contexta(workspace=workspace, config={"project_name": "collide"})
    (signals / f"ready-{job}").touch()
    wait_for(["go"])
    with ctx.run("same", tags={"job": str(job)}) as run, run.stage("train") as stage:
        ctx.flush()  # this execution is in the store before the others look for theirs
        (signals / f"opened-{job}").touch()
        wait_for([f"opened-{other}" for other in range(jobs)])
        for step in range(steps):
            stage.metric("loss", job * 100_000.0 + step, step=step)
    ctx.close()
    print(json.dumps({"pid": os.getpid(), "execution_id": run.execution_id, "started_at": run.started_at}))
    """
)


def _start_jobs_together(workspace: Path, signals: Path, jobs: int) -> list[tuple[dict[str, object], str]]:
    """Start `jobs` processes, release them at once; (what each printed, its stderr) by job."""
    signals.mkdir()
    Contexta(workspace=workspace, config={"project_name": "collide"}).close()  # the store exists
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", JOB, str(workspace), str(signals), str(job), str(jobs), str(STEPS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job in range(jobs)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all((signals / f"ready-{job}").exists() for job in range(jobs)):
            assert time.monotonic() < deadline, "the jobs never got ready"
            time.sleep(0.01)
        (signals / "go").touch()
        outputs = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    results = []
    for process, (out, errors) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, errors
        assert "Traceback" not in errors and "locked" not in errors.lower(), errors
        results.append((json.loads(out), errors))
    return results


@pytest.mark.parametrize("jobs", [2, 3])
def test_jobs_started_together_under_one_name_get_one_unmixed_execution_each(
    tmp_path: Path, jobs: int
) -> None:
    # Breaks if the second job joined the first's execution (one series of 2 x 2,000 points, steps
    # repeated), if points of one job leaked into another's series, or if nobody was warned.
    workspace = tmp_path / ".contexta"
    results = _start_jobs_together(workspace, tmp_path / "signals", jobs)
    pids = [int(printed["pid"]) for printed, _ in results]  # type: ignore[call-overload]
    execution_ids = [str(printed["execution_id"]) for printed, _ in results]
    assert len(set(execution_ids)) == jobs

    with Contexta(workspace=workspace, config={"project_name": "collide"}) as ctx:
        every = ctx.list_runs(all_executions=True)
        assert sorted(run.execution_id or "" for run in every) == sorted(execution_ids)
        assert [run.tags for run in ctx.list_runs()] == [every[-1].tags]  # one run, its latest execution
        # Numbered by start: @1 started first.
        assert [run.started_at for run in every] == sorted(
            (str(printed["started_at"]) for printed, _ in results), key=parse_timestamp
        )
        for job, execution_id in enumerate(execution_ids):
            series = ctx.get_metric_series(f"same@{execution_id}", "loss")
            assert series.steps == tuple(range(STEPS)), f"job {job}: steps of another job in its series"
            assert series.values == tuple(job * 100_000.0 + step for step in range(STEPS)), f"job {job}"
            assert ctx.get_run_snapshot(f"same@{execution_id}").run.tags == {"job": str(job)}

    # Every job but the one whose execution was stored first is warned, and told which process (on
    # which host) captures the same name; nobody is told about itself.
    warned = {job: errors for job, (_, errors) in enumerate(results) if "CaptureWarning" in errors}
    assert len(warned) == jobs - 1, f"warned jobs: {sorted(warned)} of {jobs}"
    (first,) = set(range(jobs)) - set(warned)
    host = socket.gethostname()
    for job, errors in warned.items():
        named = {pid for pid in pids if f"process {pid} on host {host}" in errors}
        assert pids[first] in named and pids[job] not in named, errors


def test_two_threads_opening_one_name_at_once_get_two_executions_and_a_warning(tmp_path: Path) -> None:
    # Breaks if the threads shared one execution (their points would interleave in one series) or
    # if the second opening went unannounced.
    start, opened = threading.Barrier(2), threading.Barrier(2)
    runs = {}

    def job(number: int) -> None:
        start.wait()
        run = ctx.run("same", tags={"thread": str(number)})
        opened.wait()  # both are open before either logs
        with run, run.stage("train") as stage:
            for step in range(STEPS):
                stage.metric("loss", number * 100_000.0 + step, step=step)
        runs[number] = run

    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "collide"}) as ctx:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            threads = [threading.Thread(target=job, args=(number,)) for number in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        assert sorted(runs) == [0, 1]
        messages = [str(w.message) for w in caught if issubclass(w.category, CaptureWarning)]
        assert len(messages) == 1, messages
        assert f"pid {os.getpid()} on {socket.gethostname()}" in messages[0]

        assert runs[0].execution_id != runs[1].execution_id
        assert len(ctx.list_runs(all_executions=True)) == 2
        assert len(ctx.list_runs()) == 1
        for number, run in runs.items():
            series = ctx.get_metric_series(f"same@{run.execution_id}", "loss")
            assert series.steps == tuple(range(STEPS))
            assert series.values == tuple(number * 100_000.0 + step for step in range(STEPS))
