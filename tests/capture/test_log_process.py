"""The log-writer process: under sustained load it writes the capture log's metric lines, and what it
writes must be what this process would have written, in order, with nothing lost if it dies."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import orjson
import pytest
from log_checks import assert_log_matches_generic_encoding

from contexta import Contexta
from contexta.capture import (
    CaptureBatch,
    CaptureWarning,
    FlushReport,
    InMemorySink,
    LocalJsonlSink,
    read_capture_log,
)


class _SlowFirstWrite(InMemorySink):
    """Holds the writer back once, so the queue backs up and the following batches are full: the
    load that starts the log-writer process, made deterministic."""

    def __init__(self) -> None:
        super().__init__(name="slow-first")
        self._slowed = False

    def write(self, batch: CaptureBatch) -> None:
        if not self._slowed:
            self._slowed = True
            time.sleep(0.3)
        super().write(batch)


def _contexta(workspace: Path, *sinks: Any) -> Contexta:
    return Contexta(workspace=workspace, config={"project_name": "p"}, sinks=list(sinks))


def _capture(ctx: Contexta, scope: Any, steps: range) -> FlushReport:
    """`scope.metric("loss", step, step=step)` for every step, then flush: with the writer held back
    once (_SlowFirstWrite), enough to start the log-writer process."""
    for step in steps:
        scope.metric("loss", float(step), step=step)
    return ctx.flush()


def _metric_lines(log: LocalJsonlSink) -> list[dict[str, Any]]:
    read = read_capture_log(log.file_path_for("RECORD"))
    assert not read.skipped_lines
    return [line for line in read.lines if line["payload_type"] == "MetricRecord"]


def test_under_load_the_log_process_writes_what_the_generic_encoder_would(tmp_path: Path) -> None:
    memory, log = _SlowFirstWrite(), LocalJsonlSink(tmp_path / "capture")
    ctx = _contexta(tmp_path / ".contexta", memory, log)
    with ctx.run("r") as run, run.stage("s") as stage:
        for step in range(20_000):
            # Now and then a NaN or an infinity: those lines come from the generic encoder, between
            # the columns the log-writer process assembles.
            loss = (math.nan, math.inf, -math.inf)[step % 3] if step % 997 == 1 else 1.0 / (step + 1)
            stage.metrics({"loss": loss, "accuracy": step / 20_000}, step=step)
            if step % 1000 == 0:
                stage.event("checkpoint", message=f"step {step}")
        ctx.flush()
        used = log.log_process_pid
    ctx.close()
    assert used is not None, "full batches should have started the log-writer process"
    lines = assert_log_matches_generic_encoding(memory, log)
    assert [line["payload"]["payload"]["value"] for line in lines].count("NaN") == 7
    assert log.log_process_pid is None  # closed with the sink


def test_the_log_process_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = LocalJsonlSink(tmp_path / "capture", log_process=False)
    ctx = _contexta(tmp_path / ".contexta", _SlowFirstWrite(), log)
    with ctx.run("r") as run:
        _capture(ctx, run, range(20_000))
        assert log.log_process_pid is None
    ctx.close()
    assert [line["payload"]["payload"]["step"] for line in _metric_lines(log)] == list(range(20_000))
    # The default sink follows capture.log_process, which the environment can set.
    monkeypatch.setenv("CONTEXTA_CAPTURE_LOG_PROCESS", "0")
    with Contexta(workspace=tmp_path / "env", config={"project_name": "p"}) as from_env:
        assert from_env.config.capture.log_process is False


def test_a_killed_log_process_loses_no_record_and_says_so(tmp_path: Path) -> None:
    log = LocalJsonlSink(tmp_path / "capture")
    ctx = _contexta(tmp_path / ".contexta", _SlowFirstWrite(), log)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ctx.run("r") as run:
            _capture(ctx, run, range(20_000))
            pid = log.log_process_pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            report = _capture(ctx, run, range(20_000, 60_000))
        stats = ctx.capture_stats()
        ctx.close()
    assert (stats.dropped, stats.failed, stats.lost) == (0, 0, 0), report.errors
    assert any(
        issubclass(warning.category, CaptureWarning) and "log-writer process" in str(warning.message)
        for warning in caught
    )
    steps = [line["payload"]["payload"]["step"] for line in _metric_lines(log)]
    # Every record is there, in order; one batch may appear twice if the process died after writing it.
    assert sorted(set(steps)) == list(range(60_000))
    assert len(steps) - 60_000 <= 4096
    first_seen = list(dict.fromkeys(steps))
    assert first_seen == list(range(60_000))


def test_a_forked_child_starts_its_own_log_process(tmp_path: Path) -> None:
    log = LocalJsonlSink(tmp_path / "capture")
    ctx = _contexta(tmp_path / ".contexta", _SlowFirstWrite(), log)
    with ctx.run("parent") as run:
        _capture(ctx, run, range(20_000))
        parent_pid = log.log_process_pid
        assert parent_pid is not None
        pid = os.fork()
        if pid == 0:  # the child: its own queue, writer and (under load) log-writer process
            status = 1
            try:
                child_sink = next(sink for sink in ctx.sinks if isinstance(sink, _SlowFirstWrite))
                child_sink._slowed = False  # hold its writer back once too
                with ctx.run("child") as child_run:
                    _capture(ctx, child_run, range(20_000))
                    child_pid = log.log_process_pid
                ctx.close()
                status = 0 if child_pid not in (None, parent_pid) else 3
            finally:
                os._exit(status)
        _, code = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(code) == 0
        _capture(ctx, run, range(20_000, 30_000))
        assert log.log_process_pid == parent_pid  # the child's exit did not disturb the parent's
    ctx.close()
    by_run: dict[str, list[int]] = {}
    for line in _metric_lines(log):
        by_run.setdefault(line["payload"]["envelope"]["run_ref"], []).append(
            line["payload"]["payload"]["step"]
        )
    assert by_run == {"run:p.parent": list(range(30_000)), "run:p.child": list(range(20_000))}


_FULL_DISK_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys, time, warnings
    from contexta import Contexta
    from contexta.capture import InMemorySink, LocalJsonlSink

    warnings.simplefilter("ignore")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, writes fail with EFBIG
    # Set before the log-writer process starts, so it inherits the limit too.
    resource.setrlimit(resource.RLIMIT_FSIZE, (8_000_000, resource.RLIM_INFINITY))

    class SlowFirstWrite(InMemorySink):
        slowed = False
        def write(self, batch):
            if not self.slowed:
                self.slowed = True
                time.sleep(0.3)

    log = LocalJsonlSink(sys.argv[1] + "/capture")
    # Batches of 4,096 (~2.5 MB of lines): several fit under the limit before it is reached, and a
    # parked one fits in the outbox's own file.
    config = {"project_name": "p", "capture": {"max_batch_size": 4096}}
    ctx = Contexta(workspace=sys.argv[1] + "/ws", config=config, sinks=[SlowFirstWrite(), log])
    with ctx.run("r") as run:
        for step in range(40_000):
            run.metric("loss", float(step), step=step)
        report = ctx.flush()
        used = log.log_process_pid is not None
    stats = ctx.capture_stats()
    ctx.close()
    print(json.dumps({"used": used, "errors": list(report.errors), **stats.to_dict()}))
    """
)


def test_a_full_disk_under_the_log_process_parks_whole_batches(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr  # the program kept running through the full disk
    result = json.loads(done.stdout)
    assert result["used"], "the load should have started the log-writer process"
    assert result["outboxed"] > 0 and result["lost"] == 0
    assert any("parked" in error for error in result["errors"])
    log = read_capture_log(tmp_path / "capture" / "record.jsonl")
    assert log.clean, f"unreadable lines {log.skipped_lines}"  # no half-written batch was left behind
    steps = [
        line["payload"]["payload"]["step"] for line in log.lines if line["payload_type"] == "MetricRecord"
    ]
    assert steps == sorted(set(steps)) and 0 < len(steps) < 40_000
    # What the log lacks is what the outbox holds: every metric is somewhere, once. (The outbox may
    # hold the run's environment snapshot too, when it was queued among the refused batches.)
    parked_lines = [
        orjson.loads(line)
        for path in sorted((tmp_path / "ws" / "cache" / "outbox").glob("*/*.jsonl"))
        for line in path.read_bytes().splitlines()[1:]  # after the batch's header
    ]
    parked = [
        line["payload"]["payload"]["step"] for line in parked_lines if line["payload_type"] == "MetricRecord"
    ]
    assert len(parked_lines) == result["outboxed"]
    assert sorted(steps + parked) == list(range(40_000))
