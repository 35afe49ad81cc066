"""Aim: `Run.track(value, name="loss", step=step)` on one run in a fresh local repository.

Durable means `run.close()` has returned. Aim's queries read a repository index that its UI server
(`aim up`) builds in the background from each run's chunk; the read-back does that indexing step
itself (`RepoIndexManager.index`), then counts the steps of `Run.get_metric("loss", Context({}))`.
"""

from __future__ import annotations

from pathlib import Path

import workload_timing
from aim import Repo, Run
from aim.sdk.index_manager import RepoIndexManager
from aim.storage.context import Context

RUN_HASHES: list[str] = []


def open_session(workdir: Path) -> workload_timing.Session:
    """A run in experiment "peers" of a repository created in `workdir`."""
    run = Run(repo=str(workdir), experiment="peers")
    RUN_HASHES.append(run.hash)
    track = run.track

    def log(step: int, value: float) -> None:
        track(value, name="loss", step=step)

    return workload_timing.Session(log=log, finish=run.close)


def read_back(workdir: Path) -> int:
    """Steps of the run's "loss" metric, after indexing the run as Aim's UI server would."""
    repo = Repo.from_path(str(workdir))
    run_hash = RUN_HASHES[-1]
    RepoIndexManager.get_index_manager(repo).index(run_hash)
    repo.container_pool.clear()
    run = repo.get_run(run_hash)
    if run is None:
        raise LookupError(f"run {run_hash} is not in the repository at {workdir}")
    metric = run.get_metric("loss", Context({}))
    if metric is None:
        return 0
    steps, _ = metric.data.numpy()
    return len(steps)


if __name__ == "__main__":
    workload_timing.main(open_session=open_session, read_back=read_back, distributions=("aim",))
