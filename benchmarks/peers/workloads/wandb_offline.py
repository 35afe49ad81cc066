"""Weights & Biases in offline mode (WANDB_MODE=offline): `wandb.log({"loss": value}, step=step)`.

The runner sets WANDB_MODE=offline, so the run is written to `wandb/offline-run-*/run-*.wandb` in the
working directory by W&B's own service process (`wandb-core`), ready for `wandb sync`. Durable means
`wandb.finish()` has returned. Read back by decoding that file and counting the history rows that
carry "loss". W&B no longer ships a Python reader for it, so `_records` walks its framing: a 7-byte
file header (":W&B", magic 0xBEE1, version), then LevelDB-log-style 32 KiB blocks of chunks, each with
a 7-byte header (crc32, length, type: full, first, middle or last), whose payloads are `Record`
protobufs.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import wandb
import workload_timing
from wandb.proto import wandb_internal_pb2

BLOCK_BYTES = 32_768
CHUNK_HEADER = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def open_session(workdir: Path) -> workload_timing.Session:
    """An offline run in project "peers", writing under `workdir/wandb`."""
    wandb.init(project="peers", name="peers", dir=str(workdir))
    log_row = wandb.log

    def log(step: int, value: float) -> None:
        log_row({"loss": value}, step=step)

    return workload_timing.Session(log=log, finish=wandb.finish)


def _records(path: Path) -> Iterator[bytes]:
    """The record payloads of a .wandb file, reassembled from their chunks (crcs not checked)."""
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    position = 7
    pending = bytearray()
    while position + CHUNK_HEADER.size <= len(data):
        left_in_block = BLOCK_BYTES - position % BLOCK_BYTES
        if left_in_block < CHUNK_HEADER.size:  # a block's tail too short for a header is padding
            position += left_in_block
            continue
        _, length, kind = CHUNK_HEADER.unpack_from(data, position)
        position += CHUNK_HEADER.size
        chunk = data[position : position + length]
        position += length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = bytearray(chunk)
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield bytes(pending + chunk)
        else:  # zero-filled rest of a block
            position += BLOCK_BYTES - position % BLOCK_BYTES


def _history_rows_with_loss(path: Path) -> int:
    count = 0
    for payload in _records(path):
        record = wandb_internal_pb2.Record.FromString(payload)
        if record.WhichOneof("record_type") == "history":
            keys = {item.key or "/".join(item.nested_key) for item in record.history.item}
            count += "loss" in keys
    return count


def read_back(workdir: Path) -> int:
    """History rows with a "loss" value in the offline run's .wandb file(s)."""
    files = sorted((workdir / "wandb").glob("offline-run-*/run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no offline run file under {workdir / 'wandb'}")
    return sum(_history_rows_with_loss(path) for path in files)


if __name__ == "__main__":
    workload_timing.main(open_session=open_session, read_back=read_back, distributions=("wandb",))
