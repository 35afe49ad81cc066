"""Runs whose process was killed outright (SIGKILL): the next Contexta tells the truth about them.

Every test here runs real programs (`sys.executable -c <script>`) against a workspace under `tmp_path`,
kills them the way the OOM killer or a scheduler would, or keeps them alive on purpose, and then opens
the workspace from this process as the next user would. What is checked is what that user sees:
- a killed run, and every stage, batch, sample and operation it left open, is `failed` with
  `end_reason = "interrupted"`, ended at the last activity the store has (not when someone looked);
- a run whose process still lives is left `open`, whatever pid the store recorded for it, and closes
  `completed` when its program ends it;
- the owner locks (`<workspace>/cache/live/`) decide, in any pid namespace, and do not pile up;
- `repair` keeps the end times the log recorded and closes never-closed runs at their last activity.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.cli import main

PROJECT = "p"

# Put before every child program: a Contexta on WORKSPACE, and `die()`, which flushes everything
# captured so far into the store and then kills the process outright.
pytestmark = pytest.mark.sqlite_only("reads the SQLite file's rows directly, and repairs it")

_PREAMBLE = """
import os, signal, sys, time
from contexta import Contexta

ctx = Contexta(workspace=WORKSPACE, config={"project_name": "p"})

def wait_for_environment(run):
    deadline = time.monotonic() + 30
    while ctx.get_environment(run.ref) is None:
        assert time.monotonic() < deadline, "the environment snapshot never reached the store"
        time.sleep(0.01)

def die():
    ctx.flush()
    print("flushed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


# -- helpers -------------------------------------------------------------------------------------


def _script(workspace: Path, body: str, **constants: Any) -> str:
    header = "".join(
        f"{name} = {value!r}\n" for name, value in {"WORKSPACE": str(workspace), **constants}.items()
    )
    return header + _PREAMBLE + textwrap.dedent(body)


def _killed(workspace: Path, body: str, **constants: Any) -> None:
    """Run a program that captures and then SIGKILLs itself; fails unless it died by SIGKILL."""
    done = subprocess.run(
        [sys.executable, "-c", _script(workspace, body, **constants)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "flushed" in done.stdout


def _read_line(process: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    """The child's next stdout line (read unbuffered, byte by byte); fails if the child ends or
    stays silent too long."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the child printed no whole line within {timeout}s (got {line!r})"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            byte = os.read(fd, 1)
            assert byte, f"the child exited ({process.wait()}) before printing a line (got {line!r})"
            line += byte
    return line.decode().strip()


@contextlib.contextmanager
def _alive(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """A running child program (stdin and stdout piped, unbuffered); killed if the test leaves it
    running."""
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# A program that keeps its run open until it reads a line, then closes it normally and exits 0.
_WAITS_ON_STDIN = """
run = ctx.run(RUN)
stage = run.stage("train")
stage.metric("loss", 0.5, step=0)
ctx.flush()
print("ready", flush=True)
sys.stdin.readline()
stage.metric("loss", 0.25, step=1)
stage.close()
run.close()
ctx.close()
print("closed", flush=True)
"""


def _finish(process: subprocess.Popen[bytes]) -> None:
    """Let a `_WAITS_ON_STDIN` program close its run and end."""
    assert process.stdin is not None
    process.stdin.write(b"go\n")
    assert _read_line(process) == "closed"
    assert process.wait(60) == 0, process.stderr.read() if process.stderr else b""


def _open(workspace: Path) -> Contexta:
    return Contexta(workspace=workspace, config={"project_name": PROJECT})


def _lock_files(workspace: Path) -> list[str]:
    live = workspace / "cache" / "live"
    return sorted(path.name for path in live.iterdir()) if live.is_dir() else []


def _at(timestamp: str | None) -> datetime:
    assert timestamp is not None
    return datetime.fromisoformat(timestamp)


def _sql(workspace: Path, statement: str, *parameters: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(workspace / "metadata" / "contexta.db")) as connection:
        rows = connection.execute(statement, parameters).fetchall()
        connection.commit()
    return rows


def _endings(ctx: Contexta, run_id: str) -> dict[str, tuple[str, str | None, str | None]]:
    """Every scope of a run: kind and name -> (status, end_reason, ended_at)."""
    run = ctx.get_run_snapshot(run_id).run
    endings = {f"run {run.name}": (run.status, run.end_reason, run.ended_at)}
    for stage in ctx.list_stages(run_id):
        endings[f"stage {stage.name}"] = (stage.status, stage.end_reason, stage.ended_at)
    for batch in ctx.list_batches(run_id):
        endings[f"batch {batch.name}"] = (batch.status, batch.end_reason, batch.ended_at)
    for sample in ctx.list_samples(run_id):
        endings[f"sample {sample.name}"] = (sample.status, sample.end_reason, sample.ended_at)
    return endings


# -- a killed run is closed, at its last activity ------------------------------------------------


_FINE_TUNE = """
run = ctx.run("fine-tune", config_snapshot={"lr": 3e-4})
with run.stage("prepare") as prepare:
    prepare.metric("rows", 1000.0)
train = run.stage("train")
for step in range(3000):
    train.metric("loss", 1.0 / (step + 1), step=step)
    if step % 1000 == 999:
        ctx.flush()
epoch = train.batch("epoch-0")
case = epoch.sample("case-0")
tokenize = train.operation("tokenize")
wait_for_environment(run)
time.sleep(0.05)  # what comes next is the run's last activity, clearly after everything before
if LAST == "metrics":
    case.metrics({"score": 0.5, "tokens": 12.0}, step=1)
elif LAST == "event":
    epoch.event("checkpoint.saved", message="epoch-0 checkpoint written")
else:
    epoch.sample("case-1")
die()
"""


def _last_activity(ctx: Contexta, last: str) -> str:
    """The stored time of what the killed program did last."""
    if last == "metrics":
        return ctx.get_metric_series("fine-tune", "tokens").points[-1].observed_at
    if last == "event":
        (event,) = [
            record
            for record in ctx.get_run_snapshot("fine-tune").records
            if record.envelope.record_type == "event" and record.payload.event_key == "checkpoint.saved"
        ]
        return event.envelope.observed_at
    (sample,) = [sample for sample in ctx.list_samples("fine-tune") if sample.name == "case-1"]
    return sample.observed_at


@pytest.mark.parametrize("last", ["metrics", "event", "sample"])
def test_a_killed_run_and_all_it_left_open_end_interrupted_at_its_last_activity(
    tmp_path: Path, last: str
) -> None:
    # Breaks if: the run or any open stage/batch/sample/operation stays `open`; they are ended at the
    # moment the next Contexta looked (or at the run's start) instead of at the last stored activity;
    # a scope the program had already closed is overwritten; diagnose does not say `interrupted`.
    workspace = tmp_path / ".contexta"
    _killed(workspace, _FINE_TUNE, LAST=last)
    time.sleep(0.5)  # whoever looks next looks later: the end must not be "now"
    looked_at = datetime.now().astimezone()

    with _open(workspace) as ctx:
        ended = _last_activity(ctx, last)
        assert _at(ended) < looked_at
        (run,) = ctx.list_runs()
        assert (run.name, run.status, run.end_reason, run.failure) == (
            "fine-tune",
            "failed",
            "interrupted",
            None,
        )
        assert run.ended_at == ended
        assert run.config_snapshot == {"lr": 3e-4}

        endings = _endings(ctx, "fine-tune")
        prepare_status, _, prepare_end = endings.pop("stage prepare")  # closed before the kill: as it was
        assert prepare_status == "completed" and _at(prepare_end) < _at(ended)
        expected = {"run fine-tune", "stage train", "batch epoch-0", "sample case-0"}
        if last == "sample":
            expected.add("sample case-1")
        assert set(endings) == expected
        assert all(ending == ("failed", "interrupted", ended) for ending in endings.values()), endings
        # The last activity really is the last thing stored: nothing of the run is later.
        loss = ctx.get_metric_series("fine-tune", "loss")
        assert [point.step for point in loss.points] == list(range(3000))
        assert _at(loss.points[-1].observed_at) < _at(ended)

        (issue, *_) = ctx.diagnose_run("fine-tune").issues
        assert (issue.severity, issue.code, issue.subject_ref) == ("error", "interrupted", run.run_id)
        assert ended in issue.summary

    operations = _sql(workspace, "SELECT name, status, end_reason, ended_at FROM operations")
    assert operations == [("tokenize", "failed", "interrupted", ended)]


def test_an_async_run_killed_mid_sample_is_closed_like_a_sync_one(tmp_path: Path) -> None:
    # Breaks if: runs opened through the async facade (`ctx.arun`) hold no owner lock or are left out
    # of the marking, so an LLM service killed mid-request shows its evaluation running forever.
    workspace = tmp_path / ".contexta"
    _killed(
        workspace,
        """
        import asyncio

        async def serve():
            async with ctx.arun("llm-service") as run, run.stage("serve") as stage:
                async with stage.sample("request-1") as sample:
                    await sample.metric("latency_ms", 120.0)
                    await ctx.aflush()
                    print("flushed", flush=True)
                    os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(serve())
        """,
    )
    with _open(workspace) as ctx:
        endings = _endings(ctx, "llm-service")
        ended = ctx.get_metric_series("llm-service", "latency_ms").points[-1].observed_at
    assert endings == {
        "run llm-service": ("failed", "interrupted", ended),
        "stage serve": ("failed", "interrupted", ended),
        "sample request-1": ("failed", "interrupted", ended),
    }
    assert _lock_files(workspace) == []


def test_a_program_killed_before_its_run_reached_the_store_leaves_nothing_open(tmp_path: Path) -> None:
    # Breaks if: the owner lock taken before the run's first record was stored is never swept (the
    # next Contexta only looks at runs it can see), or a half-known run is left open.
    workspace = tmp_path / ".contexta"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _script(workspace, 'run = ctx.run("stillborn")\nos.kill(os.getpid(), signal.SIGKILL)\n'),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert len(_lock_files(workspace)) == 1
    with _open(workspace) as ctx:
        assert [run.status for run in ctx.list_runs()] in ([], ["failed"])
    assert _lock_files(workspace) == []


def test_diagnose_of_a_killed_run_never_blames_a_batch_or_sample_for_the_kill(tmp_path: Path) -> None:
    # Breaks if: diagnose reports the batch and sample the kill left open as having failed on their own
    # ("failed_batch ... rerun the batch", "failed_sample ... failed;") without saying they were only
    # interrupted. A failed stage of a killed run is already left to the `interrupted` issue; its
    # batches and samples are in the same position.
    workspace = tmp_path / ".contexta"
    _killed(
        workspace,
        """
        run = ctx.run("killed")
        stage = run.stage("train")
        batch = stage.batch("epoch-3")
        sample = batch.sample("case-17")
        sample.metric("score", 0.5)
        die()
        """,
    )
    with _open(workspace) as ctx:
        issues = ctx.diagnose_run("killed").issues
    assert issues[0].code == "interrupted"
    for issue in issues:
        if issue.subject_ref.startswith(("stage:", "batch:", "sample:")):
            assert "interrupt" in issue.summary, f"{issue.code}: {issue.summary}"


def test_a_run_killed_as_pid_1_of_its_own_pid_namespace_is_marked(tmp_path: Path) -> None:
    # Breaks if: liveness is judged by pid: the store records owner pid 1, and pid 1 (this machine's
    # init) is alive here, so a pid check would leave the run open forever. Only the owner lock,
    # released by the kernel when the process dies, tells.
    workspace = tmp_path / ".contexta"
    script = _script(
        workspace,
        """
        run = ctx.run("boxed")
        stage = run.stage("train")
        stage.metric("loss", 0.5, step=0)
        ctx.flush()
        print(os.getpid(), flush=True)
        sys.stdin.readline()
        """,
    )
    probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a pid namespace here: {probe.stderr.decode().strip()}")
    with _alive(["unshare", "--pid", "--fork", sys.executable, "-c", script]) as unshare:
        assert _read_line(unshare) == "1"  # the capturing program is pid 1 in its namespace
        (child,) = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children").read_text().split()
        os.kill(int(child), signal.SIGKILL)  # from outside: pid 1 ignores SIGKILL from inside
        unshare.wait(30)
    assert _sql(workspace, "SELECT owner_pid, status FROM runs") == [(1, "open")]

    with _open(workspace) as ctx:
        (run,) = ctx.list_runs()
        assert (run.status, run.end_reason) == ("failed", "interrupted")
        (stage,) = ctx.list_stages("boxed")
        assert (stage.status, stage.end_reason, stage.ended_at) == ("failed", "interrupted", run.ended_at)
        assert "interrupted" in [issue.code for issue in ctx.diagnose_run("boxed").issues]
    assert _lock_files(workspace) == []


# -- a live run is left alone --------------------------------------------------------------------


def test_a_run_whose_process_lives_is_left_open_whatever_pid_the_store_says(tmp_path: Path) -> None:
    # Breaks if: another process's Contexta closes a run that is still being captured (by a stale pid
    # check, or by taking the lock of a live owner); or the run, once its program closes it, does not
    # read `completed` with no end_reason; or its lock file stays behind.
    workspace = tmp_path / ".contexta"
    with _alive([sys.executable, "-c", _script(workspace, _WAITS_ON_STDIN, RUN="serving")]) as child:
        assert _read_line(child) == "ready"
        with _open(workspace) as ctx:
            (run,) = ctx.list_runs()
            assert (run.status, run.end_reason, run.ended_at) == ("open", None, None)
            assert "interrupted" not in [issue.code for issue in ctx.diagnose_run("serving").issues]
        assert len(_lock_files(workspace)) == 1

        # The pid the store recorded now names no process (as a pid from another namespace would):
        # the lock still says the owner lives.
        gone = subprocess.Popen(["true"])
        gone.wait()
        _sql(workspace, "UPDATE runs SET owner_pid = ?", gone.pid)
        with _open(workspace) as ctx:
            assert [(run.status, run.end_reason) for run in ctx.list_runs()] == [("open", None)]
            assert [(stage.name, stage.status) for stage in ctx.list_stages("serving")] == [("train", "open")]

        _finish(child)

    with _open(workspace) as ctx:
        (run,) = ctx.list_runs()
        assert (run.status, run.end_reason, run.failure) == ("completed", None, None)
        assert ctx.get_metric_series("serving", "loss").values == (0.5, 0.25)
    assert _lock_files(workspace) == []


@pytest.mark.parametrize("spelled", ["the same path", "a symlink"])
def test_a_second_contexta_in_the_same_process_leaves_its_own_open_run_alone(
    tmp_path: Path, spelled: str
) -> None:
    # Breaks if: a Contexta opened again in the process that captures (a notebook re-running its setup
    # cell, maybe by another path to the workspace) takes its own process's run for a dead one and
    # closes it interrupted (a process testing its own lock must not drop it either).
    workspace = tmp_path / ".contexta"
    again = workspace
    if spelled == "a symlink":
        again = tmp_path / "linked"
        again.symlink_to(workspace)
    with _open(workspace) as first:
        run = first.run("notebook")
        run.metric("loss", 0.5)
        first.flush()
        with _open(again) as second:
            assert [(r.status, r.end_reason) for r in second.list_runs()] == [("open", None)]
        run.metric("loss", 0.25)
        run.close()
    with _open(workspace) as ctx:
        assert [(r.status, r.end_reason) for r in ctx.list_runs()] == [("completed", None)]
        assert ctx.get_metric_series("notebook", "loss").values == (0.5, 0.25)


@pytest.mark.parametrize("reused_by", ["this test's process", "another live process"])
def test_a_killed_run_whose_pid_now_belongs_to_a_live_process_is_marked(
    tmp_path: Path, reused_by: str
) -> None:
    # Breaks if: the pid, now reused by a process that has nothing to do with the run, keeps the run
    # open: the dead owner's lock file, which nobody holds, must decide.
    workspace = tmp_path / ".contexta"
    _killed(
        workspace,
        """
        run = ctx.run("reused")
        run.stage("train").metric("loss", 0.5)
        die()
        """,
    )
    with _alive(["sleep", "60"]) as stranger:
        pid = os.getpid() if reused_by == "this test's process" else stranger.pid
        _sql(workspace, "UPDATE runs SET owner_pid = ?", pid)
        with _open(workspace) as ctx:
            (run,) = ctx.list_runs()
            assert (run.status, run.end_reason) == ("failed", "interrupted")
            assert [(s.status, s.end_reason) for s in ctx.list_stages("reused")] == [
                ("failed", "interrupted")
            ]


def test_of_two_processes_capturing_one_name_only_the_killed_ones_execution_is_marked(tmp_path: Path) -> None:
    # Breaks if: marking works by run name (closing the live execution too), or not at all; or the
    # live execution does not end `completed` once its program closes it.
    workspace = tmp_path / ".contexta"
    with _alive([sys.executable, "-c", _script(workspace, _WAITS_ON_STDIN, RUN="sweep")]) as survivor:
        assert _read_line(survivor) == "ready"
        _killed(
            workspace,
            """
            run = ctx.run("sweep")
            run.stage("train").metric("loss", 9.0, step=0)
            die()
            """,
        )
        with _open(workspace) as ctx:
            executions = ctx.list_runs(all_executions=True)
            assert [(run.execution_number, run.status, run.end_reason) for run in executions] == [
                (1, "open", None),
                (2, "failed", "interrupted"),
            ]
        _finish(survivor)

    with _open(workspace) as ctx:
        executions = ctx.list_runs(all_executions=True)
        assert [(run.status, run.end_reason) for run in executions] == [
            ("completed", None),
            ("failed", "interrupted"),
        ]
        assert ctx.get_metric_series("sweep@1", "loss").values == (0.5, 0.25)
        assert ctx.get_metric_series("sweep@2", "loss").values == (9.0,)
    assert _lock_files(workspace) == []


# How the parent forks its long-lived child: Python's `os.fork()` (at-fork handlers run), or libc's
# `fork` as native code calls it (no at-fork handler, the GIL kept across).
_FORKS = {
    "os.fork": "os.fork()",
    "native": "__import__('ctypes').PyDLL(None).fork()",
}


@pytest.mark.parametrize("fork", list(_FORKS))
def test_a_forked_child_outliving_its_killed_parent_does_not_keep_the_run_open(
    tmp_path: Path, fork: str
) -> None:
    # Breaks if: a forked child (a DataLoader worker, a helper) keeps the parent's owner lock: the
    # parent is dead, but the run would look alive for as long as the child lives. A lock of the open
    # file (flock) rides along into the child until the child lets go of it: a natively forked child
    # runs no at-fork handler and keeps it for its whole life, and an `os.fork()` child for as long as
    # it takes to be scheduled, which is when the next Contexta may be looking.
    workspace = tmp_path / ".contexta"
    script = _script(
        workspace,
        f"""
        run = ctx.run("forked")
        run.stage("train").metric("loss", 0.5)
        ctx.flush()
        child = {_FORKS[fork]}
        if child == 0:
            time.sleep(60)
            os._exit(0)
        print(child, flush=True)
        die()
        """,
    )
    with _alive([sys.executable, "-c", script]) as parent:
        orphan = int(_read_line(parent))
        try:
            assert _read_line(parent) == "flushed"
            assert parent.wait(30) == -signal.SIGKILL
            os.kill(orphan, 0)  # still alive
            with _open(workspace) as ctx:
                (run,) = ctx.list_runs()
                assert (run.status, run.end_reason) == ("failed", "interrupted")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(orphan, signal.SIGKILL)


# -- owner locks do not pile up ------------------------------------------------------------------


def test_lock_files_of_closed_exited_and_killed_runs_do_not_pile_up(tmp_path: Path) -> None:
    # Breaks if: a lock file outlives its run: after a normal close (in this process), after a program
    # exited with its run open, or after kills once the next Contexta has looked.
    workspace = tmp_path / ".contexta"
    with _open(workspace) as ctx:
        for attempt in range(3):
            with ctx.run("closed", tags={"attempt": attempt}) as run:
                run.metric("loss", 0.5)
                assert len(_lock_files(workspace)) == 1
            assert _lock_files(workspace) == []
        explicit = ctx.run("closed-explicitly")
        explicit.close("failed")
        assert _lock_files(workspace) == []

    exited = subprocess.run(
        [sys.executable, "-c", _script(workspace, 'ctx.run("left-open").metric("loss", 0.5)\n')],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert exited.returncode == 0, exited.stderr
    assert len(_lock_files(workspace)) == 1  # its process ended while delivering: the next open sweeps it
    for number in range(3):
        _killed(workspace, f'ctx.run("killed-{number}").metric("loss", 0.5)\ndie()\n')
        # Each program's own Contexta swept what the one before left; its own file stays behind.
        assert len(_lock_files(workspace)) == 1

    with _open(workspace) as ctx:
        endings = {run.name: (run.status, run.end_reason) for run in ctx.list_runs()}
        assert _lock_files(workspace) == []
    assert endings == {
        "closed": ("completed", None),
        "closed-explicitly": ("failed", None),
        "left-open": ("completed", "interpreter_exit"),
        **{f"killed-{number}": ("failed", "interrupted") for number in range(3)},
    }


def test_a_read_only_live_directory_still_lets_programs_capture(tmp_path: Path) -> None:
    # Breaks if: a workspace whose cache/live cannot be written (a read-only mount) crashes Contexta at
    # open or at run start, loses records, or leaves a run its owner ended open; and if, without owner
    # locks, a killed run is never marked (the pid still tells on this host) or a live one is.
    workspace = tmp_path / ".contexta"
    live = workspace / "cache" / "live"
    _killed(workspace, 'ctx.run("killed-before").metric("loss", 0.5)\ndie()\n')  # leaves a lock file
    assert len(_lock_files(workspace)) == 1

    def read_only(script: str) -> list[str]:
        return [
            "unshare",
            "--mount",
            "sh",
            "-c",
            f'mount --bind -o ro "{live}" "{live}" && exec "$0" -c "$1"',
            sys.executable,
            script,
        ]

    probe = subprocess.run(read_only("print('ok')"), capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount cache/live read-only here: {probe.stderr.strip()}")

    captured = subprocess.run(
        read_only(
            _script(
                workspace,
                """
                try:
                    open(os.path.join(WORKSPACE, "cache", "live", "probe"), "w")
                except OSError as error:
                    print("not writable:", error.strerror, flush=True)
                with ctx.run("read-only-live") as run, run.stage("train") as stage:
                    for step in range(100):
                        stage.metric("loss", 1.0 / (step + 1), step=step)
                    with stage.sample("case-0") as sample:
                        sample.event("judged", message="ok")
                ctx.close()
                """,
            )
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert captured.returncode == 0, captured.stderr
    assert "not writable: Read-only file system" in captured.stdout
    assert "Traceback" not in captured.stderr

    # Killed while locks are unavailable: the pid of a dead process on this host tells.
    killed = subprocess.run(
        read_only(_script(workspace, 'ctx.run("killed-unlocked").stage("s").metric("x", 1.0)\ndie()\n')),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    # Alive while locks are unavailable: its pid lives, so it stays open.
    with _alive(read_only(_script(workspace, _WAITS_ON_STDIN, RUN="alive-unlocked"))) as child:
        assert _read_line(child) == "ready"
        with _open(workspace) as ctx:
            endings = {run.name: (run.status, run.end_reason) for run in ctx.list_runs()}
            assert ctx.get_metric_series("read-only-live", "loss").values == tuple(
                1.0 / (step + 1) for step in range(100)
            )
            assert [(s.name, s.status) for s in ctx.list_samples("read-only-live")] == [
                ("case-0", "completed")
            ]
        assert endings == {
            "killed-before": ("failed", "interrupted"),
            "read-only-live": ("completed", None),
            "killed-unlocked": ("failed", "interrupted"),
            "alive-unlocked": ("open", None),
        }
        _finish(child)
    with _open(workspace) as ctx:
        assert {run.name: run.status for run in ctx.list_runs()}["alive-unlocked"] == "completed"
    assert _lock_files(workspace) == []


# -- repair --------------------------------------------------------------------------------------


def _every_ending(ctx: Contexta) -> dict[str, tuple[str, str | None, str | None]]:
    endings: dict[str, tuple[str, str | None, str | None]] = {}
    for run in ctx.list_runs():
        endings.update(
            {f"{run.name}: {scope}": ending for scope, ending in _endings(ctx, run.run_id).items()}
        )
    return endings


def _repair(workspace: Path, how: str) -> tuple[str, ...]:
    """Rebuild the store from the capture log with `ctx.repair()` or `contexta repair`; the runs it
    closed as interrupted."""
    if how == "ctx.repair()":
        with _open(workspace) as ctx:
            return ctx.repair().interrupted_runs
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["repair", "--workspace", str(workspace)]) == 0
    return ()


@pytest.mark.parametrize("how", ["ctx.repair()", "contexta repair"])
def test_repair_keeps_recorded_end_times_and_ends_killed_runs_at_their_last_logged_activity(
    tmp_path: Path, how: str
) -> None:
    # Breaks if: repair re-stamps runs, stages or samples the log closed (with the repair's time, or
    # another of their times), or closes the never-closed run when the repair runs instead of at its
    # last logged activity; or loses why a scope ended (exception, cancelled).
    workspace = tmp_path / ".contexta"
    with _open(workspace) as ctx:
        with ctx.run("baseline") as run, run.stage("evaluate") as stage:
            stage.metric("accuracy", 0.9)
            with stage.sample("case-0") as sample:
                sample.metric("score", 1.0)
            stage.sample("case-1").close("cancelled")
        with pytest.raises(ValueError), ctx.run("broken") as run, run.stage("train") as stage:
            stage.metric("loss", 2.0)
            raise ValueError("bad lr")
    _killed(
        workspace,
        """
        run = ctx.run("cut-short")
        train = run.stage("train")
        with train.batch("epoch-0") as batch:
            batch.metric("loss", 0.75)
        sample = train.batch("epoch-1").sample("case-9")
        wait_for_environment(run)
        time.sleep(0.05)
        sample.metric("score", 0.25)
        die()
        """,
    )
    with _open(workspace) as ctx:  # marks cut-short interrupted, at its last activity
        before = _every_ending(ctx)
        last_score_at = ctx.get_metric_series("cut-short", "score").points[-1].observed_at
    assert before["cut-short: run cut-short"] == ("failed", "interrupted", last_score_at)
    assert before["broken: run broken"][:2] == ("failed", "exception")
    assert before["baseline: sample case-1"][0] == "cancelled"

    time.sleep(0.5)
    repaired_at = datetime.now().astimezone()
    interrupted = _repair(workspace, how)
    if how == "ctx.repair()":
        assert interrupted == (f"run:{PROJECT}.cut-short",)

    with _open(workspace) as ctx:
        after = _every_ending(ctx)
        assert ctx.list_runs(status="failed")  # the store reads on after the rebuild
    assert after == before
    assert _at(after["cut-short: run cut-short"][2]) < repaired_at


@pytest.mark.parametrize("how", ["ctx.repair()", "contexta repair"])
def test_repair_leaves_the_run_of_a_live_process_open(tmp_path: Path, how: str) -> None:
    # Breaks if: repair closes, as interrupted, a run whose owner still holds its lock (the
    # documented rule of _close_runs_left_open); `contexta repair` must follow the same rule as
    # `ctx.repair()`.
    workspace = tmp_path / ".contexta"
    with _alive([sys.executable, "-c", _script(workspace, _WAITS_ON_STDIN, RUN="serving")]) as child:
        assert _read_line(child) == "ready"
        interrupted = _repair(workspace, how)
        assert interrupted == ()
        with _open(workspace) as ctx:
            assert [(run.status, run.end_reason) for run in ctx.list_runs()] == [("open", None)]


# -- what else a killed process leaves open ------------------------------------------------------


def test_a_deployment_left_open_by_a_killed_process_is_closed_too(tmp_path: Path) -> None:
    # Breaks if: a deployment the killed program had open stays `open` forever (SPEC §2: "a process
    # killed outright -> its run and open scopes are marked failed / interrupted by the next process").
    workspace = tmp_path / ".contexta"
    _killed(
        workspace,
        """
        with ctx.run("train") as run:
            run.metric("accuracy", 0.9)
        deployment = ctx.deployment("canary", run_ref=run.ref)
        deployment.event("rollout", message="10% of traffic")
        die()
        """,
    )
    with _open(workspace) as ctx:
        (deployment,) = ctx.list_deployments()
        assert deployment.status == "failed"
        assert deployment.ended_at is not None
