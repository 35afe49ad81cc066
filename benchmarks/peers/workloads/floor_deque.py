"""Floor: append a timestamped tuple to a `collections.deque`, the cheapest enqueue Python has.

Nothing is ever written, so "durable" is immediate and the read-back is the deque's length.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import workload_timing

LOGGED: collections.deque[tuple[int, str, float, int]] = collections.deque()


def open_session(workdir: Path) -> workload_timing.Session:
    """A deque that every call appends `(time_ns, key, value, step)` to."""
    LOGGED.clear()
    append = LOGGED.append
    clock = time.time_ns

    def log(step: int, value: float) -> None:
        append((clock(), "loss", value, step))

    return workload_timing.Session(log=log, finish=lambda: None)


def read_back(workdir: Path) -> int:
    return len(LOGGED)


if __name__ == "__main__":
    workload_timing.main(open_session=open_session, read_back=read_back)
