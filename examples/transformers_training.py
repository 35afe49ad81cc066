"""A Hugging Face `Trainer` fine-tune captured by Contexta with one callback.

A tiny BERT (2 layers, hidden size 32) is built from a config, so nothing is downloaded, and trained on
the CPU to tell whether a token sequence starts with a token from the upper half of the vocabulary
(synthetic data, but a real signal: the model has to learn it, and chance is 50%). Contexta records
the training arguments and model config, the loss, learning rate and grad norm at every logging step,
the evaluation at every epoch, and each checkpoint's files, into ./.contexta.

Run: pip install 'contexta[transformers]' && python examples/transformers_training.py
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is built here; never ask the hub

from typing import Any

import numpy as np
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    EvalPrediction,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)
from transformers.utils import logging as transformers_logging

from contexta import Contexta
from contexta.integrations.transformers import ContextaCallback

PROJECT = "hf-tiny"
VOCAB, LENGTH = 64, 8


class FirstTokenDataset(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Random sequences; the label is 1 when the first token is in the upper half of the vocabulary."""

    def __init__(self, size: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(4, VOCAB, (size, LENGTH), generator=generator)
        self.labels = (self.ids[:, 0] >= VOCAB // 2).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def accuracy(prediction: EvalPrediction) -> dict[str, float]:
    logits = (
        prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    )
    return {"accuracy": float((np.argmax(logits, axis=-1) == prediction.label_ids).mean())}


def main() -> None:
    transformers_logging.disable_progress_bar()  # no bars while checkpoints are written
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
        num_labels=2,
    )
    args = TrainingArguments(
        output_dir="hf-output",
        use_cpu=True,
        report_to=[],  # Contexta only
        num_train_epochs=3,
        per_device_train_batch_size=32,
        learning_rate=3e-3,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=None,
        logging_steps=4,
        disable_tqdm=True,
        log_level="error",
        seed=0,
    )
    callback = ContextaCallback("tiny-bert", workspace=".contexta", project_name=PROJECT)
    trainer = Trainer(
        model=BertForSequenceClassification(config),
        args=args,
        train_dataset=FirstTokenDataset(512, seed=1),
        eval_dataset=FirstTokenDataset(256, seed=2),
        compute_metrics=accuracy,
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)  # the figures below come from the store instead
    trainer.train()

    # Read back what was captured, from the store, as any later process could.
    with Contexta(workspace=".contexta", config={"project_name": PROJECT}) as ctx:
        run = ctx.get_run("tiny-bert")
        eval_loss = ctx.get_metric_series(run.run_id, "eval_loss", stage="evaluate")
        eval_accuracy = ctx.get_metric_series(run.run_id, "eval_accuracy", stage="evaluate")
        loss = ctx.get_metric_series(run.run_id, "loss", stage="train")
        checkpoints = ctx.list_artifacts(run.run_id)
        stages = [stage.name for stage in ctx.list_stages(run.run_id)]
        snapshot: dict[str, Any] = run.config_snapshot or {}
    reported = [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry]
    checkpoint_dirs = {os.path.basename(os.path.dirname(artifact.location)) for artifact in checkpoints}

    print(f"Captured run: {run.run_id} ({run.status})")
    print(f"Stages: {', '.join(stages)}")
    print(
        f"Config snapshot: hidden_size={snapshot['model_config']['hidden_size']}, "
        f"learning_rate={snapshot['training_args']['learning_rate']}"
    )
    first, last = loss.values[0], loss.values[-1]
    print(f"Training loss in the store: {len(loss.values)} points, first {first:.4f}, last {last:.4f}")
    for step, value, acc in zip(eval_loss.steps, eval_loss.values, eval_accuracy.values, strict=True):
        print(f"Eval at step {step}: loss {value:.4f}, accuracy {acc:.3f}")
    print(f"Final eval loss (from the store): {eval_loss.values[-1]:.4f}")
    print(f"Final eval loss (as the Trainer reported it): {reported[-1]:.4f}")
    print(f"Checkpoint files registered: {len(checkpoints)} from {len(checkpoint_dirs)} checkpoints")


if __name__ == "__main__":
    main()
