"""A disk that refuses writes (simulated with RLIMIT_FSIZE in a child process): the program keeps
running, every loss is counted and reported, nothing half-written is left behind, and once space
returns the parked batches are delivered exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from contexta import Contexta
from contexta.capture import read_capture_log

_CHILD = textwrap.dedent(
    """
    import json, os, resource, signal, sys, warnings
    from contexta import Contexta

    warnings.simplefilter("ignore")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, writes fail with EFBIG
    workspace, batch_size, headroom = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    config = {"project_name": "p", "capture": {"max_batch_size": batch_size}}
    ctx = Contexta(workspace=workspace, config=config)
    log = os.path.join(workspace, "cache", "capture", "record.jsonl")
    result = {}
    with ctx.run("r") as run:
        for step in range(1000):
            run.metric("loss", float(step), step=step)
        ctx.flush()
        # Every file may now grow only a little past the log's size: the log fills up first.
        limit = os.path.getsize(log) + headroom
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        for step in range(1000, 3000):
            run.metric("loss", float(step), step=step)
        report = ctx.flush()
        result["while_full"] = {"errors": list(report.errors), **ctx.capture_stats().to_dict()}
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        for step in range(3000, 3500):
            run.metric("loss", float(step), step=step)
    first, second = ctx.replay_outbox(), ctx.replay_outbox()
    result["replays"] = [first.delivered_batches, first.remaining_batches, second.delivered_batches]
    ctx.close()
    print(json.dumps(result))
    """
)


def _run(workspace: Path, batch_size: int, headroom: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(workspace), str(batch_size), str(headroom)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr  # the program kept running through the full disk
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _logged_steps(workspace: Path) -> list[int]:
    log = read_capture_log(workspace / "cache" / "capture" / "record.jsonl")
    assert log.clean, f"unreadable lines {log.skipped_lines}"  # no half-written batch was left behind
    refs = [line["payload_ref"] for line in log.lines if line["payload_type"] == "MetricRecord"]
    assert len(refs) == len(set(refs)), "a record was written twice"
    return [
        line["payload"]["payload"]["step"] for line in log.lines if line["payload_type"] == "MetricRecord"
    ]


def _stored_steps(workspace: Path) -> list[int | None]:
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        return list(ctx.get_metric_series("r", "loss").steps)


def test_parked_batches_are_delivered_exactly_once_when_space_returns(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    # Small batches: the outbox (small files) still fits when the log no longer grows.
    result = _run(workspace, batch_size=16, headroom=64 * 1024)
    full = result["while_full"]
    assert full["failed"] > 0 and full["errors"]
    # Each refusing sink parks its own copy (the log and the store both hit the limit here).
    assert full["lost"] == 0 and full["outboxed"] >= full["failed"] and full["sink_failures"]
    delivered, remaining, again = result["replays"]
    assert delivered > 0 and remaining == 0 and again == 0
    assert sorted(_logged_steps(workspace)) == list(range(3500))
    assert sorted(step for step in _stored_steps(workspace) if step is not None) == list(range(3500))


def test_when_nothing_can_be_kept_the_loss_is_counted_and_the_log_stays_readable(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    # Big batches and no headroom: neither the log nor the outbox can take a batch.
    result = _run(workspace, batch_size=4096, headroom=0)
    full = result["while_full"]
    assert full["lost"] > 0 and full["lost"] == full["failed"] and full["errors"]
    logged = _logged_steps(workspace)
    assert len(logged) + full["lost"] == 3500  # every record is either in the log or counted as lost
    assert logged == sorted(logged)
    assert set(range(1000)) <= set(logged) and set(range(3000, 3500)) <= set(logged)
    assert sorted(step for step in _stored_steps(workspace) if step is not None) == list(range(3500))
