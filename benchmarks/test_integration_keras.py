"""What ContextaCallback costs a Keras `fit` epoch: the same epoch with and without it, in one process,
rounds alternating the sides (and rotating which goes first), so all meet the same machine state
(issue 20).

Run with `python -m pytest benchmarks/test_integration_keras.py --benchmark-enable -p no:cacheprovider`.
Without that flag (the project default) one short round runs as a smoke test.

A small MLP (32 -> 64 -> 10, softmax) fits ROWS synthetic rows in batches of BATCH_SIZE (so
ROWS / BATCH_SIZE train batches and a validation pass per epoch) with `epochs=1` per timed call, on the
torch backend and the CPU. One callback serves every round, as it serves one training: its run opens in
an untimed warm-up fit, then each `fit` adds an epoch to it (train and validate stages reopened, epoch
and batch series, validation batches). Torch runs on one thread: on a shared 2-core machine its
default of one thread per core makes every epoch wait for whatever else runs.

Three sides per round: `without` (no callback: Keras dispatches its own batch hooks to a thread pool),
`batch_hooks_only` (a callback whose batch hooks do nothing: Keras then calls batch hooks in the
training thread, as for any per-batch callback, ours included) and `with` (ContextaCallback). A
subclass reads the clock around each of its hooks, so the time spent inside them is measured in the
same epochs. `extra_info` holds the mean and worst epoch of each side in ms, the ratios of the means,
and the hooks' time per epoch (ms) and per train batch (microseconds; all hooks of the epoch,
validation's too, divided by its train batches). Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is first imported

import statistics
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import torch

from contexta import Contexta
from contexta.integrations.keras import ContextaCallback

ROWS = 8192
SMOKE_ROWS = 256
BATCH_SIZE = 32
ROUNDS = 12


class _TimedCallback(ContextaCallback):
    """ContextaCallback with the time spent in its hooks summed in `spent_ns`."""

    spent_ns = 0


def _timed(hook: Any) -> Any:
    def timed(self: _TimedCallback, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter_ns()
        hook(self, *args, **kwargs)
        self.spent_ns += time.perf_counter_ns() - started

    return timed


for _hook in (
    "on_train_begin",
    "on_epoch_begin",
    "on_train_batch_end",
    "on_epoch_end",
    "on_train_end",
    "on_test_begin",
    "on_test_batch_end",
    "on_test_end",
):
    setattr(_TimedCallback, _hook, _timed(getattr(ContextaCallback, _hook)))


def _model() -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 32)).astype("float32")
    return x, np.argmax(x[:, :10], axis=1).astype("int32")


@pytest.mark.benchmark(group="integration-keras")
def test_fit_epoch_with_and_without_the_callback(benchmark: Any, tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _measure(benchmark, tmp_path)
    finally:
        torch.set_num_threads(threads)


class _BatchHooksOnly(keras.callbacks.Callback):
    """Does nothing, but defines the batch hooks, as any per-batch callback does: Keras then calls
    every callback's batch hooks in the training thread instead of dispatching them to a thread pool,
    which on this machine is the cheaper way for hooks this small."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass


def _measure(benchmark: Any, tmp_path: Path) -> None:
    rows = ROWS if benchmark.enabled else SMOKE_ROWS
    rounds = ROUNDS if benchmark.enabled else 1
    x, y = _data(rows + rows // 4)
    train, validation = (x[:rows], y[:rows]), (x[rows:], y[rows:])
    model = _model()
    times: dict[str, list[float]] = {"without": [], "batch_hooks_only": [], "with": []}
    hooks: list[float] = []

    def epoch(callbacks: list[Any]) -> float:
        started = time.perf_counter()
        model.fit(
            *train,
            validation_data=validation,
            batch_size=BATCH_SIZE,
            epochs=1,
            callbacks=callbacks,
            verbose=0,
        )
        return time.perf_counter() - started

    with (
        Contexta(workspace=tmp_path / "ws", config={"project_name": "bench"}) as ctx,
        _TimedCallback("keras-bench", ctx=ctx) as callback,
    ):
        epoch([callback])  # untimed: opens the run, warms Keras's and Contexta's first-call paths
        epoch([])

        def timed_with() -> float:
            callback.spent_ns = 0
            seconds = epoch([callback])
            hooks.append(callback.spent_ns / 1e9)
            return seconds

        sides = {
            "without": lambda: epoch([]),
            "batch_hooks_only": lambda: epoch([_BatchHooksOnly()]),
            "with": timed_with,
        }

        def one_round() -> None:
            # Which side goes first rotates, so none always follows another's garbage.
            names = list(sides)
            shift = len(hooks) % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(sides[name]())

        benchmark.pedantic(one_round, rounds=rounds, iterations=1)
        stats = ctx.capture_stats()
    batches = rows // BATCH_SIZE
    stored = ctx.get_metric_series("keras-bench", "batch/loss", stage="train").points
    assert len(stored) == batches * (rounds + 1)
    assert (stats.dropped, stats.failed) == (0, 0)

    info = benchmark.extra_info
    info["train_batches_per_epoch"] = batches
    info["rounds"] = rounds
    for name, seconds in times.items():
        info[f"{name}_mean_ms"] = round(statistics.fmean(seconds) * 1e3, 2)
        info[f"{name}_worst_ms"] = round(max(seconds) * 1e3, 2)
    mean = {name: statistics.fmean(seconds) for name, seconds in times.items()}
    info["with_vs_without_ratio"] = round(mean["with"] / mean["without"], 3)
    info["with_vs_batch_hooks_only_ratio"] = round(mean["with"] / mean["batch_hooks_only"], 3)
    info["extra_us_per_train_batch_vs_batch_hooks_only"] = round(
        (mean["with"] - mean["batch_hooks_only"]) / batches * 1e6, 1
    )
    info["hooks_mean_ms_per_epoch"] = round(statistics.fmean(hooks) * 1e3, 2)
    info["hooks_worst_ms_per_epoch"] = round(max(hooks) * 1e3, 2)
    info["hooks_us_per_train_batch"] = round(statistics.fmean(hooks) / batches * 1e6, 1)
