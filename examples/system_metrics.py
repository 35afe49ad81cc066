"""Train a small neural network on scikit-learn's digits while Contexta samples the process and the
machine beside it (`ctx.run(..., system_metrics=0.2)`).

Run it in an empty directory: `python examples/system_metrics.py` (needs `pip install
'contexta[system]' scikit-learn`). It prints the test accuracy it measured, how many system samples the
run holds, and the peak resident memory and CPU the samples saw, all read back from the store, so each
figure can be checked against `./.contexta/`.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from contexta import Contexta

EPOCHS = 15
INTERVAL_S = 0.2


def main() -> None:
    features, labels = load_digits(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(
        features / 16.0, labels, test_size=0.25, random_state=0, stratify=labels
    )
    classes = np.unique(labels)
    with Contexta(workspace=".contexta", config={"project_name": "digits"}) as ctx:
        started = time.perf_counter()
        with ctx.run("mlp-with-system-metrics", system_metrics=INTERVAL_S) as run:
            model = MLPClassifier(hidden_layer_sizes=(128, 64), learning_rate_init=0.01, random_state=0)
            with run.stage("train") as stage:
                for epoch in range(EPOCHS):
                    model.partial_fit(train_x, train_y, classes=classes)
                    stage.metric("loss", float(model.loss_), step=epoch)
            accuracy = float(model.score(test_x, test_y))
            with run.stage("evaluate") as stage:
                stage.metric("accuracy", accuracy, unit="ratio")
        elapsed = time.perf_counter() - started

        rss = ctx.get_metric_series(run.ref, "process.rss_bytes", stage="system")
        cpu = ctx.get_metric_series(run.ref, "process.cpu_percent", stage="system")
        print(f"Captured run: {run.ref}")
        print(f"Measured test accuracy: {accuracy:.4f}")
        print(f"Training took {elapsed:.2f} s; system samples every {INTERVAL_S} s: {len(rss.points)} stored")
        print(f"Peak resident memory: {max(point.value for point in rss.points) / 2**20:.1f} MiB")
        print(f"Peak process CPU: {max(point.value for point in cpu.points):.0f}% of one core")


if __name__ == "__main__":
    main()
