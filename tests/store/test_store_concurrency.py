"""The canonical store under several processes: concurrent writers, a shared run, a reader during a
write, a forked worker, and several processes opening a brand-new store at once.

Every capturing process is a child interpreter (`sys.executable -c <script>`), so the pytest process
never forks; the test then opens a fresh `Contexta` on the same workspace and asks the store.

The capture scenarios create the store before starting their children, so each one tests what it names;
creating a store from several processes at once has a test of its own (the last one).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from contexta import Contexta
from contexta.capture import read_capture_log

PROJECT = "p"
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 120.0

# The go signal: a child gets ready (opens its Contexta), touches `ready-<number>`, then waits for `go`.
_WAIT_FOR_GO = """
import os
import pathlib
import sys
import time

from contexta import Contexta


def wait_for(path, what):
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"gave up waiting for {what}")
        time.sleep(0.005)


def ready_then_wait_for_go(number):
    pathlib.Path(f"ready-{number}").touch()
    wait_for("go", "the go signal")
"""


def _script(body: str, **constants: Any) -> str:
    """A child program: `constants` become module-level names, then the go-signal helpers and `body`."""
    header = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    return header + _WAIT_FOR_GO + textwrap.dedent(body)


class Children:
    """Child interpreters started from the test; stdout and stderr go to files under `cwd`."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.processes: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []

    def start(self, name: str, script: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.cwd / f"{name}.out", "wb") as out, open(self.cwd / f"{name}.err", "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-c", script, *args], cwd=self.cwd, stdout=out, stderr=err
            )
        self.processes.append(process)
        self.names.append(name)
        return process

    def stderr(self, name: str) -> str:
        return (self.cwd / f"{name}.err").read_text(errors="replace")

    def _check_exit(self, name: str, code: int) -> None:
        stderr = self.stderr(name)
        assert code == 0, f"{name} exited {code}:\n{stderr}"
        assert "Traceback" not in stderr, f"{name} printed a traceback:\n{stderr}"
        assert "locked" not in stderr.lower(), f"{name} reported a lock error:\n{stderr}"
        assert not stderr.strip(), f"{name} printed to stderr:\n{stderr}"

    def _check_others(self) -> None:
        """Fail at once when any child has already failed (instead of waiting out a timeout)."""
        for process, name in zip(self.processes, self.names, strict=True):
            code = process.poll()
            if code is not None and code != 0:
                self._check_exit(name, code)

    def wait_for_files(self, names: Sequence[str], timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not all((self.cwd / name).exists() for name in names):
            for process, child in zip(self.processes, self.names, strict=True):
                code = process.poll()
                assert code is None, f"{child} exited {code} early:\n{self.stderr(child)}"
            assert time.monotonic() < deadline, f"{names} did not appear within {timeout}s"
            time.sleep(0.01)

    def wait(self, name: str, timeout: float = RUN_TIMEOUT_S) -> None:
        """Wait for one child: it must exit 0 with nothing on stderr (no traceback, no lock error, no
        capture warning). A failure of any other child ends the wait at once."""
        process = self.processes[self.names.index(name)]
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            self._check_others()
            assert time.monotonic() < deadline, f"{name} did not finish within {timeout}s"
            time.sleep(0.02)
        self._check_exit(name, process.returncode)

    def kill_leftovers(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@contextmanager
def children(cwd: Path) -> Iterator[Children]:
    group = Children(cwd)
    try:
        yield group
    finally:
        group.kill_leftovers()


def _create_store(workspace: Path) -> None:
    """Create (and migrate) the workspace's store now, before any child opens it."""
    Contexta(workspace=workspace, config={"project_name": PROJECT}).close()


@contextmanager
def reopened(workspace: Path) -> Iterator[Contexta]:
    """A new Contexta on the workspace the children wrote (it captures nothing itself)."""
    ctx = Contexta(workspace=workspace, config={"project_name": PROJECT})
    try:
        yield ctx
    finally:
        ctx.close()


def _assert_capture_logs_parse(workspace: Path) -> None:
    for name in ("record.jsonl", "context.jsonl"):
        log = read_capture_log(workspace / "cache" / "capture" / name)
        assert log.clean, f"unreadable lines {log.skipped_lines} (torn tail: {log.torn_tail}) in {log.path}"


def _steps(ctx: Contexta, run_id: str, key: str, stage: str | None = None) -> list[int | None]:
    return [point.step for point in ctx.get_metric_series(run_id, key, stage=stage).points]


def test_three_processes_capture_into_one_workspace_at_the_same_time(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    _create_store(workspace)
    count = 20_000
    writers = 3
    script = _script(
        """
        number = int(sys.argv[1])
        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        ready_then_wait_for_go(number)
        with ctx.run(f"writer-{number}") as run:
            with run.stage("train") as stage:
                for i in range(COUNT):
                    stage.metric("loss", 1.0 / (i + 1), step=i)
        ctx.close()
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        COUNT=count,
    )
    with children(tmp_path) as group:
        for number in range(writers):
            group.start(f"writer-{number}", script, str(number))
        group.wait_for_files([f"ready-{number}" for number in range(writers)])
        (tmp_path / "go").touch()
        for number in range(writers):
            group.wait(f"writer-{number}")

    _assert_capture_logs_parse(workspace)
    with reopened(workspace) as ctx:
        runs = ctx.list_runs()
        assert sorted((run.run_id, run.status) for run in runs) == [
            (f"run:{PROJECT}.writer-{number}", "completed") for number in range(writers)
        ]
        for number in range(writers):
            run_id = f"run:{PROJECT}.writer-{number}"
            series = ctx.get_metric_series(run_id, "loss")
            steps = [point.step for point in series.points]
            assert steps == list(range(count)), (
                f"{run_id} has {len(steps)} points, not 0..{count - 1} in order"
            )
            assert {point.stage_id for point in series.points} == {f"stage:{PROJECT}.writer-{number}.train"}


def test_two_processes_capture_into_the_same_run_at_the_same_time(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    _create_store(workspace)
    count = 20_000
    # The first process opens the run (and makes the open durable) before either starts capturing. The
    # second opens the same name with resume=True: a plain re-run of a name replaces the earlier
    # execution in the store, and whether it would instead join depends on timing (only a run still open
    # in a live process is joined; one that already finished is replaced). resume=True says "continue
    # this run" whatever the other process is doing, so both processes' records must stay.
    script = _script(
        """
        number = int(sys.argv[1])
        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        if number == 0:
            run = ctx.run("shared")
            ctx.flush(timeout=60)
            ready_then_wait_for_go(number)
        else:
            ready_then_wait_for_go(number)
            run = ctx.run("shared", resume=True)
        with run:
            with run.stage(f"worker-{number}") as stage:
                for i in range(COUNT):
                    stage.metric("loss", float(number), step=i)
        ctx.close()
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        COUNT=count,
    )
    with children(tmp_path) as group:
        for number in range(2):
            group.start(f"worker-{number}", script, str(number))
        group.wait_for_files(["ready-0", "ready-1"])
        (tmp_path / "go").touch()
        group.wait("worker-0")
        group.wait("worker-1")

    _assert_capture_logs_parse(workspace)
    run_id = f"run:{PROJECT}.shared"
    with reopened(workspace) as ctx:
        assert [(run.run_id, run.status) for run in ctx.list_runs()] == [(run_id, "completed")]
        assert sorted(stage.name for stage in ctx.list_stages(run_id)) == ["worker-0", "worker-1"]
        series = ctx.get_metric_series(run_id, "loss")
        assert len(series.points) == 2 * count
        for number in range(2):
            stage_id = f"stage:{PROJECT}.shared.worker-{number}"
            own = [point for point in series.points if point.stage_id == stage_id]
            assert [point.step for point in own] == list(range(count)), f"worker-{number} lost points"
            assert {point.value for point in own} == {float(number)}
            assert _steps(ctx, run_id, "loss", stage=f"worker-{number}") == list(range(count))


def test_a_reader_process_polls_while_a_writer_process_captures(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    _create_store(workspace)
    count = 200_000
    half = count // 2
    run_id = f"run:{PROJECT}.stream"
    constants = {
        "WORKSPACE": str(workspace),
        "PROJECT": PROJECT,
        "RUN_ID": run_id,
        "COUNT": count,
        "HALF": half,
    }
    # Half-way the writer makes its first half durable and waits until the reader has seen it, so the
    # reader provably reads the series while the run is open and being written.
    writer = _script(
        """
        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        wait_for("reader-polling", "the reader")
        with ctx.run("stream") as run:
            with run.stage("train") as stage:
                for i in range(HALF):
                    stage.metric("loss", float(i), step=i)
                ctx.flush(timeout=60)
                wait_for("reader-saw-half", "the reader to see the first half")
                for i in range(HALF, COUNT):
                    stage.metric("loss", float(i), step=i)
        ctx.close()
        """,
        **constants,
    )
    # The reader checks for "writer-exited" before it reads, so its last read starts after the writer
    # has exited. It fails (traceback, exit 1) on any error or on a series that is not 0..n-1 in order.
    reader = _script(
        """
        import json

        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        counts = []
        statuses = []
        pathlib.Path("reader-polling").touch()
        deadline = time.monotonic() + 120
        while True:
            writer_exited = os.path.exists("writer-exited")
            runs = [run for run in ctx.list_runs() if run.run_id == RUN_ID]
            if runs:
                statuses.append(runs[0].status)
                points = ctx.get_metric_series(RUN_ID, "loss").points
                steps = [point.step for point in points]
                if steps != list(range(len(steps))):
                    sys.exit(f"read a series that is not 0..{len(steps) - 1} in order")
                counts.append(len(steps))
                if len(steps) >= HALF:
                    pathlib.Path("reader-saw-half").touch()
            if writer_exited:
                break
            if time.monotonic() > deadline:
                sys.exit("the writer never finished")
            time.sleep(0.01)
        ctx.close()
        pathlib.Path("reader.json").write_text(json.dumps({"counts": counts, "statuses": statuses}))
        """,
        **constants,
    )
    with children(tmp_path) as group:
        group.start("reader", reader)
        group.start("writer", writer)
        group.wait("writer")
        (tmp_path / "writer-exited").touch()
        group.wait("reader")

    observed = json.loads((tmp_path / "reader.json").read_text())
    counts: list[int] = observed["counts"]
    assert counts, "the reader never saw the run"
    assert all(a <= b for a, b in itertools.pairwise(counts)), f"counts went down: {counts}"
    assert half in counts, "the reader never read the series while the writer was paused half-way"
    assert counts[-1] == count
    assert "open" in observed["statuses"]
    assert observed["statuses"][-1] == "completed"
    with reopened(workspace) as ctx:
        assert _steps(ctx, run_id, "loss") == list(range(count))


def test_forked_multiprocessing_child_captures_samples_into_the_parents_stage(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    samples = 200
    # The worker neither flushes nor closes: its exit finalizer has to deliver its records to the store.
    script = _script(
        """
        import multiprocessing

        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})

        def work():
            for i in range(SAMPLES):
                with stage.sample(f"s-{i}") as sample:
                    sample.metric("score", float(i), step=i)

        with ctx.run("r") as run:
            with run.stage("train") as stage:
                stage.metric("parent.before", 1.0)
                worker = multiprocessing.get_context("fork").Process(target=work)
                worker.start()
                worker.join(60)
                stage.metric("parent.after", 2.0)
        ctx.close()
        sys.exit(worker.exitcode)
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        SAMPLES=samples,
    )
    with children(tmp_path) as group:
        group.start("parent", script)
        group.wait("parent")

    _assert_capture_logs_parse(workspace)
    run_id = f"run:{PROJECT}.r"
    stage_id = f"stage:{PROJECT}.r.train"
    with reopened(workspace) as ctx:
        assert [(run.run_id, run.status) for run in ctx.list_runs()] == [(run_id, "completed")]
        stored = ctx.list_samples(run_id)
        assert sorted(sample.name for sample in stored) == sorted(f"s-{i}" for i in range(samples))
        assert {sample.stage_id for sample in stored} == {stage_id}
        assert {sample.status for sample in stored} == {"completed"}
        points = ctx.get_metric_series(run_id, "score").points
        assert [point.step for point in points] == list(range(samples))
        assert [point.sample_id for point in points] == [
            f"sample:{PROJECT}.r.train.s-{i}" for i in range(samples)
        ]
        assert {point.stage_id for point in points} == {stage_id}
        assert _steps(ctx, run_id, "parent.before") == [None]
        assert _steps(ctx, run_id, "parent.after") == [None]


def test_several_processes_open_a_brand_new_workspace_at_once(tmp_path: Path) -> None:
    # Three training jobs started together on a fresh workspace all create and migrate the store at the
    # same moment. Each round the children meet at a file barrier and then open a new workspace within
    # about a millisecond of each other; several rounds, because a lost race is not certain in any one.
    rounds = 15
    openers = 3
    script = _script(
        """
        number = int(sys.argv[1])
        for round_number in range(ROUNDS):
            pathlib.Path(f"arrived-{round_number}-{number}").touch()
            others = [f"arrived-{round_number}-{other}" for other in range(OPENERS)]
            deadline = time.monotonic() + 60
            while not all(os.path.exists(path) for path in others):
                if time.monotonic() > deadline:
                    sys.exit(f"round {round_number}: the other openers never arrived")
                time.sleep(0.0002)
            ctx = Contexta(workspace=f"workspace-{round_number}", config={"project_name": PROJECT})
            with ctx.run(f"opener-{number}") as run:
                run.metric("opened", 1, step=round_number)
            ctx.close()
        """,
        PROJECT=PROJECT,
        ROUNDS=rounds,
        OPENERS=openers,
    )
    with children(tmp_path) as group:
        for number in range(openers):
            group.start(f"opener-{number}", script, str(number))
        for number in range(openers):
            group.wait(f"opener-{number}")

    for round_number in range(rounds):
        with reopened(tmp_path / f"workspace-{round_number}") as ctx:
            assert sorted((run.name, run.status) for run in ctx.list_runs()) == [
                (f"opener-{number}", "completed") for number in range(openers)
            ], f"workspace-{round_number}"
