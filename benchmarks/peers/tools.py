"""The trackers measured side by side: what to install for each and which workload script drives it.

Every tool runs the same workload (see `workloads/workload_timing.py`); a tool only says how to install
it, how to call it and, for the one path too slow for the full workload, how many calls to make. The
rows appear in the table in this order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypedDict

FULL_CALLS = 100_000
ASYNC_TASKS = 1_000
ASYNC_METRICS_PER_TASK = 100
# For the paths that land ~100 records/s here: the full workload would take most of an hour per tool.
REDUCED_CALLS = 2_000
REDUCED_ASYNC_TASKS = 100
REDUCED_ASYNC_METRICS_PER_TASK = 20


class WorkloadFields(TypedDict):
    calls: int
    async_tasks: int
    async_metrics_per_task: int


REDUCED_SIZE: WorkloadFields = {
    "calls": REDUCED_CALLS,
    "async_tasks": REDUCED_ASYNC_TASKS,
    "async_metrics_per_task": REDUCED_ASYNC_METRICS_PER_TASK,
}

# Trackers phone home by default; nothing is reachable from here but package registries, so a tool that
# waits on a dead connection would be measuring the sandbox, not itself.
NO_TELEMETRY: Mapping[str, str] = MappingProxyType(
    {
        "DO_NOT_TRACK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "HF_HUB_OFFLINE": "1",
        "AIM_UI_TELEMETRY_ENABLED": "0",
    }
)


@dataclass(frozen=True, slots=True)
class Tool:
    """One row of the table: a tracker (or a floor) and how to install and drive it."""

    name: str  # short id, used for file names and `--only`
    label: str  # what the table calls it
    workload: str  # script under workloads/
    environment: str  # virtualenv name under --venv-root, or "contexta" for the project's own venv
    packages: tuple[str, ...] = ()  # pip requirements installed into that virtualenv
    distributions: tuple[str, ...] = ()  # whose versions the table prints
    arguments: tuple[str, ...] = ()  # extra arguments to the workload script
    calls: int = FULL_CALLS
    async_tasks: int = ASYNC_TASKS
    async_metrics_per_task: int = ASYNC_METRICS_PER_TASK
    env: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


TOOLS: tuple[Tool, ...] = (
    Tool(
        name="floor-deque",
        label="floor: `deque.append((t, key, value, step))`",
        workload="floor_deque.py",
        environment="contexta",
        note="memory only: nothing is ever durable; read-back is len(deque)",
    ),
    Tool(
        name="floor-orjson-thread",
        label="floor: queue + thread writing orjson lines",
        workload="floor_orjson_thread.py",
        environment="contexta",
        distributions=("orjson",),
        note="SimpleQueue.put of a tuple; one thread writes orjson lines in batches of up to 4,096",
    ),
    Tool(
        name="contexta-sync",
        label="Contexta `stage.metric`",
        workload="contexta_sync.py",
        environment="contexta",
        distributions=("contexta",),
        note="default config (queue 98,304, overflow=block); durable = stage and run closed, ctx.close(); "
        "read back with get_metric_series",
    ),
    Tool(
        name="contexta-async",
        label="Contexta `await stage.metric`",
        workload="contexta_async.py",
        environment="contexta",
        distributions=("contexta",),
        note="async facade on the same pipeline; its sync columns are one task awaiting N calls",
    ),
    Tool(
        name="tensorboardx",
        label="tensorboardX `SummaryWriter.add_scalar`",
        workload="tensorboardx_writer.py",
        environment="tensorboardx",
        packages=("tensorboardX",),
        distributions=("tensorboardX", "protobuf"),
        note="durable = writer.close(); read back by decoding the event file",
    ),
    Tool(
        name="mlflow-async",
        label="MLflow `log_metric(synchronous=False)`",
        workload="mlflow_logging.py",
        environment="mlflow",
        packages=("mlflow",),
        distributions=("mlflow",),
        arguments=("--asynchronous",),
        **REDUCED_SIZE,
        note="default store (SQLite, mlflow.db); durable = flush_async_logging() + end_run(); "
        "N reduced: it lands ~100 records/s here",
    ),
    Tool(
        name="mlflow-sync",
        label="MLflow `log_metric`, synchronous",
        workload="mlflow_logging.py",
        environment="mlflow",
        packages=("mlflow",),
        distributions=("mlflow",),
        **REDUCED_SIZE,
        note="default synchronous path, one store write per call; durable = end_run(); N reduced as above",
    ),
    Tool(
        name="wandb-offline",
        label="W&B offline `wandb.log`",
        workload="wandb_offline.py",
        environment="wandb",
        packages=("wandb",),
        distributions=("wandb",),
        env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"},
        note="durable = wandb.finish(); read back by decoding the .wandb file; "
        "the wandb-core process that writes it is not in RSS",
    ),
    Tool(
        name="trackio",
        label="trackio `trackio.log`",
        workload="trackio_local.py",
        environment="trackio",
        packages=("trackio",),
        distributions=("trackio",),
        env={"TRACKIO_DIR": "trackio"},  # relative: the workload runs in its fresh directory
        note="local SQLite (TRACKIO_DIR in the workdir); durable = trackio.finish()",
    ),
    Tool(
        name="aim",
        label="Aim `Run.track`",
        workload="aim_run.py",
        environment="aim",
        packages=("aim",),
        distributions=("aim",),
        note="durable = run.close(); read back with Run.get_metric after indexing the run",
    ),
    Tool(
        name="dvclive",
        label="DVCLive `log_metric` + `next_step`",
        workload="dvclive_live.py",
        environment="dvclive",
        packages=("dvclive",),
        distributions=("dvclive",),
        **REDUCED_SIZE,
        note="durable = live.end(); read back from loss.tsv; N reduced: every next_step rewrites dvc.yaml "
        "and re-reads all of loss.tsv, so a step costs more the more steps came before",
    ),
)
