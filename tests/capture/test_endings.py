"""How scopes end (SPEC §2 "Endings"): what each ending records, in this process and in real ones.

A scope that does not end normally says why in its close document (`end_reason`, and `failure` when
an exception ended it). The process tests run a small program against a workspace under `tmp_path`
(`sys.executable -c <script>`), end it the way a user or a scheduler would (an uncaught exception,
`sys.exit(3)`, SIGTERM, SIGHUP, Ctrl-C) and read the capture log it left behind; then a fresh
`Contexta` on the same workspace lists the run.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture import read_capture_log
from contexta.capture._scopes._endings import TRACEBACK_BYTES, TRACEBACK_LINES

PROJECT = "p"
COUNT = 20_000


# -- helpers -------------------------------------------------------------------------------------


def _script(body: str, **constants: Any) -> str:
    """A child program: `constants` become module-level names, then the dedented `body`."""
    header = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    return header + textwrap.dedent(body)


def _run_child(script: str, cwd: Path, *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, timeout=timeout, capture_output=True, text=True, check=False
    )


def _read_until(process: subprocess.Popen[bytes], marker: bytes, timeout: float = 60.0) -> bytes:
    """Child stdout up to and including `marker`; fails if the child ends or stays silent too long."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the child did not print {marker!r} within {timeout}s (got {seen!r})"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"the child exited ({process.wait()}) before printing {marker!r} (got {seen!r})"
            seen += chunk
    return seen


@contextlib.contextmanager
def _child(script: str, cwd: Path, **options: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A running child program; killed if the test leaves it running."""
    stderr = open(cwd / "stderr.txt", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, **options
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()
        stderr.close()


def _signal_after_ready(script: str, cwd: Path, signum: int, *, group: bool = False) -> tuple[int, str]:
    """Start `script`, send `signum` 20 ms after it prints "ready", and return its exit code and stdout."""
    with _child(script, cwd, start_new_session=group) as process:
        output = _read_until(process, b"ready")
        time.sleep(0.02)
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        code = process.wait(timeout=30)
        assert process.stdout is not None
        output += process.stdout.read()
    return code, output.decode()


def _stderr(cwd: Path) -> str:
    return (cwd / "stderr.txt").read_text()


def _capture_dir(workspace: Path) -> Path:
    return workspace / "cache" / "capture"


def _context_lines(workspace: Path) -> list[dict[str, Any]]:
    log = read_capture_log(_capture_dir(workspace) / "context.jsonl")
    assert log.clean, f"unreadable lines {log.skipped_lines} in {log.path}"
    return log.lines


def _closing(workspace: Path, ref: str) -> dict[str, Any]:
    """The one close document of `ref` in the capture log (every scope is closed exactly once)."""
    documents = [line["payload"] for line in _context_lines(workspace) if line["payload_ref"] == ref]
    closings = [document for document in documents if document.get("status", "open") != "open"]
    assert len(closings) == 1, f"{ref} was closed {len(closings)} times: {documents}"
    assert "end_reason" not in documents[0] and "failure" not in documents[0], "the opening says why it ended"
    return closings[0]


def _records(workspace: Path) -> list[dict[str, Any]]:
    log = read_capture_log(_capture_dir(workspace) / "record.jsonl")
    assert log.clean, f"unreadable lines {log.skipped_lines} in {log.path}"
    return log.lines


def _events(workspace: Path) -> list[dict[str, Any]]:
    return [
        line["payload"]["payload"]
        for line in _records(workspace)
        if line["payload_type"] == "StructuredEventRecord"
    ]


def _steps(workspace: Path, key: str) -> list[int | None]:
    return [
        line["payload"]["payload"].get("step")
        for line in _records(workspace)
        if line["payload_type"] == "MetricRecord" and line["payload"]["payload"]["metric_key"] == key
    ]


def _listed_status(workspace: Path, name: str = "r") -> str:
    """The run's status as a later process sees it."""
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as reader:
        (run,) = [run for run in reader.list_runs() if run.name == name]
        return run.status


def _assert_traceback_bounded(text: str) -> None:
    assert len(text.splitlines()) <= TRACEBACK_LINES
    assert len(text.encode()) <= TRACEBACK_BYTES


# -- interpreter exit ----------------------------------------------------------------------------


def test_exit_without_closing_completes_the_run_with_its_environment(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    # Neither the run nor the Contexta is closed: only the exit hooks can close the run, and the
    # environment snapshot (collected in a thread) must land before the queue closes.
    script = _script(
        """
        from contexta import Contexta

        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        run = ctx.run("r")
        stage = run.stage("train")
        for i in range(100):
            stage.metric("loss", float(i), step=i)
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
    )
    result = _run_child(script, tmp_path)
    assert (result.returncode, result.stderr) == (0, "")

    run = _closing(workspace, f"run:{PROJECT}.r")
    assert (run["status"], run["end_reason"]) == ("completed", "interpreter_exit")
    assert "failure" not in run
    stage = _closing(workspace, f"stage:{PROJECT}.r.train")
    assert (stage["status"], stage["end_reason"]) == ("cancelled", "interpreter_exit")
    snapshots = [line for line in _context_lines(workspace) if line["payload_type"] == "EnvironmentSnapshot"]
    assert [line["payload"]["run_ref"] for line in snapshots] == [f"run:{PROJECT}.r"]
    assert _steps(workspace, "loss") == list(range(100))
    assert not [event for event in _events(workspace) if event["event_key"].startswith("run.")]
    assert _listed_status(workspace) == "completed"


def test_an_uncaught_exception_fails_the_open_run_with_what_went_wrong(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    script = _script(
        """
        from contexta import Contexta

        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        run = ctx.run("r")
        run.metric("loss", 0.5)

        def load_batch(number):
            raise ValueError(f"batch {number} has no labels")

        load_batch(7)
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
    )
    result = _run_child(script, tmp_path)
    assert result.returncode == 1
    # The program's own traceback is printed once, by the hook we chained to; nothing of ours.
    assert result.stderr.count("Traceback") == 1, result.stderr
    assert result.stderr.rstrip().endswith("ValueError: batch 7 has no labels")
    assert "contexta" not in result.stderr

    run = _closing(workspace, f"run:{PROJECT}.r")
    assert (run["status"], run["end_reason"]) == ("failed", "exception")
    failure = run["failure"]
    assert (failure["type"], failure["message"]) == ("ValueError", "batch 7 has no labels")
    assert "in load_batch" in failure["traceback"]
    assert failure["traceback"].splitlines()[-1] == "ValueError: batch 7 has no labels"  # innermost last
    _assert_traceback_bounded(failure["traceback"])
    (event,) = [event for event in _events(workspace) if event["event_key"].startswith("run.")]
    assert (event["event_key"], event["level"]) == ("run.failed", "error")
    assert event["attributes"] == {"end_reason": "exception", "exception_type": "ValueError"}
    assert _listed_status(workspace) == "failed"


@pytest.mark.parametrize(
    ("code", "status", "end_reason"),
    [
        (3, "failed", "exit_status:3"),
        ("config file missing", "failed", "exit_status:1"),
        (0, "completed", "interpreter_exit"),
        (None, "completed", "interpreter_exit"),
    ],
)
def test_sys_exit_decides_how_the_open_run_ends(
    tmp_path: Path, code: int | str | None, status: str, end_reason: str
) -> None:
    workspace = tmp_path / ".contexta"
    script = _script(
        """
        import sys

        from contexta import Contexta

        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        run = ctx.run("r")
        run.metric("loss", 0.5)
        sys.exit(CODE)
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        CODE=code,
    )
    result = _run_child(script, tmp_path)
    assert result.returncode == (1 if isinstance(code, str) else code or 0), result.stderr

    run = _closing(workspace, f"run:{PROJECT}.r")
    assert (run["status"], run["end_reason"]) == (status, end_reason)
    assert "failure" not in run  # only the code is known: the SystemExit is gone when atexit runs
    run_events = [event["event_key"] for event in _events(workspace) if event["event_key"].startswith("run.")]
    assert run_events == (["run.failed"] if status == "failed" else [])
    assert _listed_status(workspace) == status


def test_a_hanging_sink_still_cannot_hang_exit_with_a_run_open(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    script = _script(
        """
        import threading

        from contexta import Contexta
        from contexta.capture import LocalJsonlSink

        class HangingSink:
            name = "hanging"

            def write(self, batch):
                threading.Event().wait()

            def flush(self):
                pass

            def close(self):
                pass

        ctx = Contexta(
            workspace=WORKSPACE,
            config={"project_name": PROJECT, "capture": {"exit_timeout_s": 1}},
            sinks=[LocalJsonlSink(CAPTURE_DIR), HangingSink()],
        )
        run = ctx.run("r")
        run.stage("s").metric("value", 1.0)
        raise RuntimeError("the job failed")
        """,
        WORKSPACE=str(workspace),
        CAPTURE_DIR=str(_capture_dir(workspace)),
        PROJECT=PROJECT,
    )
    started = time.monotonic()
    result = _run_child(script, tmp_path, timeout=20.0)
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert "RuntimeError: the job failed" in result.stderr
    assert "did not finish within 1" in result.stderr
    assert result.stderr.count("Traceback") == 1, result.stderr
    # The healthy sink still got the closing, written by its own lane while the other one hangs.
    closing = _closing(workspace, f"run:{PROJECT}.r")
    assert (closing["status"], closing["failure"]["message"]) == ("failed", "the job failed")


# -- SIGTERM and SIGHUP --------------------------------------------------------------------------

_TRAINING_LOOP = """
    import os
    import signal
    import sys
    import time

    from contexta import Contexta

    ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT, "capture": CAPTURE})
    with ctx.run("r") as run, run.stage("train") as stage:
        for i in range(COUNT):
            stage.metric("loss", float(i), step=i)
        print("ready", flush=True)
        while True:
            time.sleep(0.01)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda signum: signum.name)
def test_a_stop_signal_delivers_everything_and_cancels_open_scopes(tmp_path: Path, signum: int) -> None:
    workspace = tmp_path / ".contexta"
    script = _script(_TRAINING_LOOP, WORKSPACE=str(workspace), PROJECT=PROJECT, COUNT=COUNT, CAPTURE={})
    code, _ = _signal_after_ready(script, tmp_path, signum)
    assert code == -signum, _stderr(tmp_path)  # the process still ends by the signal
    assert _stderr(tmp_path) == ""

    assert _steps(workspace, "loss") == list(range(COUNT))
    reason = f"signal:{signal.Signals(signum).name}"
    for ref in (f"stage:{PROJECT}.r.train", f"run:{PROJECT}.r"):
        closing = _closing(workspace, ref)
        assert (closing["status"], closing["end_reason"]) == ("cancelled", reason), ref
        assert "failure" not in closing
    (event,) = [event for event in _events(workspace) if event["event_key"].startswith("run.")]
    assert (event["event_key"], event["level"], event["attributes"]) == (
        "run.cancelled",
        "warning",
        {"end_reason": reason},
    )
    assert _listed_status(workspace) == "cancelled"
    # ... and the store has every point and says why each scope ended.
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as reader:
        assert reader.get_metric_series("r", "loss").steps == tuple(range(COUNT))
        (run,) = reader.list_runs()
        (stage,) = reader.list_stages("r")
        assert (run.status, run.end_reason) == (stage.status, stage.end_reason) == ("cancelled", reason)


def test_sigterm_to_the_whole_process_group_spares_the_log_writer_until_delivered(tmp_path: Path) -> None:
    # Slurm's scancel signals every process of the job: the log-writer child too. Enough records
    # for the capture log to have handed its metric lines to that child before "ready".
    workspace = tmp_path / ".contexta"
    count = 300_000
    script = _script(
        _TRAINING_LOOP.replace('print("ready"', 'print(ctx.sinks[0].log_process_pid, "ready"'),
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        COUNT=count,
        CAPTURE={},
    )
    code, output = _signal_after_ready(script, tmp_path, signal.SIGTERM, group=True)
    assert code == -signal.SIGTERM, _stderr(tmp_path)
    assert not output.startswith("None"), "the log-writer process never started; raise the count"
    assert _stderr(tmp_path) == ""  # no "the log-writer process exited" warning
    assert _steps(workspace, "loss") == list(range(count))  # each exactly once
    assert _closing(workspace, f"run:{PROJECT}.r")["end_reason"] == "signal:SIGTERM"


def test_handle_signals_false_leaves_sigterm_alone(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    script = _script(
        _TRAINING_LOOP.replace(
            'print("ready"', 'print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "ready"'
        ),
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        COUNT=10,
        CAPTURE={"handle_signals": False},
    )
    code, output = _signal_after_ready(script, tmp_path, signal.SIGTERM)
    assert code == -signal.SIGTERM
    assert output.startswith("True")
    documents = [line["payload"] for line in _context_lines(workspace) if line["payload_type"] == "Run"]
    assert [document for document in documents if document["status"] != "open"] == []  # nobody closed it


def test_a_signal_the_program_ignores_stays_ignored(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    script = _script(
        """
        import signal

        from contexta import Contexta

        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup
        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN, signal.getsignal(signal.SIGTERM).__module__)
        ctx.close()
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
    )
    result = _run_child(script, tmp_path)
    assert (result.returncode, result.stdout.split()) == (0, ["True", "contexta.capture._scopes._signals"])


def test_the_programs_own_sigterm_handler_is_still_called_and_decides_the_exit(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    script = _script(
        """
        import signal
        import sys
        import time

        def on_sigterm(signum, frame):
            print("the program's handler ran", flush=True)
            sys.exit(7)

        signal.signal(signal.SIGTERM, on_sigterm)

        from contexta import Contexta

        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        with ctx.run("r") as run, run.stage("train") as stage:
            for i in range(COUNT):
                stage.metric("loss", float(i), step=i)
            print("ready", flush=True)
            while True:
                time.sleep(0.01)
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        COUNT=COUNT,
    )
    code, output = _signal_after_ready(script, tmp_path, signal.SIGTERM)
    assert code == 7, _stderr(tmp_path)
    assert "the program's handler ran" in output
    assert _steps(workspace, "loss") == list(range(COUNT))
    for ref in (f"stage:{PROJECT}.r.train", f"run:{PROJECT}.r"):
        closing = _closing(workspace, ref)
        assert (closing["status"], closing["end_reason"]) == ("cancelled", "signal:SIGTERM"), ref
        assert closing["failure"]["type"] == "SystemExit"
        # The program's frames, down to its handler; not the frames the exception passed through.
        lines = closing["failure"]["traceback"].splitlines()
        assert [line for line in lines if line.startswith("  File")][-1].endswith("in on_sigterm"), lines
        assert not [line for line in lines if "_signals.py" in line or "_exit_status.py" in line], lines
    assert _listed_status(workspace) == "cancelled"


def test_a_program_handler_that_lets_the_job_go_on_keeps_its_scopes_open(tmp_path: Path) -> None:
    # The graceful-shutdown pattern: the handler sets a flag, the loop saves and logs, then ends.
    workspace = tmp_path / ".contexta"
    script = _script(
        """
        import signal
        import time

        stopping = []

        def on_sigterm(signum, frame):
            stopping.append(signum)
            print("pending when the program's handler ran:", ctx.capture_stats().pending, flush=True)

        signal.signal(signal.SIGTERM, on_sigterm)

        from contexta import Contexta

        # Few records and a long interval: without a flush they would wait in the queue until exit.
        ctx = Contexta(
            workspace=WORKSPACE, config={"project_name": PROJECT, "capture": {"flush_interval_s": 30}}
        )
        with ctx.run("r") as run, run.stage("train") as stage:
            for i in range(COUNT):
                stage.metric("loss", float(i), step=i)
            # The run's environment snapshot is queued by a thread of its own; one queued after the
            # signal's flush would be counted pending (seen under load in CI). Wait for it, not flush.
            run._environment.join()
            print("ready", flush=True)
            while not stopping:
                time.sleep(0.01)
            stage.metric("stopped_at", float(COUNT))  # capture goes on after the signal
        ctx.close()
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        COUNT=100,
    )
    code, output = _signal_after_ready(script, tmp_path, signal.SIGTERM)
    assert code == 0, _stderr(tmp_path)
    assert _stderr(tmp_path) == ""
    assert "pending when the program's handler ran: 0" in output  # delivered before it was called
    assert _steps(workspace, "loss") == list(range(100))
    assert len(_steps(workspace, "stopped_at")) == 1
    run = _closing(workspace, f"run:{PROJECT}.r")
    assert run["status"] == "completed"
    assert "end_reason" not in run


def test_sigterm_while_the_main_thread_holds_capture_locks_or_waits_for_room(tmp_path: Path) -> None:
    # The handler runs in the main thread between two bytecodes: here inside the scope's, the
    # session's and the queue's locks, and (second signal) while blocked on a full queue.
    workspace = tmp_path / ".contexta"
    script = _script(
        """
        import os
        import signal
        import time

        from contexta import Contexta
        from contexta.capture import LocalJsonlSink

        class SlowSink:
            name = "slow"

            def write(self, batch):
                time.sleep(0.005)

            def flush(self):
                pass

            def close(self):
                pass

        ctx = Contexta(
            workspace=WORKSPACE,
            config={"project_name": PROJECT, "capture": {"queue_capacity": 64, "max_batch_size": 8}},
            sinks=[LocalJsonlSink(CAPTURE_DIR), SlowSink()],
        )
        run = ctx.run("r")
        stage = run.stage("train")
        queue = ctx._pipeline.queue
        if MODE == "locks":
            for i in range(100):
                stage.metric("loss", float(i), step=i)
            with stage._lock, run._lock, ctx._session._lock, queue._limit_lock:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
        else:
            signal.setitimer(signal.ITIMER_REAL, 0.3)  # SIGALRM: turned into SIGTERM below
            signal.signal(signal.SIGALRM, lambda *args: os.kill(os.getpid(), signal.SIGTERM))
            for i in range(10_000_000):
                stage.metric("loss", float(i), step=i)  # blocks: the slow sink cannot keep up
        """,
        WORKSPACE=str(workspace),
        CAPTURE_DIR=str(_capture_dir(workspace)),
        PROJECT=PROJECT,
        MODE="locks",
    )
    for mode in ("locks", "blocked"):
        started = time.monotonic()
        result = _run_child(script.replace("MODE = 'locks'", f"MODE = {mode!r}"), tmp_path, timeout=30)
        assert result.returncode == -signal.SIGTERM, (mode, result.stderr)
        assert time.monotonic() - started < 15, mode  # every wait is bounded by exit_timeout_s (5 s)
        assert result.stderr == "", (mode, result.stderr)
        closing = _closing(workspace, f"run:{PROJECT}.r")
        assert (closing["status"], closing["end_reason"]) == ("cancelled", "signal:SIGTERM"), mode
        steps = _steps(workspace, "loss")
        assert steps == list(range(len(steps))) and steps, mode
        (workspace / "cache" / "capture" / "context.jsonl").unlink()
        (workspace / "cache" / "capture" / "record.jsonl").unlink()


def test_a_forked_child_never_ends_its_parents_run(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    # Two forked workers capture into the parent's stage: one is stopped by SIGTERM, the other ends
    # normally through multiprocessing's exit hooks (as a DataLoader worker does). The parent's run
    # and stage must end once each, as the parent ends them.
    script = _script(
        """
        import multiprocessing
        import os
        import signal
        import time

        from contexta import Contexta

        def work(how):
            stage.metric(f"child.{how}", 1.0)
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)

        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        codes = []
        with ctx.run("r") as run, run.stage("train") as stage:
            for how in ("sigterm", "exit"):
                worker = multiprocessing.get_context("fork").Process(target=work, args=(how,))
                worker.start()
                worker.join(30)
                codes.append(worker.exitcode)
            stage.metric("parent.after", 1.0)
        ctx.close()
        print(codes)
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
    )
    result = _run_child(script, tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip() == f"[{-signal.SIGTERM}, 0]"
    for ref in (f"run:{PROJECT}.r", f"stage:{PROJECT}.r.train"):
        closing = _closing(workspace, ref)  # exactly one closing each
        assert closing["status"] == "completed"
        assert "end_reason" not in closing
    for key in ("child.sigterm", "child.exit", "parent.after"):
        assert len(_steps(workspace, key)) == 1, key  # the SIGTERM'd child delivered its record


# -- Ctrl-C ----------------------------------------------------------------------------------------


def test_ctrl_c_cancels_the_run_with_a_cancelled_event(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    script = _script(
        """
        from contexta import Contexta

        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        with ctx.run("r") as run, run.stage("train") as stage:
            print("ready", flush=True)
            i = 0
            while True:
                stage.metric("loss", 1.0, step=i)
                i += 1
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
    )
    code, _ = _signal_after_ready(script, tmp_path, signal.SIGINT)
    assert code == -signal.SIGINT, _stderr(tmp_path)
    assert _stderr(tmp_path).rstrip().endswith("KeyboardInterrupt")

    for ref in (f"stage:{PROJECT}.r.train", f"run:{PROJECT}.r"):
        closing = _closing(workspace, ref)
        assert (closing["status"], closing["end_reason"]) == ("cancelled", "keyboard_interrupt"), ref
        assert closing["failure"]["type"] == "KeyboardInterrupt"
        assert 'File "<string>", line' in closing["failure"]["traceback"]  # where the program was
    keys = [event["event_key"] for event in _events(workspace)]
    assert keys == ["stage.cancelled", "run.cancelled"]
    assert {event["level"] for event in _events(workspace)} == {"warning"}
    steps = _steps(workspace, "loss")
    assert steps == list(range(len(steps)))
    assert _listed_status(workspace) == "cancelled"


# -- the async facade ------------------------------------------------------------------------------

_ASYNC_PROGRAM = """
    import asyncio
    import sys

    import trio

    from contexta import Contexta

    ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})

    async def main():
        async with ctx.arun("r") as run, run.stage("train") as stage:
            for i in range(COUNT):
                await stage.metric("loss", float(i), step=i)
            print("ready", flush=True)
            if HOW == "exception":
                raise ValueError("the judge broke")
            if HOW == "exit":
                sys.exit(3)
            while True:
                await (trio.sleep(0.01) if LIBRARY == "trio" else asyncio.sleep(0.01))

    trio.run(main) if LIBRARY == "trio" else asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("library", "how", "code", "status", "end_reason", "event"),
    [
        ("asyncio", "sigterm", -signal.SIGTERM, "cancelled", "signal:SIGTERM", "run.cancelled"),
        ("asyncio", "sighup", -signal.SIGHUP, "cancelled", "signal:SIGHUP", "run.cancelled"),
        # asyncio.run turns Ctrl-C into cancelling the main task, then raises KeyboardInterrupt.
        ("asyncio", "sigint", -signal.SIGINT, "cancelled", "cancelled", "run.cancelled"),
        ("asyncio", "exception", 1, "failed", "exception", "run.failed"),
        ("asyncio", "exit", 3, "failed", "exit_status:3", "run.failed"),
        ("trio", "sigterm", -signal.SIGTERM, "cancelled", "signal:SIGTERM", "run.cancelled"),
        ("trio", "sigint", -signal.SIGINT, "cancelled", "keyboard_interrupt", "run.cancelled"),
    ],
)
def test_async_runs_end_the_same_way(
    tmp_path: Path, library: str, how: str, code: int, status: str, end_reason: str, event: str
) -> None:
    workspace = tmp_path / ".contexta"
    script = _script(
        _ASYNC_PROGRAM, WORKSPACE=str(workspace), PROJECT=PROJECT, COUNT=COUNT, HOW=how, LIBRARY=library
    )
    signum = {"sigterm": signal.SIGTERM, "sighup": signal.SIGHUP, "sigint": signal.SIGINT}.get(how)
    if signum is None:
        with _child(script, tmp_path) as process:
            assert process.wait(timeout=60) == code, _stderr(tmp_path)
    else:
        assert _signal_after_ready(script, tmp_path, signum)[0] == code, _stderr(tmp_path)

    assert _steps(workspace, "loss") == list(range(COUNT))
    for ref in (f"stage:{PROJECT}.r.train", f"run:{PROJECT}.r"):
        closing = _closing(workspace, ref)
        assert (closing["status"], closing["end_reason"]) == (status, end_reason), ref
    run_events = [item["event_key"] for item in _events(workspace) if item["event_key"].startswith("run.")]
    assert run_events == [event]
    assert _listed_status(workspace) == status


# -- leaving a `with` block, in this process ------------------------------------------------------


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    contexta = Contexta(workspace=tmp_path / ".contexta", config={"project_name": PROJECT})
    yield contexta
    contexta.close()


def _in_process_closing(ctx: Contexta, ref: str) -> dict[str, Any]:
    ctx.flush()
    return _closing(ctx.workspace, ref)


def test_an_exception_stores_its_type_message_and_a_short_traceback(ctx: Contexta) -> None:
    def dig(depth: int) -> None:  # dig and deeper alternate, so the traceback is not folded
        if depth == 0:
            raise KeyError("label")
        deeper(depth - 1)

    def deeper(depth: int) -> None:
        dig(depth)

    with pytest.raises(KeyError), ctx.run("r") as run, run.stage("train") as stage:
        batch = stage.batch("b0")  # open, not in a `with`: closed by its stage, with the same reason
        dig(50)
    stage_closing = _in_process_closing(ctx, stage.ref)
    assert (stage_closing["status"], stage_closing["end_reason"]) == ("failed", "exception")
    failure = stage_closing["failure"]
    assert (failure["type"], failure["message"]) == ("KeyError", "'label'")
    lines = failure["traceback"].splitlines()
    assert lines[0].startswith("... (") and "earlier lines not kept" in lines[0]
    assert lines[-1] == "KeyError: 'label'"
    assert "in dig" in lines[-3]  # the innermost frame
    _assert_traceback_bounded(failure["traceback"])
    assert _closing(ctx.workspace, batch.ref)["failure"] == failure
    assert _closing(ctx.workspace, run.ref)["end_reason"] == "exception"
    assert [event["event_key"] for event in _events(ctx.workspace)] == ["stage.failed", "run.failed"]


def test_a_huge_message_is_cut_and_the_traceback_kept_under_4_kb(ctx: Contexta) -> None:
    with pytest.raises(ValueError), ctx.run("r") as run:
        raise ValueError("x" * 100_000 + "\n" + "y" * 10_000)
    failure = _in_process_closing(ctx, run.ref)["failure"]
    assert len(failure["message"]) <= 1000
    _assert_traceback_bounded(failure["traceback"])
    lines = failure["traceback"].splitlines()
    assert lines[0] == "Traceback (most recent call last):"  # the frames were kept, the message cut
    assert "in test_a_huge_message_is_cut" in failure["traceback"]
    assert lines[-1].startswith("ValueError: xxx") and lines[-1].endswith("…")


@pytest.mark.parametrize(
    ("code", "status", "end_reason"),
    [
        (0, "completed", None),
        (None, "completed", None),
        (3, "failed", "exit_status:3"),
        ("bad config", "failed", "exit_status:1"),
    ],
)
def test_system_exit_leaving_a_scope(
    ctx: Contexta, code: int | str | None, status: str, end_reason: str | None
) -> None:
    with pytest.raises(SystemExit), ctx.run("r") as run:
        raise SystemExit(code)
    closing = _in_process_closing(ctx, run.ref)
    assert closing["status"] == status
    assert closing.get("end_reason") == end_reason
    if status == "failed":
        assert closing["failure"]["type"] == "SystemExit"
        assert [event["event_key"] for event in _events(ctx.workspace)] == ["run.failed"]
    else:
        assert _events(ctx.workspace) == []


def test_sys_exit_in_a_scope_stores_the_programs_frames_not_the_wrappers(ctx: Contexta) -> None:
    def give_up() -> None:
        sys.exit(3)  # through the wrapper that notes the code for interpreter exit

    with pytest.raises(SystemExit), ctx.run("r") as run:
        give_up()
    lines = _in_process_closing(ctx, run.ref)["failure"]["traceback"].splitlines()
    assert lines[-1] == "SystemExit: 3"
    assert [line for line in lines if line.startswith("  File")][-1].endswith("in give_up")
    assert not [line for line in lines if "_exit_status.py" in line]


def test_keyboard_interrupt_and_other_base_exceptions_cancel(ctx: Contexta) -> None:
    class Stop(BaseException):
        pass

    with ctx.run("r") as run:
        with pytest.raises(KeyboardInterrupt), run.stage("a") as first:
            raise KeyboardInterrupt
        with pytest.raises(Stop), run.stage("b") as second, second.operation("op") as operation:
            raise Stop("stopped")
    assert (first.status, second.status, operation.status, run.status) == (
        "cancelled",
        "cancelled",
        "cancelled",
        "completed",
    )
    assert _in_process_closing(ctx, first.ref)["end_reason"] == "keyboard_interrupt"
    for ref in (second.ref, operation.ref):  # an operation's closing carries it too
        closing = _closing(ctx.workspace, ref)
        assert (closing["end_reason"], closing["failure"]["type"]) == ("cancelled", "Stop")
    events = _events(ctx.workspace)
    assert [event["event_key"] for event in events] == [
        "stage.cancelled",
        "operation.cancelled",
        "stage.cancelled",
    ]
    assert {event["level"] for event in events} == {"warning"}
    assert "end_reason" not in _closing(ctx.workspace, run.ref)


def test_closing_the_contexta_cancels_open_runs_saying_so(tmp_path: Path) -> None:
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": PROJECT})
    run = ctx.run("r")
    stage = run.stage("train")
    explicit = run.stage("closed-by-hand")
    explicit.close("failed")
    ctx.close()
    for ref in (run.ref, stage.ref):
        closing = _closing(ctx.workspace, ref)
        assert (closing["status"], closing["end_reason"]) == ("cancelled", "contexta_closed"), ref
    assert "end_reason" not in _closing(ctx.workspace, explicit.ref)  # the program's own choice


def test_a_scope_closed_by_another_thread_meanwhile_keeps_that_closing(tmp_path: Path) -> None:
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": PROJECT})
    run = ctx.run("r")
    build_event = run._event_item

    def closed_first(*args: Any) -> tuple[Any, ...]:
        run.close("failed")  # another thread wins the race between the check and the event
        return build_event(*args)

    run._event_item = closed_first  # type: ignore[method-assign]
    ctx.close()  # does not raise
    closing = _closing(ctx.workspace, run.ref)
    assert closing["status"] == "failed"
    assert "end_reason" not in closing
