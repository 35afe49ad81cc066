"""What `ContextaLogger` costs a Lightning epoch (issue 20): the same fit with our logger and with
`logger=False`, in the same process, alternating which goes first from round to round.

Run with `python -m pytest benchmarks/test_integration_lightning.py --benchmark-enable -p no:cacheprovider`.
Without that flag (the project default is `--benchmark-disable`) one short round runs as a smoke test.

The fit: a fixed MLP (32 -> 64 -> 2) on 2,048 synthetic rows, batch 32, so 64 optimizer steps per
epoch, each logging `train_loss` and `train/acc` (`log_every_n_steps=1`: every step reaches the
logger), on the CPU, no validation and no checkpoints (this is the per-step path; checkpoints cost
what hashing their bytes costs). Each epoch is timed from `on_train_epoch_start` to
`on_train_epoch_end` by a callback; the run's closing (`finalize`: the flush barrier) happens after the
last epoch and is reported on its own. `extra_info` holds, for each side, the mean and worst epoch in
milliseconds (also over each fit's epochs after its first, which carries the start of capture's
background writer), and the overhead ratio of the means (ours / none). Figures only: nothing asserts
a time.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning")
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from contexta import Contexta
from contexta.integrations.lightning import ContextaLogger

ROUNDS = 6
EPOCHS = 3
SMOKE_EPOCHS = 1
SMOKE_BATCHES = 4


class _Mlp(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        self.log("train_loss", loss)
        self.log("train/acc", (logits.argmax(1) == y).float().mean())
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _EpochClock(pl.Callback):
    def __init__(self) -> None:
        self.epochs: list[float] = []
        self._started = 0.0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.epochs.append(time.perf_counter() - self._started)


def _data() -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (2048,), generator=generator)
    x = torch.randn(2048, 32, generator=generator) + y[:, None].float()
    return DataLoader(TensorDataset(x, y), batch_size=32)


def _fit(logger: ContextaLogger | bool, epochs: int, batches: int | None) -> tuple[list[float], float]:
    """Per-epoch seconds of one fit, and the seconds from the last epoch's end to `fit` returning."""
    torch.manual_seed(0)
    clock = _EpochClock()
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=[clock],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
        limit_train_batches=batches,
        limit_val_batches=0,
    )
    trainer.fit(_Mlp(), _data())
    ended = time.perf_counter()
    return clock.epochs, ended - clock._started - clock.epochs[-1]


@pytest.mark.benchmark(group="integration-lightning")
def test_lightning_epoch_with_contexta_logger_vs_none(benchmark: Any, tmp_path: Path) -> None:
    rounds = ROUNDS if benchmark.enabled else 1
    epochs = EPOCHS if benchmark.enabled else SMOKE_EPOCHS
    batches = None if benchmark.enabled else SMOKE_BATCHES
    torch.set_num_threads(1)  # two shared cores: keep the model's own work from competing with the writer
    timings: dict[str, list[float]] = {"none": [], "contexta": []}
    later: dict[str, list[float]] = {"none": [], "contexta": []}  # each fit's epochs after its first
    closings: list[float] = []
    runs = iter(range(1_000))

    def one_round() -> None:
        number = next(runs)
        order = ("none", "contexta") if number % 2 == 0 else ("contexta", "none")
        for side in order:
            if side == "none":
                epoch_times = _fit(False, epochs, batches)[0]
                timings["none"].extend(epoch_times)
                later["none"].extend(epoch_times[1:])
            else:
                logger = ContextaLogger(
                    f"round-{number}", workspace=tmp_path / ".contexta", project_name="bench"
                )
                epoch_times, closing = _fit(logger, epochs, batches)
                timings["contexta"].extend(epoch_times)
                later["contexta"].extend(epoch_times[1:])
                closings.append(closing)

    benchmark.pedantic(one_round, rounds=rounds, iterations=1)

    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "bench"}) as ctx:
        steps = epochs * (batches or 64)
        for run in ctx.list_runs():
            assert run.status == "completed"
            assert len(ctx.get_metric_series(run.run_id, "train_loss", stage="train").points) == steps
    for side, seconds in timings.items():
        benchmark.extra_info[f"{side}_epoch_mean_ms"] = round(statistics.fmean(seconds) * 1000, 2)
        benchmark.extra_info[f"{side}_epoch_worst_ms"] = round(max(seconds) * 1000, 2)
        if later[side]:
            benchmark.extra_info[f"{side}_later_epoch_mean_ms"] = round(
                statistics.fmean(later[side]) * 1000, 2
            )
            benchmark.extra_info[f"{side}_later_epoch_worst_ms"] = round(max(later[side]) * 1000, 2)
    benchmark.extra_info["overhead_ratio_of_means"] = round(
        statistics.fmean(timings["contexta"]) / statistics.fmean(timings["none"]), 3
    )
    benchmark.extra_info["contexta_finalize_mean_ms"] = round(statistics.fmean(closings) * 1000, 2)
    benchmark.extra_info["steps_per_epoch"] = batches or 64
    benchmark.extra_info["epochs_per_side"] = len(timings["none"])
