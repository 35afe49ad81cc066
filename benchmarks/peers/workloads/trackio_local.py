"""trackio, local: `trackio.log({"loss": value}, step=step)` in one run of project "peers".

The runner sets TRACKIO_DIR to `trackio` (relative to the fresh working directory this runs in), so the
project's SQLite database lands there and nothing is sent to a Hugging Face Space. Durable means
`trackio.finish()` has returned. Read back with trackio's own `SQLiteStorage.get_logs`.
"""

from __future__ import annotations

from pathlib import Path

import trackio
import workload_timing
from trackio.sqlite_storage import SQLiteStorage

PROJECT = "peers"
RUN = "peers"


def open_session(workdir: Path) -> workload_timing.Session:
    """A run in a local project."""
    trackio.init(project=PROJECT, name=RUN)
    log_row = trackio.log

    def log(step: int, value: float) -> None:
        log_row({"loss": value}, step=step)

    return workload_timing.Session(log=log, finish=trackio.finish)


def read_back(workdir: Path) -> int:
    """Logged rows of the run that carry "loss", as trackio's storage returns them."""
    return sum(1 for row in SQLiteStorage.get_logs(PROJECT, RUN) if "loss" in row)


if __name__ == "__main__":
    workload_timing.main(open_session=open_session, read_back=read_back, distributions=("trackio",))
