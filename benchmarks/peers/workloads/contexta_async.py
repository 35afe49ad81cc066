"""Contexta's async facade: `await stage.metric("loss", value, step=step)` on one run and stage.

Same pipeline and default configuration as `contexta_sync.py`; durable means the stage and the run are
closed (the run's close awaits its flush in a worker thread) and `await ctx.aclose()` has returned.
"""

from __future__ import annotations

from pathlib import Path

import workload_timing
from contexta_sync import PROJECT, RUN, read_back

from contexta import Contexta


async def open_async_session(workdir: Path) -> workload_timing.AsyncSession:
    """One async run with one stage, "train", in a fresh workspace under `workdir`."""
    ctx = Contexta(workspace=workdir / ".contexta", config={"project_name": PROJECT})
    run = ctx.arun(RUN)
    stage = run.stage("train")
    metric = stage.metric

    async def log(step: int, value: float) -> None:
        await metric("loss", value, step=step)

    async def finish() -> None:
        await stage.close()
        await run.close()
        await ctx.aclose()

    return workload_timing.AsyncSession(log=log, finish=finish)


if __name__ == "__main__":
    workload_timing.main(
        open_async_session=open_async_session, read_back=read_back, distributions=("contexta",)
    )
