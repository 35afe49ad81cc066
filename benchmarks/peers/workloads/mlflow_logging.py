"""MLflow's fluent API: `mlflow.log_metric("loss", value, step=step)` in one active run.

With `--asynchronous` each call passes `synchronous=False`, which queues the metric for MLflow's
background batching thread; without it the call takes the default synchronous path, one store
write per call. The store is MLflow's default local one, created in the working directory (the
runner's fresh workdir). Durable means `mlflow.flush_async_logging()` (asynchronous only) and
`mlflow.end_run()` have returned. Read back with `MlflowClient().get_metric_history`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mlflow
import workload_timing
from mlflow import MlflowClient

ASYNCHRONOUS = "--asynchronous" in sys.argv
RUN_IDS: list[str] = []


def open_session(workdir: Path) -> workload_timing.Session:
    """An active run in the default experiment of the default local store."""
    RUN_IDS.append(mlflow.start_run(run_name="peers").info.run_id)
    log_metric = mlflow.log_metric

    if ASYNCHRONOUS:

        def log(step: int, value: float) -> None:
            log_metric("loss", value, step=step, synchronous=False)

        def finish() -> None:
            mlflow.flush_async_logging()
            mlflow.end_run()

        return workload_timing.Session(log=log, finish=finish)

    def log_synchronously(step: int, value: float) -> None:
        log_metric("loss", value, step=step)

    return workload_timing.Session(log=log_synchronously, finish=mlflow.end_run)


def read_back(workdir: Path) -> int:
    """Points in the run's "loss" history, as the tracking client returns them."""
    return len(MlflowClient().get_metric_history(RUN_IDS[-1], "loss"))


if __name__ == "__main__":
    workload_timing.main(open_session=open_session, read_back=read_back, distributions=("mlflow",))
