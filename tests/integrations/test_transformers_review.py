"""Review of the Hugging Face callback against what a demanding user does: a strict workspace
(`capture.non_finite = "raise"`) meeting a NaN loss, and a `compute_metrics` returning a nested report
(sklearn's `classification_report(output_dict=True)` is the common one). The callback observes the
training: what it cannot record it says so, and never ends the training itself."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing here may reach the hub; set before transformers loads

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contexta import Contexta
from contexta.errors import CaptureWarning, ValidationError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.integrations.test_transformers import TokenDataset, tiny_model, training_args  # noqa: E402

from contexta.integrations.transformers import ContextaCallback  # noqa: E402

PROJECT = "hf-review"


class _NanLossTrainer(transformers.Trainer):  # type: ignore[misc]
    """A Trainer whose training loss is NaN, as a diverging or fp16-overflowing training's is."""

    def log(self, logs: dict[str, Any], start_time: float | None = None) -> None:
        if "loss" in logs:
            logs = {**logs, "loss": float("nan")}
        super().log(logs, start_time)


def test_a_nan_loss_in_a_strict_workspace_is_warned_about_and_training_goes_on(tmp_path: Path) -> None:
    config = {"project_name": PROJECT, "capture": {"non_finite": "raise"}}
    with Contexta(workspace=tmp_path / "ws", config=config) as ctx:
        callback = ContextaCallback("nan-loss", ctx=ctx)
        trainer = _NanLossTrainer(
            model=tiny_model(),
            args=training_args(tmp_path / "out", max_steps=4, eval_strategy="no", save_strategy="no"),
            train_dataset=TokenDataset(48, seed=1),
            callbacks=[callback],
        )
        with pytest.warns(CaptureWarning, match="'loss'"):
            trainer.train()

        run = ctx.get_run("nan-loss")
        keys = {summary.metric_key for summary in ctx.get_metric_summaries("nan-loss")}
        rate = ctx.get_metric_series("nan-loss", "learning_rate")

    assert trainer.state.global_step == 4
    assert run.status == "completed"
    assert "loss" not in keys and "train_runtime" in keys  # NaN refused under "raise", each time
    logged = [
        (entry["step"], entry["learning_rate"])
        for entry in trainer.state.log_history
        if "learning_rate" in entry
    ]
    assert list(zip(rate.steps, rate.values, strict=True)) == logged  # the other values of the same logs


def test_nested_compute_metrics_are_recorded_under_slash_joined_keys(tmp_path: Path) -> None:
    def compute_metrics(prediction: Any) -> dict[str, Any]:
        predicted = np.argmax(prediction.predictions, axis=-1)
        accuracy = float(np.mean(predicted == prediction.label_ids))
        return {
            "accuracy": np.float64(accuracy),
            "report": {
                "macro avg": {"recall": np.float32(0.25), "support": np.int64(16)},
                "accuracy": accuracy,
            },
        }

    callback = ContextaCallback("nested", workspace=tmp_path / "ws", project_name=PROJECT)
    trainer = transformers.Trainer(
        model=tiny_model(),
        args=training_args(
            tmp_path / "out", max_steps=4, eval_strategy="steps", eval_steps=2, save_strategy="no"
        ),
        train_dataset=TokenDataset(48, seed=1),
        eval_dataset=TokenDataset(16, seed=2),
        compute_metrics=compute_metrics,
        callbacks=[callback],
    )
    trainer.train()

    with Contexta(workspace=tmp_path / "ws", config={"project_name": PROJECT}) as ctx:
        recall = ctx.get_metric_series("nested", "eval_report/macro_avg/recall", stage="evaluate")
        support = ctx.get_metric_series("nested", "eval_report/macro_avg/support", stage="evaluate")
        accuracy = ctx.get_metric_series("nested", "eval_report/accuracy", stage="evaluate")

    evaluations = [entry for entry in trainer.state.log_history if "eval_report" in entry]
    assert [step for step in recall.steps] == [entry["step"] for entry in evaluations] == [2, 4]
    assert all(math.isclose(value, 0.25, rel_tol=1e-6) for value in recall.values)
    assert list(support.values) == [16, 16]
    assert list(accuracy.values) == [entry["eval_accuracy"] for entry in evaluations]


LONG_NAMES = (
    "bert-base-uncased-finetuned-sst2-lr3e-05-bs32-ep3-warmup0.1-wd0.01-seed42",
    "bert-base-uncased-finetuned-sst2-lr3e-05-bs32-ep3-warmup0.1-wd0.01-seed43",
)


def test_a_long_run_name_in_the_training_arguments_does_not_stop_the_training(tmp_path: Path) -> None:
    """Hugging Face takes any `run_name` (experiment trackers name runs after their settings);
    contexta's run names hold 63 characters. Two such names differing only at the end stay two runs."""
    callback = ContextaCallback(workspace=tmp_path / "ws", project_name=PROJECT)
    for name in LONG_NAMES:
        trainer = transformers.Trainer(
            model=tiny_model(),
            args=training_args(
                tmp_path / "out", run_name=name, max_steps=2, eval_strategy="no", save_strategy="no"
            ),
            train_dataset=TokenDataset(16, seed=1),
            callbacks=[callback],
        )
        trainer.train()

    with Contexta(workspace=tmp_path / "ws", config={"project_name": PROJECT}) as ctx:
        runs = ctx.list_runs()
        named = {ctx.get_run(run.run_id).metadata.get("run_name") for run in runs}

    assert len(runs) == 2 and {run.status for run in runs} == {"completed"}
    assert named == set(LONG_NAMES)  # the full name kept on the run


def test_a_run_name_too_long_for_contexta_fails_when_the_callback_is_made(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="the limit is 63") as raised:
        ContextaCallback(LONG_NAMES[0], workspace=tmp_path / "ws")
    assert raised.value.code == "name_too_long"


def test_a_run_the_store_refuses_at_train_begin_closes_the_contexta_the_callback_opened(
    tmp_path: Path,
) -> None:
    """Tags contexta cannot keep fail the training at its start, as `ctx.run` fails; the Contexta the
    callback opened for itself is closed then, not left with its writer running until the process ends."""
    callback = ContextaCallback(workspace=tmp_path / "ws", project_name=PROJECT, tags={"owner": object()})
    trainer = transformers.Trainer(
        model=tiny_model(),
        args=training_args(tmp_path / "out", max_steps=2, eval_strategy="no", save_strategy="no"),
        train_dataset=TokenDataset(16, seed=1),
        callbacks=[callback],
    )
    with pytest.raises(ValidationError) as refused:
        trainer.train()
    assert refused.value.code == "attributes_invalid"
    assert callback._ctx is None  # closed
    with Contexta(workspace=tmp_path / "ws", config={"project_name": PROJECT}) as ctx:
        assert ctx.list_runs() == []
