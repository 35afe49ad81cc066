"""Capture across process boundaries: fork, multiprocessing, interpreter exit, SIGKILL, several writers.

Every scenario runs in a child interpreter (`sys.executable -c <script>`) so the pytest process never
forks and never runs exit hooks of its own; the test then reads the capture log the child left behind.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from contexta.capture import read_capture_log

PROJECT = "p"


def _script(body: str, **constants: Any) -> str:
    """A child program: `constants` become module-level names, then the dedented `body`."""
    header = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    return header + textwrap.dedent(body)


def _run_child(script: str, cwd: Path, *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, timeout=timeout, capture_output=True, text=True, check=False
    )


def _assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"child exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def _wait_for_log_writers(capture_dir: Path, timeout: float = 60.0) -> None:
    """Wait until no log-writer process appends to `capture_dir`: one outlives its killed parent
    long enough to append every batch it had received (by design: those records are kept), and
    reading before it is done would race it."""
    needle = str(capture_dir).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = False
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                        arguments = cmdline.read()
                except OSError:
                    continue
                alive = alive or (needle in arguments and b"_line_writer" in arguments)
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError(f"a log-writer process still appends to {capture_dir} after {timeout} s")


def _capture_dir(workspace: Path) -> Path:
    return workspace / "cache" / "capture"


def _metric_lines(workspace: Path, *, require_clean: bool = True) -> list[dict[str, Any]]:
    """The metric lines of record.jsonl, in file order; every line must parse unless told otherwise."""
    log = read_capture_log(_capture_dir(workspace) / "record.jsonl")
    if require_clean:
        assert log.clean, f"unreadable lines {log.skipped_lines} (torn tail: {log.torn_tail}) in {log.path}"
    return [line for line in log.lines if line["payload_type"] == "MetricRecord"]


def _steps(lines: list[dict[str, Any]], key: str) -> list[int]:
    payloads = [line["payload"]["payload"] for line in lines]
    return [payload["step"] for payload in payloads if payload["metric_key"] == key]


def _read_until(process: subprocess.Popen[bytes], marker: bytes, timeout: float) -> bytes:
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


def test_forked_child_writes_its_own_records_and_not_the_parents_queue(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    # A long flush interval keeps the parent's records queued (not yet written) at the moment of fork,
    # so a child that inherited and drained the parent's queue would write them a second time.
    script = _script(
        """
        import os
        import sys
        import traceback

        from contexta import Contexta

        ctx = Contexta(
            workspace=WORKSPACE, config={"project_name": PROJECT, "capture": {"flush_interval_s": 30.0}}
        )
        with ctx.run("r") as run:
            with run.stage("train") as stage:
                for i in range(PARENT_COUNT):
                    stage.metric("parent.before", float(i), step=i)
                pid = os.fork()
                if pid == 0:
                    try:
                        with stage.sample("child") as sample:
                            for i in range(CHILD_COUNT):
                                sample.metric("child.value", float(i), step=i)
                        ctx.flush(timeout=30)
                    except BaseException:
                        traceback.print_exc()
                        sys.stderr.flush()
                        os._exit(1)
                    os._exit(0)
                _, status = os.waitpid(pid, 0)
                child_code = os.waitstatus_to_exitcode(status)
                for i in range(PARENT_COUNT):
                    stage.metric("parent.after", float(i), step=i)
        ctx.close()
        sys.exit(child_code)
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        PARENT_COUNT=500,
        CHILD_COUNT=1_000,
    )
    _assert_ok(_run_child(script, tmp_path))

    metrics = _metric_lines(workspace)
    assert read_capture_log(_capture_dir(workspace) / "context.jsonl").clean
    assert _steps(metrics, "parent.before") == list(range(500))
    assert _steps(metrics, "parent.after") == list(range(500))
    assert Counter(_steps(metrics, "child.value")) == Counter(range(1_000))
    assert len(metrics) == 500 + 500 + 1_000
    child_sample = f"sample:{PROJECT}.r.train.child"
    for line in metrics:
        envelope = line["payload"]["envelope"]
        is_child = line["payload"]["payload"]["metric_key"] == "child.value"
        assert envelope.get("sample_observation_ref") == (child_sample if is_child else None)
        assert envelope["stage_execution_ref"] == f"stage:{PROJECT}.r.train"
    record_refs = [line["payload_ref"] for line in metrics]
    assert len(set(record_refs)) == len(record_refs), "parent and child issued the same record ref"


def test_multiprocessing_child_records_land_without_flush_or_close(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    # 1,000 records stay below the writer's wake threshold and the flush interval is long: only the
    # child's exit finalizer can deliver them before the worker process ends.
    script = _script(
        """
        import multiprocessing
        import sys

        from contexta import Contexta

        ctx = Contexta(
            workspace=WORKSPACE, config={"project_name": PROJECT, "capture": {"flush_interval_s": 30.0}}
        )

        def work():
            for i in range(CHILD_COUNT):
                stage.metric("worker.value", float(i), step=i)

        with ctx.run("r") as run:
            with run.stage("train") as stage:
                stage.metric("parent.before", 1.0)
                worker = multiprocessing.get_context("fork").Process(target=work)
                worker.start()
                worker.join(30)
                stage.metric("parent.after", 2.0)
        ctx.close()
        sys.exit(worker.exitcode)
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        CHILD_COUNT=1_000,
    )
    _assert_ok(_run_child(script, tmp_path))

    metrics = _metric_lines(workspace)
    assert _steps(metrics, "worker.value") == list(range(1_000))
    worker_lines = [line for line in metrics if line["payload"]["payload"]["metric_key"] == "worker.value"]
    assert {line["payload"]["envelope"]["stage_execution_ref"] for line in worker_lines} == {
        f"stage:{PROJECT}.r.train"
    }
    assert Counter(line["payload"]["payload"]["metric_key"] for line in metrics) == {
        "worker.value": 1_000,
        "parent.before": 1,
        "parent.after": 1,
    }


def test_interpreter_exit_without_close_flushes_everything(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    # The run is never closed and neither is the Contexta: only the exit hook can write the tail.
    script = _script(
        """
        from contexta import Contexta

        ctx = Contexta(
            workspace=WORKSPACE,
            config={"project_name": PROJECT, "capture": {"flush_interval_s": 30.0, "exit_timeout_s": 60.0}},
        )
        run = ctx.run("r")
        for i in range(COUNT):
            run.metric("value", float(i), step=i)
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        COUNT=20_000,
    )
    result = _run_child(script, tmp_path)
    _assert_ok(result)
    assert "abandoned" not in result.stderr

    metrics = _metric_lines(workspace)
    assert _steps(metrics, "value") == list(range(20_000))
    assert len(metrics) == 20_000


def test_hanging_sink_cannot_hang_interpreter_exit(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    script = _script(
        """
        import threading

        from contexta import Contexta

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
            sinks=[HangingSink()],
        )
        run = ctx.run("r")
        run.metric("value", 1.0)
        print("captured", flush=True)
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
    )
    # The timeout is the assertion: an exit hook that waited for the sink would never return.
    result = _run_child(script, tmp_path, timeout=20.0)
    _assert_ok(result)
    assert "captured" in result.stdout
    stderr = result.stderr.lower()
    assert "contexta" in stderr
    assert "did not finish" in stderr or "abandon" in stderr, result.stderr


@pytest.mark.parametrize("attempt", range(3))
def test_sigkill_mid_loop_leaves_an_in_order_prefix(tmp_path: Path, attempt: int) -> None:
    workspace = tmp_path / ".contexta"
    script = _script(
        """
        from contexta import Contexta

        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        with ctx.run("r") as run:
            with run.stage("train") as stage:
                for i in range(10_000_000):
                    stage.metric("loss", float(i), step=i)
                    if i == 99_999:
                        print("started", flush=True)
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
    )
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, stderr=stderr
        )
        try:
            _read_until(process, b"started", timeout=60.0)
            time.sleep(random.uniform(0.2, 1.0))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()
    assert process.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()
    _wait_for_log_writers(_capture_dir(workspace))

    path = _capture_dir(workspace) / "record.jsonl"
    data = path.read_bytes()
    last_line = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    log = read_capture_log(path)
    assert log.skipped_lines in ([], [last_line]), f"unreadable lines {log.skipped_lines} of {last_line}"
    metrics = [line for line in log.lines if line["payload_type"] == "MetricRecord"]
    steps = _steps(metrics, "loss")
    assert len(steps) > 0
    assert len(steps) == len(metrics)
    assert steps == list(range(len(steps))), "the log is not an in-order prefix of what was captured"


def test_several_processes_share_one_capture_log(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    go_file = tmp_path / "go"
    count = 20_000
    # Different batch sizes give the writers different write sizes, from small to megabytes.
    batch_sizes = [97, 1_000, 4_096]
    script = _script(
        """
        import os
        import pathlib
        import sys
        import time

        from contexta import Contexta

        number, batch_size = int(sys.argv[1]), int(sys.argv[2])
        ctx = Contexta(
            workspace=WORKSPACE,
            config={"project_name": PROJECT, "capture": {"max_batch_size": batch_size}},
        )
        pathlib.Path(f"ready-{number}").touch()
        deadline = time.monotonic() + 60
        while not os.path.exists(GO_FILE):
            if time.monotonic() > deadline:
                sys.exit("the test never said go")
            time.sleep(0.005)
        with ctx.run(f"writer-{number}") as run:
            for i in range(COUNT):
                run.metric("value", float(i), step=i)
        ctx.close()
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        GO_FILE=str(go_file),
        COUNT=count,
    )
    processes: list[subprocess.Popen[bytes]] = []
    outputs = []
    try:
        for number, batch_size in enumerate(batch_sizes):
            output = open(tmp_path / f"output-{number}.txt", "wb")  # noqa: SIM115 - closed in finally
            outputs.append(output)
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", script, str(number), str(batch_size)],
                    cwd=tmp_path,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready-{number}").exists() for number in range(len(batch_sizes))):
            assert all(process.poll() is None for process in processes), "a writer died before starting"
            assert time.monotonic() < deadline, "the writers did not get ready within 60s"
            time.sleep(0.01)
        go_file.touch()
        codes = [process.wait(timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for output in outputs:
            output.close()
    for number, code in enumerate(codes):
        assert code == 0, (tmp_path / f"output-{number}.txt").read_text()

    metrics = _metric_lines(workspace)
    assert read_capture_log(_capture_dir(workspace) / "context.jsonl").clean
    by_run: dict[str, list[int]] = {}
    for line in metrics:
        record = line["payload"]
        by_run.setdefault(record["envelope"]["run_ref"], []).append(record["payload"]["step"])
    assert sorted(by_run) == [f"run:{PROJECT}.writer-{number}" for number in range(len(batch_sizes))]
    for run_ref, steps in by_run.items():
        assert steps == list(range(count)), f"{run_ref} has {len(steps)} metrics, not 0..{count - 1} in order"
