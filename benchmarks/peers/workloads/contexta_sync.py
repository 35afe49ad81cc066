"""Contexta's sync facade: `stage.metric("loss", value, step=step)` on one run and stage.

Default configuration (bounded queue of 98,304, overflow "block"): what a user gets. Durable means the
stage and the run are closed (a run's close is a flush barrier into the capture log and the store)
and `ctx.close()` has stopped the writer. Read back from the store with `get_metric_series`.
"""

from __future__ import annotations

from pathlib import Path

import workload_timing

from contexta import Contexta

PROJECT = "peers"
RUN = "peers"


def open_session(workdir: Path) -> workload_timing.Session:
    """One run with one stage, "train", in a fresh workspace under `workdir`."""
    ctx = Contexta(workspace=workdir / ".contexta", config={"project_name": PROJECT})
    run = ctx.run(RUN)
    stage = run.stage("train")
    metric = stage.metric

    def log(step: int, value: float) -> None:
        metric("loss", value, step=step)

    def finish() -> None:
        stage.close()
        run.close()
        ctx.close()

    return workload_timing.Session(log=log, finish=finish)


def read_back(workdir: Path) -> int:
    """Points of "loss" in the store, read by a fresh Contexta on the same workspace."""
    with Contexta(workspace=workdir / ".contexta", config={"project_name": PROJECT}) as ctx:
        return len(ctx.get_metric_series(RUN, "loss").points)


if __name__ == "__main__":
    workload_timing.main(open_session=open_session, read_back=read_back, distributions=("contexta",))
