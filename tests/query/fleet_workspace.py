"""A fleet of runs captured live for the trend and alert tests: a small real computation (fitting
y = 3x - 1 by gradient descent) trained longer run after run, so its loss falls, then one run whose
learning rate was cut by mistake (a regression), then a smoke run that never evaluated.

Project `fleet`, oldest first:
  gd-1 .. gd-5   5, 10, 20, 40, 80 epochs at lr 0.05; stage train records `loss` per epoch (step =
                 epoch), stage evaluate records the holdout `loss` and `mse`; one `checkpoint`
                 artifact per 5 epochs and one `model` artifact.
  gd-regressed   80 epochs at lr 0.01 (a learning rate cut by mistake: its final loss is far above
                 gd-5's).
  smoke          2 epochs of train only: no evaluate stage, no checkpoint, a model.
Project `other` holds one run `elsewhere`, so project selection can be seen.

What the computation produced is kept in `Fleet`, so tests compare the store's answers with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from contexta import Contexta

PROJECT = "fleet"
TRAIN = [(x / 10, 3 * (x / 10) - 1) for x in range(-10, 11)]
HOLDOUT = [(x / 10 + 0.05, 3 * (x / 10 + 0.05) - 1) for x in range(-10, 10, 3)]
GOOD_RUNS = (("gd-1", 5), ("gd-2", 10), ("gd-3", 20), ("gd-4", 40), ("gd-5", 80))


@dataclass
class Fleet:
    """The workspace and, per run name, what the computation produced."""

    workspace: Path
    train_losses: dict[str, list[float]] = field(default_factory=dict)
    holdout_loss: dict[str, float] = field(default_factory=dict)
    checkpoint_sizes: dict[str, list[int]] = field(default_factory=dict)
    model_sizes: dict[str, int] = field(default_factory=dict)


def _mse(w: float, b: float, data: list[tuple[float, float]]) -> float:
    return sum((w * x + b - y) ** 2 for x, y in data) / len(data)


def _train(
    ctx: Contexta, fleet: Fleet, tmp: Path, name: str, epochs: int, lr: float, evaluate: bool = True
) -> None:
    w = b = 0.0
    losses: list[float] = []
    sizes: list[int] = []
    with ctx.run(name, config_snapshot={"epochs": epochs, "lr": lr}) as run:
        with run.stage("train") as stage:
            for epoch in range(1, epochs + 1):
                grad_w = sum(2 * (w * x + b - y) * x for x, y in TRAIN) / len(TRAIN)
                grad_b = sum(2 * (w * x + b - y) for x, y in TRAIN) / len(TRAIN)
                w, b = w - lr * grad_w, b - lr * grad_b
                loss = _mse(w, b, TRAIN)
                losses.append(loss)
                stage.metric("loss", loss, step=epoch)
                if epoch % 5 == 0:
                    checkpoint = tmp / f"{name}-epoch{epoch}.json"
                    checkpoint.write_text(json.dumps({"epoch": epoch, "w": w, "b": b, "losses": losses}))
                    sizes.append(checkpoint.stat().st_size)
                    stage.register_artifact("checkpoint", str(checkpoint))
        if evaluate:
            with run.stage("evaluate") as stage:
                holdout = _mse(w, b, HOLDOUT)
                stage.metric("loss", holdout)
                stage.metric("mse", holdout)
                fleet.holdout_loss[name] = holdout
        model = tmp / f"{name}-model.json"
        model.write_text(json.dumps({"w": w, "b": b}))
        run.register_artifact("model", str(model))
    fleet.train_losses[name] = losses
    fleet.checkpoint_sizes[name] = sizes
    fleet.model_sizes[name] = model.stat().st_size


def capture_fleet(tmp: Path) -> Fleet:
    """Capture the runs described above under `tmp`."""
    fleet = Fleet(tmp / "ws")
    with Contexta(workspace=fleet.workspace, config={"project_name": PROJECT}) as ctx:
        for name, epochs in GOOD_RUNS:
            _train(ctx, fleet, tmp, name, epochs, 0.05)
        _train(ctx, fleet, tmp, "gd-regressed", 80, 0.01)
        _train(ctx, fleet, tmp, "smoke", 2, 0.05, evaluate=False)
    with (
        Contexta(workspace=fleet.workspace, config={"project_name": "other"}) as ctx,
        ctx.run("elsewhere") as run,
        run.stage("train") as stage,
    ):
        stage.metric("loss", 123.0, step=1)
    return fleet
