"""`contexta tail [--follow]`: the capture log, one readable line per captured line."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

import orjson
import pytest

from contexta import Contexta
from contexta.capture import read_capture_log
from contexta.cli._tables import display_width

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner


def _log(workspace: Path, family: str) -> Path:
    return workspace / "cache" / "capture" / f"{family}.jsonl"


def test_tail_prints_the_last_lines_one_short_line_each(cli: CliRunner, workspace: Path) -> None:
    result = cli("tail", "--lines", "5", "--workspace", workspace)

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == 5
    assert all(display_width(line) <= 80 for line in lines)
    assert lines[-1].split()[1:4] == ["run", "run:q.baseline", "baseline"]  # the last thing captured


def test_tail_of_one_family(cli: CliRunner, workspace: Path) -> None:
    result = cli("tail", "--family", "record", "-n", "3", "--workspace", workspace)
    as_json = cli("tail", "--family", "record", "-n", "3", "--workspace", workspace, "--format", "json")

    last_three = read_capture_log(_log(workspace, "record")).lines[-3:]
    kinds = {"MetricRecord": "metric", "StructuredEventRecord": "event", "TraceSpanRecord": "span"}
    assert [line.split()[1] for line in result.out.splitlines()] == [
        kinds[line["payload_type"]] for line in last_three
    ]
    assert "accuracy=0.7" in result.out
    assert json.loads(as_json.out) == last_three


def test_tail_describes_each_kind_of_line(
    cli: CliRunner, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # room for every detail

    result = cli("tail", "--lines", "1000", "--workspace", workspace)

    described = {line.split()[1]: line for line in result.out.splitlines()}
    assert set(described) >= {
        "run",
        "stage",
        "batch",
        "deployment",
        "environment",
        "metric",
        "event",
        "artifact",
    }
    assert "train/loss=0.3 step=3" in result.out
    assert "dataset.loaded: loaded 1797 rows" in result.out
    assert "[error] batch.failed: RuntimeError: out of memory" in result.out


def test_a_torn_last_line_is_not_printed(cli: CliRunner, fresh_workspace: Path) -> None:
    log = _log(fresh_workspace, "record")
    complete = read_capture_log(log).lines
    with log.open("ab") as handle:
        handle.write(b'{"captured_at": "2030-01-01T00:00:00Z", "family": "RECORD", "payl')

    result = cli("tail", "--family", "record", "-n", "2", "--format", "json", "--workspace", fresh_workspace)

    assert json.loads(result.out) == complete[-2:]


# -- following ---------------------------------------------------------------------------------------


class _Lines:
    """The lines a child process prints, read on a thread so a test can wait for them with a timeout."""

    def __init__(self, stream: IO[str]):
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"{text!r} was not printed; printed so far: {self.seen}") from None
            self.seen.append(line)
            if text in line:
                return line


def _metric_line(template: dict[str, object], key: str) -> bytes:
    line = orjson.loads(orjson.dumps(template))
    line["payload"]["payload"]["metric_key"] = key
    return orjson.dumps(line) + b"\n"


def test_follow_prints_new_lines_as_they_are_written_until_interrupted(fresh_workspace: Path) -> None:
    record_log = _log(fresh_workspace, "record")
    metric = next(
        line for line in read_capture_log(record_log).lines if line["payload_type"] == "MetricRecord"
    )
    half_written = _metric_line(metric, "half.written")
    with record_log.open("ab") as handle:  # a batch caught mid-write: must wait, not print half
        handle.write(half_written[:40])
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "contexta",
            "tail",
            "--follow",
            "-n",
            "2",
            "--workspace",
            str(fresh_workspace),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        lines = _Lines(child.stdout)
        lines.wait_for("run:q.baseline")  # the initial lines are out: the child is following
        with record_log.open("ab") as handle:
            handle.write(half_written[40:])
        lines.wait_for("half.written=")
        with Contexta(workspace=fresh_workspace, config={"project_name": "p"}) as ctx, ctx.run("late") as run:
            run.metric("late.metric", 1.5)
        lines.wait_for("late.metric=1.5")
        lines.wait_for("run:p.late  late completed")

        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=15) == 0
        assert child.stderr.read() == ""
        assert sum("half.written" in line for line in lines.seen) == 1
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
