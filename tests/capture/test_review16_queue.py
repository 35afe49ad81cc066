"""Review of issue 16 (a caller that never stalls): the queue's limit mirrored in `limit_cell`.

`capture.queue_capacity` is validated as any positive int, so a job that wants a queue that never
fills sets a very large one (2**63, 2**64). The limit was a Python attribute, compared with the
deque's length as a Python int; `limit_cell` is an array('q'), which cannot hold a number past
2**63 - 1, and storing one raised OverflowError while the queue was built: `Contexta(...)` itself
failed. The cell now holds the limit clamped to the largest int64, which no deque's length reaches,
so every comparison gives what the attribute gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture import InMemorySink
from contexta.capture._pipeline._queue import CaptureQueue


def _steps(sink: InMemorySink, key: str) -> list[Any]:
    return [
        entry.payload["payload"]["step"]
        for entry in sink.entries
        if entry.payload_type == "MetricRecord" and entry.payload["payload"]["metric_key"] == key
    ]


@pytest.mark.parametrize("capacity", [2**63 - 1, 2**63, 2**64, 10**30])
def test_a_queue_capacity_past_int64_opens_and_captures_everything(tmp_path: Path, capacity: int) -> None:
    sink = InMemorySink()
    with Contexta(
        workspace=tmp_path / ".contexta",
        config={"project_name": "p", "capture": {"queue_capacity": capacity}},
        sinks=[sink],
    ) as ctx:
        with ctx.run("r") as run, run.stage("train") as stage:
            for step in range(500):
                stage.metric("loss", float(step), step=step)
            stage.metrics({"a": 1.0, "b": 2}, step=7)
        ctx.flush()
        assert _steps(sink, "loss") == list(range(500))
        assert _steps(sink, "a") == [7] and _steps(sink, "b") == [7]


def test_a_capture_queue_past_int64_follows_its_limit_as_before() -> None:
    queue = CaptureQueue(capacity=2**64, wake_threshold=2**70, overflow="block", block_timeout_s=1.0)
    assert queue.limit == 2**64 and queue.wake_threshold == 2**64
    assert queue.put(("item",)) and len(queue) == 1
    queue._set_writer_idle(True)
    assert queue.limit == 2**64
    queue.close()
    assert queue.limit == 0 and queue.limit_cell[0] == 0
    queue.reinit_after_fork()
    assert queue.limit == 2**64 and queue.put(("item",))
