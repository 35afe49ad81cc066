"""Run one workload script in a tracker's interpreter, as a subprocess with a timeout.

Each measurement is its own process in its own fresh directory, so peak RSS, imports and files never
carry over from one tool or repeat to the next. The workload prints `PEER-RESULT {json}` on stdout;
anything else a tracker prints (banners, warnings) is kept only for the error message.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKLOADS = Path(__file__).resolve().parent / "workloads"
RESULT_MARKER = "PEER-RESULT "


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one workload process gave: its result line, or why there is none."""

    result: dict[str, Any] | None
    error: str | None
    wall_s: float


@dataclass(frozen=True, slots=True)
class WorkloadSize:
    """How much work one process does: sync calls and timed sample, async tasks x metrics."""

    calls: int
    sample: int
    tasks: int
    per_task: int


def run_workload(
    python: Path,
    script: str,
    mode: str,
    size: WorkloadSize,
    *,
    arguments: Sequence[str],
    env: Mapping[str, str],
    timeout_s: float,
    scratch: Path | None,
    keep_workdir: bool,
) -> Outcome:
    """Run `workloads/<script>` in `mode` ("sync" or "async") in a fresh directory; never raises."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{Path(script).stem}-{mode}-", dir=scratch))
    command = [
        str(python),
        str(WORKLOADS / script),
        f"--mode={mode}",
        f"--workdir={workdir}",
        f"--calls={size.calls}",
        f"--sample={size.sample}",
        f"--tasks={size.tasks}",
        f"--per-task={size.per_task}",
        *arguments,
    ]
    # The workload imports its timing helper from workloads/, and nothing else from this repository.
    process_env = {**os.environ, **env, "PYTHONPATH": str(WORKLOADS)}
    started = time.perf_counter()
    try:
        returncode, stdout, stderr = _run_in_own_group(command, workdir, process_env, timeout_s)
    except subprocess.TimeoutExpired:
        return Outcome(None, f"timed out after {timeout_s:g} s", time.perf_counter() - started)
    finally:
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    wall_s = time.perf_counter() - started
    result = _result_line(stdout)
    if returncode != 0 or result is None:
        return Outcome(None, _failure_reason(returncode, stderr or stdout), wall_s)
    return Outcome(result, None, wall_s)


def _run_in_own_group(
    command: Sequence[str], workdir: Path, env: Mapping[str, str], timeout_s: float
) -> tuple[int, str, str]:
    """Run `command` in a new process group; on timeout end that group, helper processes included
    (W&B's service, MLflow's workers), so nothing outlives its measurement."""
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return process.returncode, stdout, stderr


def _result_line(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            parsed: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return parsed
    return None


def _failure_reason(returncode: int, output: str) -> str:
    """The exception line of a traceback, else the last line, else the exit status."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.split(":", 1)[0].endswith(("Error", "Exception", "Exit"))]
    reason = (errors or lines or [f"exit status {returncode}"])[-1]
    return f"{reason[:300]} (exit {returncode})"
