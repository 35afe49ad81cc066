"""Putting a capture item on the shared queue from async code: room is awaited, never blocked for.

The sync facade's `block` policy makes the caller wait on a condition; an event loop must not, so
an async caller that finds the queue full sleeps (anyio, so asyncio and trio alike) in short, growing
steps while the writer drains, and gives up after `block_timeout_s` exactly as a sync caller would.
The `drop_*` policies never wait in either facade.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from contexta.capture._pipeline._queue import CaptureQueue
from contexta.capture._pipeline._results import ACCEPTED, DROPPED, CaptureResult

__all__ = ["await_room", "enqueue"]

_FIRST_PAUSE_S = 0.0005
_LONGEST_PAUSE_S = 0.02


async def enqueue(queue: CaptureQueue, item: tuple[Any, ...]) -> CaptureResult:
    """Queue `item` (through `CaptureQueue.offer`, hence its `put`); under `block` with a full queue,
    await room (up to the queue's block timeout)."""
    offered = queue.offer(item)
    if offered is None:
        offered = await await_room(queue, item)
    return ACCEPTED if offered else DROPPED


async def await_room(queue: CaptureQueue, item: tuple[Any, ...]) -> bool:
    """Offer `item` again after growing pauses, once `offer` found the queue full under `block`:
    True once queued, False once dropped (by the policy, or after the queue's block timeout)."""
    deadline = time.monotonic() + queue.block_timeout_s
    pause = _FIRST_PAUSE_S
    while True:
        await anyio.sleep(pause)
        offered = queue.offer(item)
        if offered is not None:
            return offered
        if time.monotonic() >= deadline:
            queue.give_up_waiting(item)
            return False
        pause = min(pause * 2, _LONGEST_PAUSE_S)
