"""TensorBoard's event-file format through tensorboardX: `SummaryWriter.add_scalar("loss", v, step)`.

tensorboardX queues events for its own writer thread and flushes every 120 s by default; durable
means `writer.close()` has returned. Read back by walking the event file's TFRecord framing and
decoding each record with tensorboardX's own `Event` protobuf (no TensorBoard install needed).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import workload_timing
from tensorboardX import SummaryWriter
from tensorboardX.proto import event_pb2

LOG_DIR = "tensorboard"


def open_session(workdir: Path) -> workload_timing.Session:
    """A writer on a fresh log directory."""
    writer = SummaryWriter(logdir=str(workdir / LOG_DIR))
    add_scalar = writer.add_scalar

    def log(step: int, value: float) -> None:
        add_scalar("loss", value, step)

    return workload_timing.Session(log=log, finish=writer.close)


def _records(path: Path) -> Iterator[bytes]:
    """The payloads of a TFRecord file: u64 length, u32 crc, payload, u32 crc (crcs not checked)."""
    with path.open("rb") as events:
        while header := events.read(12):
            (length,) = struct.unpack("<Q", header[:8])
            payload = events.read(length)
            events.read(4)
            yield payload


def read_back(workdir: Path) -> int:
    """Scalar values tagged "loss" across the event files the writer left."""
    count = 0
    for path in (workdir / LOG_DIR).glob("events.out.tfevents.*"):
        for payload in _records(path):
            event = event_pb2.Event.FromString(payload)
            count += sum(1 for value in event.summary.value if value.tag == "loss")
    return count


if __name__ == "__main__":
    workload_timing.main(
        open_session=open_session, read_back=read_back, distributions=("tensorboardX", "protobuf")
    )
