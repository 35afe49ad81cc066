"""Train a small PyTorch Lightning classifier on scikit-learn's digits and capture the fit with Contexta.

Run it in an empty directory: `python examples/lightning_training.py` (needs `pip install
'contexta[lightning]' scikit-learn`). The two lines that matter are the logger and `logger=` below;
everything else is an ordinary LightningModule. It prints the run, the validation accuracy Lightning
reported at the end, the same figure read back from the store, the stages and the checkpoint artifact,
so each claim can be checked against `./.contexta/`.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

from contexta import Contexta
from contexta.integrations.lightning import ContextaLogger


class DigitsClassifier(pl.LightningModule):
    """8x8 digit images (64 pixels) -> 10 classes, through one hidden layer."""

    def __init__(self, hidden: int = 64, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()  # -> the run's config_snapshot
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
        )

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)  # -> stage "train", one point per step
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))  # -> stage "validate"
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def loaders() -> tuple[DataLoader[Any], DataLoader[Any]]:
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True)
    return train, DataLoader(TensorDataset(x_val, y_val), batch_size=256)


def main() -> None:
    pl.seed_everything(0, verbose=False)
    logger = ContextaLogger("digits-mlp", workspace=".contexta", project_name="lightning-digits")
    checkpoints = ModelCheckpoint(monitor="val_acc", mode="max")
    trainer = pl.Trainer(
        max_epochs=5,
        accelerator="cpu",
        logger=logger,
        callbacks=[checkpoints],
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=5,
    )
    trainer.fit(DigitsClassifier(), *loaders())
    reported = float(trainer.callback_metrics["val_acc"])

    with Contexta(workspace=".contexta", config={"project_name": "lightning-digits"}) as ctx:
        run = ctx.list_runs()[0]
        stored = ctx.get_metric_series(run.run_id, "val_acc", stage="validate").values
        losses = ctx.get_metric_series(run.run_id, "train_loss", stage="train").values
        print(f"Captured run: {run.run_id} ({run.status})")
        print(f"Hyperparameters: {run.config_snapshot}")
        print(f"Stages: {', '.join(sorted(stage.name for stage in ctx.list_stages(run.run_id)))}")
        print(f"Validation accuracy reported by Lightning: {reported:.4f}")
        print(f"Validation accuracy read from the store: {stored[-1]:.4f} ({len(stored)} epochs)")
        print(f"train_loss: {len(losses)} points, first {losses[0]:.4f}, last {losses[-1]:.4f}")
        # Every checkpoint ModelCheckpoint saved was registered as it was written; the ones it later
        # removed (no longer the best) keep their digest in the store, the best one is still on disk.
        artifacts = ctx.list_artifacts(run.run_id)
        best = next(a for a in artifacts if a.location.endswith(checkpoints.best_model_path))
        check = ctx.verify_artifact(best.artifact_ref)
        print(f"Checkpoints registered: {len(artifacts)}; best: {best.location} ({check.status})")


if __name__ == "__main__":
    main()
