"""Background work that makes way for the threads that capture.

Why: the writer, the sink lanes and the environment snapshot run in the capturing process, and in
CPython only one thread runs Python at a time. A thread that asks for the GIL gets it when the holder
lets go (a blocking call, a sleep) or, failing that, after the switch interval: 5 ms by default. A
training loop that logged while the store lane grouped a batch's metrics or encoded its chunks
waited up to a switch interval for a single call, more when two background threads took turns.

`make_way()` goes between pieces of background work: once a thread has held the GIL for `SLICE_NS`
or more since its last pause, it lets go for a moment (`time.sleep(0)`), and a capturing thread that
waits takes the GIL at once instead of after the switch interval. Without a waiter the pause costs
about a microsecond. A caller then waits for one piece at a time, not for a switch interval.

The price: a background thread that let go while the caller runs Python non-stop gets the GIL back
only after the switch interval. So the writer pauses once per batch, not between its steps (a pause
inside its take halved what it moved out of the queue and the queue filled), and the lanes pause
between the pieces of a batch, whose work can wait. Measured and left out: making the lanes wait out
a caller's burst altogether made the caller slower (mean 2.2x -> 3.1-3.4x the floor), because the
log-writer process and SQLite do most of their work without the GIL, on another core, and deferring
them moved it all into the caller's way at the end of the burst (docs/benchmarks.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["SLICE_NS", "each_making_way", "make_way", "new_slice"]

# How long a background thread holds the GIL before its next pause (0.3 ms; a piece already begun is
# finished first, so a hold is this plus one piece).
SLICE_NS = 300_000
T = TypeVar("T")
_slices = threading.local()


def new_slice() -> None:
    """Start this thread's slice afresh: call it after a wait that let go of the GIL (a lane woken for
    a batch), so its first pause comes a whole slice later rather than at once."""
    _slices.since = time.perf_counter_ns()


def make_way() -> None:
    """Between two pieces of background work: let a waiting capturing thread have the GIL if this
    thread has held it for `SLICE_NS` or more since its last pause."""
    now = time.perf_counter_ns()
    if now - getattr(_slices, "since", 0) >= SLICE_NS:
        time.sleep(0)  # lets go of the GIL; a thread waiting for it is woken and takes it
        _slices.since = time.perf_counter_ns()


def each_making_way(items: Iterable[T]) -> Iterator[T]:
    """`items`, making way (see `make_way`) before each: for a loop whose every turn is a piece of
    background work (a series' chunk encoded, a batch's segments sent)."""
    for item in items:
        make_way()
        yield item
