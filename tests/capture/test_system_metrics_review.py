"""Adversarial review of system metrics (issue 20, item 4): what a demanding user hits beyond the
happy path. Each test captures into a `tmp_path` workspace and reads back what the user reads."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from contexta import Contexta
from contexta.capture import CaptureWarning
from contexta.contract import StructuredEventRecord

INTERVAL = 0.05
THREAD = "contexta-system-metrics"


def _ctx(tmp_path: Path, **capture: Any) -> Contexta:
    return Contexta(workspace=tmp_path / "ws", config={"project_name": "p", "capture": capture})


def _sampler_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == THREAD]


def test_a_failed_run_is_not_blamed_on_its_system_stage(tmp_path: Path) -> None:
    """Sampling worked to the end: the `system` stage must not read as a failed stage to rerun."""
    with _ctx(tmp_path) as ctx:
        with (
            pytest.raises(RuntimeError),
            ctx.run("r", system_metrics=INTERVAL) as run,
            run.stage("train") as stage,
        ):
            stage.metric("loss", 1.0, step=0)
            time.sleep(3 * INTERVAL)
            raise RuntimeError("out of memory")
        stages = {stage.name: stage.status for stage in ctx.list_stages(run.run_id)}
        assert stages == {"system": "completed", "train": "failed"}
        failed_stages = [i.summary for i in ctx.diagnose_run(run.run_id).issues if i.code == "failed_stage"]
        assert len(failed_stages) == 1 and "'train'" in failed_stages[0]
        assert ctx.get_metric_series(run.run_id, "process.rss_bytes", stage="system").points


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_forked_child_closing_its_contexta_leaves_the_parents_run_and_sampling_alone(
    tmp_path: Path,
) -> None:
    """A DataLoader-style child that calls `ctx.close()` (or ends with the Contexta's `with`) must not
    cancel the run, the stages and the `system` stage its parent is still running."""
    with _ctx(tmp_path) as ctx:
        with ctx.run("parent", system_metrics=INTERVAL) as run, run.stage("train") as stage:
            stage.metric("loss", 1.0, step=0)
            ctx.flush()
            pid = os.fork()
            if pid == 0:
                status = 1
                try:
                    ctx.close()
                    status = 0
                finally:
                    os._exit(status)
            assert os.waitpid(pid, 0)[1] == 0
            ctx.flush()
            assert ctx.get_run(run.run_id).status == "open"
            assert {s.name: s.status for s in ctx.list_stages(run.run_id)} == {
                "system": "open",
                "train": "open",
            }
            time.sleep(3 * INTERVAL)
            stage.metric("loss", 0.5, step=1)
            assert len(_sampler_threads()) == 1
        assert ctx.get_run(run.run_id).status == "completed"
        assert {s.name: s.status for s in ctx.list_stages(run.run_id)} == {
            "system": "completed",
            "train": "completed",
        }
        assert not [e for e in ctx.get_run_snapshot(run.run_id).records if e.envelope.record_type == "event"]


@pytest.mark.parametrize("source", ["disk_io_counters", "net_io_counters", "cpu_percent"])
def test_one_unreadable_source_at_the_start_costs_only_its_own_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """A sandbox or container without /proc/diskstats (psutil raises NotImplementedError) or
    /proc/net/dev must still get its CPU and memory figures: one source failing on the first reading
    stopped the sampler before its first sample."""

    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{source}: couldn't find /proc/diskstats or /sys/block")

    monkeypatch.setattr(psutil, source, unreadable)
    with _ctx(tmp_path) as ctx:
        with pytest.warns(CaptureWarning, match=source), ctx.run("r", system_metrics=INTERVAL) as run:
            time.sleep(6 * INTERVAL)
        rss = ctx.get_metric_series(run.run_id, "process.rss_bytes", stage="system").points
        assert len(rss) >= 2 and all(point.value > 1_000_000 for point in rss)
        events = [r for r in ctx.get_run_snapshot(run.run_id).records if isinstance(r, StructuredEventRecord)]
        assert [event.payload.event_key for event in events] == ["system_metrics.sample_failed"]
