"""DVCLive: `live.log_metric("loss", value)` then `live.next_step()` for each step.

DVCLive keeps the step itself (`next_step` advances it and writes the step's summary), so each call
here is the pair. Defaults otherwise: `Live()` writes `dvclive/` in the working directory, which is
a fresh directory outside any Git or DVC repository, so no DVC experiment is saved. Durable means
`live.end()` has returned. Read back by counting the data rows of `dvclive/plots/metrics/loss.tsv`.
"""

from __future__ import annotations

from pathlib import Path

import workload_timing
from dvclive import Live

LIVE_DIR = "dvclive"


def open_session(workdir: Path) -> workload_timing.Session:
    """A Live logger writing into `workdir/dvclive`."""
    live = Live(dir=str(workdir / LIVE_DIR))
    log_metric = live.log_metric
    next_step = live.next_step

    def log(step: int, value: float) -> None:
        log_metric("loss", value)
        next_step()

    return workload_timing.Session(log=log, finish=live.end)


def read_back(workdir: Path) -> int:
    """Data rows (all but the header) of the loss plot's TSV."""
    with (workdir / LIVE_DIR / "plots" / "metrics" / "loss.tsv").open() as rows:
        return sum(1 for _ in rows) - 1


if __name__ == "__main__":
    workload_timing.main(open_session=open_session, read_back=read_back, distributions=("dvclive",))
