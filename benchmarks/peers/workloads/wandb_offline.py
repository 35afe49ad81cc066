"""Weights & Biases in offline mode (WANDB_MODE=offline): `wandb.log({"loss": value}, step=step)`.

The runner sets WANDB_MODE=offline, so the run is written to `wandb/offline-run-*/run-*.wandb` in the
working directory by W&B's own service process, ready for `wandb sync`. Durable means `wandb.finish()`
has returned. Read back by scanning that file with W&B's own record reader and counting the history
rows that carry "loss".
"""

from __future__ import annotations

from pathlib import Path

import wandb
import workload_timing
from wandb.proto import wandb_internal_pb2
from wandb.sdk.internal import datastore


def open_session(workdir: Path) -> workload_timing.Session:
    """An offline run in project "peers", writing under `workdir/wandb`."""
    wandb.init(project="peers", name="peers", dir=str(workdir))
    log_row = wandb.log

    def log(step: int, value: float) -> None:
        log_row({"loss": value}, step=step)

    return workload_timing.Session(log=log, finish=wandb.finish)


def _history_rows_with_loss(path: Path) -> int:
    store = datastore.DataStore()
    store.open_for_scan(str(path))
    count = 0
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            keys = {item.key or "/".join(item.nested_key) for item in record.history.item}
            if "loss" in keys:
                count += 1
    return count


def read_back(workdir: Path) -> int:
    """History rows with a "loss" value in the offline run's .wandb file(s)."""
    files = sorted((workdir / "wandb").glob("offline-run-*/run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no offline run file under {workdir / 'wandb'}")
    return sum(_history_rows_with_loss(path) for path in files)


if __name__ == "__main__":
    workload_timing.main(open_session=open_session, read_back=read_back, distributions=("wandb",))
