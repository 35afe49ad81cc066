"""Floor: a queue and one background thread that writes batches of orjson lines to a file.

The smallest honest version of "enqueue in the caller, serialise and write in a worker": the caller
puts a timestamped tuple on a `queue.SimpleQueue` (unbounded, implemented in C); the thread drains up
to BATCH items at a time, encodes each as one JSON line with orjson and writes the batch. `finish()`
sends a sentinel, joins the thread and closes the file.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import orjson
import workload_timing

BATCH = 4_096
STOP = None
LOG_NAME = "metrics.jsonl"


def _write_batches(items: queue.SimpleQueue[tuple[int, str, float, int] | None], path: Path) -> None:
    """Block for one item, drain what else is queued (up to BATCH), write it, until the sentinel."""
    dumps = orjson.dumps
    with path.open("wb") as log:
        while True:
            batch = [items.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(items.get_nowait())
                except queue.Empty:
                    break
            done = batch[-1] is STOP
            lines = [
                dumps({"t": item[0], "key": item[1], "value": item[2], "step": item[3]})
                for item in batch
                if item is not STOP
            ]
            if lines:
                log.write(b"\n".join(lines) + b"\n")
            if done:
                return


def open_session(workdir: Path) -> workload_timing.Session:
    """A queue drained by a writer thread into `workdir/metrics.jsonl`."""
    items: queue.SimpleQueue[tuple[int, str, float, int] | None] = queue.SimpleQueue()
    writer = threading.Thread(target=_write_batches, args=(items, workdir / LOG_NAME), daemon=True)
    writer.start()
    put = items.put
    clock = time.time_ns

    def log(step: int, value: float) -> None:
        put((clock(), "loss", value, step))

    def finish() -> None:
        items.put(STOP)
        writer.join()

    return workload_timing.Session(log=log, finish=finish)


def read_back(workdir: Path) -> int:
    with (workdir / LOG_NAME).open("rb") as lines:
        return sum(1 for line in lines if orjson.loads(line)["key"] == "loss")


if __name__ == "__main__":
    workload_timing.main(open_session=open_session, read_back=read_back, distributions=("orjson",))
