"""What ContextaCallback costs a Keras `fit` epoch: the same epoch with and without it, alternating in
one process, so both meet the same machine state (issue 20).

Run with `python -m pytest benchmarks/test_integration_keras.py --benchmark-enable -p no:cacheprovider`.
Without that flag (the project default) one short pair runs as a smoke test.

A small MLP (32 -> 64 -> 10, softmax) fits ROWS synthetic rows in batches of BATCH_SIZE (so
ROWS / BATCH_SIZE train batches and a validation pass per epoch) with `epochs=1` per timed call, on the
torch backend and the CPU. One callback serves every round, as it serves one training: its run opens in
an untimed warm-up fit, then each `fit` adds an epoch to it (train and validate stages reopened, epoch
and batch series, validation batches). `extra_info` holds the mean and worst epoch of each side in ms,
the ratio of the means, and the extra time per train batch in microseconds. Figures only: nothing
here asserts a time.
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

from contexta import Contexta
from contexta.integrations.keras import ContextaCallback

ROWS = 8192
SMOKE_ROWS = 256
BATCH_SIZE = 32
PAIRS = 12


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
    rows = ROWS if benchmark.enabled else SMOKE_ROWS
    pairs = PAIRS if benchmark.enabled else 1
    x, y = _data(rows + rows // 4)
    train, validation = (x[:rows], y[:rows]), (x[rows:], y[rows:])
    model = _model()
    without: list[float] = []
    with_callback: list[float] = []

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
        ContextaCallback(ctx, "keras-bench") as callback,
    ):
        epoch([callback])  # untimed: opens the run, warms Keras's and Contexta's first-call paths
        epoch([])

        def one_pair() -> None:
            without.append(epoch([]))
            with_callback.append(epoch([callback]))

        benchmark.pedantic(one_pair, rounds=pairs, iterations=1)
        stats = ctx.capture_stats()
    batches = rows // BATCH_SIZE
    assert len(ctx.get_metric_series("keras-bench", "batch/loss", stage="train").points) == batches * (
        pairs + 1
    )
    assert (stats.dropped, stats.failed) == (0, 0)

    info = benchmark.extra_info
    info["train_batches_per_epoch"] = batches
    info["pairs"] = pairs
    for name, times in (("without", without), ("with", with_callback)):
        info[f"{name}_mean_ms"] = round(statistics.fmean(times) * 1e3, 2)
        info[f"{name}_worst_ms"] = round(max(times) * 1e3, 2)
    info["mean_ratio"] = round(statistics.fmean(with_callback) / statistics.fmean(without), 3)
    info["extra_us_per_train_batch"] = round(
        (statistics.fmean(with_callback) - statistics.fmean(without)) / batches * 1e6, 1
    )
