"""ContextaCallback on a real `transformers.Trainer`: a tiny BERT built from a config (never
downloaded), trained on the CPU for two epochs with an evaluation each epoch and a checkpoint every
few steps. What a user would look at afterwards is checked against what the Trainer itself reported:
the run and its stages, every logged value at its step (`trainer.state.log_history`), the training
arguments and model config, and the checkpoint files on disk with their digests."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing here may reach the hub; set before transformers loads

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

from contexta import Contexta

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from contexta.integrations.transformers import ContextaCallback  # noqa: E402

PROJECT = "hf-tests"
SEQUENCE = 8
VOCAB = 64


class TokenDataset(torch.utils.data.Dataset):  # type: ignore[misc]
    """Random token sequences labelled by whether their first token is in the upper half of the
    vocabulary: a signal a tiny model can learn, and no tokenizer needed."""

    def __init__(self, size: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(4, VOCAB, (size, SEQUENCE), generator=generator)
        self.labels = (self.ids[:, 0] >= VOCAB // 2).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "input_ids": self.ids[index],
            "attention_mask": torch.ones(SEQUENCE, dtype=torch.long),
            "labels": self.labels[index],
        }


def tiny_model() -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
        num_labels=2,
    )
    return transformers.BertForSequenceClassification(config)


def training_args(output_dir: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "output_dir": str(output_dir),
        "use_cpu": True,
        "report_to": [],
        "num_train_epochs": 2,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 8,
        "learning_rate": 1e-3,
        "eval_strategy": "epoch",
        "save_strategy": "steps",
        "save_steps": 4,
        "logging_steps": 2,
        "disable_tqdm": True,
        "seed": 0,
        **overrides,
    }
    return transformers.TrainingArguments(**values)


@dataclass
class Trained:
    workspace: Path
    output_dir: Path
    trainer: Any
    callback: ContextaCallback
    model_config: dict[str, Any]  # as it was when training began


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("hf")
    callback = ContextaCallback("tiny-bert", workspace=root / "ws", project_name=PROJECT)
    trainer = transformers.Trainer(
        model=tiny_model(),
        args=training_args(root / "out"),
        train_dataset=TokenDataset(48, seed=1),
        eval_dataset=TokenDataset(16, seed=2),
        callbacks=[callback],
    )
    model_config = trainer.model.config.to_dict()  # the Trainer has set use_cache; training sets more
    trainer.train()
    return Trained(root / "ws", root / "out", trainer, callback, model_config)


@pytest.fixture
def reader(trained: Trained) -> Iterator[Contexta]:
    with Contexta(workspace=trained.workspace, config={"project_name": PROJECT}) as ctx:
        yield ctx


def _logged(trained: Trained, key: str) -> list[tuple[int, float]]:
    return [(entry["step"], entry[key]) for entry in trained.trainer.state.log_history if key in entry]


def _series(ctx: Contexta, key: str, stage: str) -> list[tuple[int | None, float | int]]:
    series = ctx.get_metric_series("tiny-bert", key, stage=stage)
    return list(zip(series.steps, series.values, strict=True))


def test_the_run_is_completed_with_a_train_and_an_evaluate_stage(trained: Trained, reader: Contexta) -> None:
    run = reader.get_run("tiny-bert")

    assert trained.callback.run_id == run.run_id == f"run:{PROJECT}.tiny-bert"
    assert run.status == "completed"
    assert [(stage.name, stage.status) for stage in reader.list_stages(run.run_id)] == [
        ("train", "completed"),
        ("evaluate", "completed"),
    ]
    assert run.metadata is not None and run.metadata["model_class"] == "BertForSequenceClassification"


@pytest.mark.parametrize("key", ["loss", "learning_rate", "grad_norm"])
def test_training_logs_are_the_train_series_at_the_global_step(
    trained: Trained, reader: Contexta, key: str
) -> None:
    logged = _logged(trained, key)

    assert [step for step, _ in logged] == [2, 4, 6, 8, 10, 12]
    assert _series(reader, key, "train") == logged


@pytest.mark.parametrize("key", ["eval_loss", "eval_runtime", "eval_samples_per_second"])
def test_evaluation_logs_are_the_evaluate_series_once_per_evaluation(
    trained: Trained, reader: Contexta, key: str
) -> None:
    logged = _logged(trained, key)

    assert [step for step, _ in logged] == [6, 12]  # one evaluation per epoch of 6 steps
    assert _series(reader, key, "evaluate") == logged


def test_the_final_summary_is_stage_level_values_of_train(trained: Trained, reader: Contexta) -> None:
    (summary,) = [entry for entry in trained.trainer.state.log_history if "train_runtime" in entry]

    for key in ("train_runtime", "train_loss", "total_flos", "train_samples_per_second"):
        assert _series(reader, key, "train") == [(12, summary[key])]
    # Its epoch is the last point of the epoch series, not a second one at the same step.
    training_logs = [entry for entry in trained.trainer.state.log_history if "loss" in entry]
    assert _series(reader, "epoch", "train") == [(entry["step"], entry["epoch"]) for entry in training_logs]


def test_the_config_snapshot_holds_the_training_args_and_the_model_config(
    trained: Trained, reader: Contexta
) -> None:
    snapshot = reader.get_run("tiny-bert").config_snapshot
    assert snapshot is not None

    args = snapshot["training_args"]
    given = json.loads(json.dumps(trained.trainer.args.to_dict(), default=str))
    secrets = {key for key in given if key.endswith("_token")}  # contexta redacts what looks like one
    assert secrets and {key: args[key] for key in secrets} == dict.fromkeys(secrets, "[redacted]")
    assert {key: args[key] for key in given if key not in secrets} == {
        key: value for key, value in given.items() if key not in secrets
    }
    assert set(args) == set(given)
    assert (args["learning_rate"], args["num_train_epochs"], args["save_steps"]) == (1e-3, 2, 4)
    assert args["output_dir"] == str(trained.output_dir)
    model_config = snapshot["model_config"]
    assert model_config == json.loads(json.dumps(trained.model_config, default=str))
    assert (model_config["hidden_size"], model_config["num_hidden_layers"]) == (32, 2)


def test_every_checkpoint_file_is_a_checkpoint_artifact_with_its_digest(
    trained: Trained, reader: Contexta
) -> None:
    on_disk = {
        f"path:{path}": blake3(path.read_bytes()).hexdigest()
        for path in sorted(trained.output_dir.glob("checkpoint-*/**/*"))
        if path.is_file()
    }
    artifacts = reader.list_artifacts("tiny-bert")

    assert sorted(path.name for path in trained.output_dir.glob("checkpoint-*")) == [
        "checkpoint-12",
        "checkpoint-4",
        "checkpoint-8",
    ]
    assert any(location.endswith("model.safetensors") for location in on_disk)
    assert {artifact.kind for artifact in artifacts} == {"checkpoint"}
    assert {artifact.location: artifact.hash_value for artifact in artifacts} == on_disk
    assert len(artifacts) == len(on_disk)


class DataExplodedError(Exception):
    """What the training data raises in the middle of training."""


class ExplodingDataset(TokenDataset):
    """Training data whose fifth batch cannot be read (batches of 8, shuffled: item 33 is in it)."""

    def __init__(self, size: int, seed: int):
        super().__init__(size, seed)
        self.reads = 0

    def __getitem__(self, index: int) -> dict[str, Any]:
        self.reads += 1
        if self.reads == 33:
            raise DataExplodedError("the data blew up in the fifth batch")
        return super().__getitem__(index)


def test_a_training_that_raises_leaves_the_run_failed(tmp_path: Path) -> None:
    model = tiny_model()
    with Contexta(workspace=tmp_path / "ws", config={"project_name": PROJECT}) as ctx:
        callback = ContextaCallback("explodes", ctx=ctx)
        trainer = transformers.Trainer(
            model=model,
            args=training_args(tmp_path / "out", eval_strategy="no"),
            train_dataset=ExplodingDataset(48, seed=1),
            callbacks=[callback],
        )
        with pytest.raises(DataExplodedError):
            trainer.train()

        run = ctx.get_run("explodes")  # the Contexta passed in is still open and usable
        stages = ctx.list_stages("explodes")
        loss = ctx.get_metric_series("explodes", "loss")

    assert callback.run is None
    assert run.status == "failed"
    assert run.failure is not None and run.failure["type"].endswith("DataExplodedError")
    assert "the fifth batch" in run.failure["message"]
    assert [(stage.name, stage.status) for stage in stages] == [("train", "failed")]
    assert list(zip(loss.steps, loss.values, strict=True)) == _logged_of(trainer, "loss")


def test_a_callback_added_later_closes_a_failed_run_at_its_next_training(tmp_path: Path) -> None:
    """`add_callback` after the Trainer is made leaves no guard on `train()` (documented): the run of
    a training that raised stays open until the same callback's next training closes it `failed`."""
    with Contexta(workspace=tmp_path / "ws", config={"project_name": PROJECT}) as ctx:
        callback = ContextaCallback("added-later", ctx=ctx)
        trainer = transformers.Trainer(
            model=tiny_model(),
            args=training_args(tmp_path / "out", eval_strategy="no", save_strategy="no", max_steps=6),
            train_dataset=ExplodingDataset(48, seed=1),
        )
        trainer.add_callback(callback)
        with pytest.raises(DataExplodedError):
            trainer.train()
        assert callback.run is not None and callback.run.status == "open"

        trainer.train()  # the dataset only fails once
        executions = {run.execution_number: run.status for run in ctx.list_runs(all_executions=True)}

    assert executions == {1: "failed", 2: "completed"}


def _logged_of(trainer: Any, key: str) -> list[tuple[int, float]]:
    return [(entry["step"], entry[key]) for entry in trainer.state.log_history if key in entry]


class _NotedTrainer(transformers.Trainer):  # type: ignore[misc]
    """A Trainer whose logs also carry text, a flag and a key contexta would refuse as written."""

    def log(self, logs: dict[str, Any], start_time: float | None = None) -> None:
        super().log({**logs, "note": "warm", "is_best": True, "eval ood:loss": 0.5}, start_time)


def test_non_numeric_values_are_skipped_and_odd_keys_made_valid(tmp_path: Path) -> None:
    callback = ContextaCallback("noted", workspace=tmp_path / "ws", project_name=PROJECT)
    trainer = _NotedTrainer(
        model=tiny_model(),
        args=training_args(tmp_path / "out", max_steps=2, eval_strategy="no", save_strategy="no"),
        train_dataset=TokenDataset(16, seed=1),
        callbacks=[callback],
    )
    trainer.train()

    with Contexta(workspace=tmp_path / "ws", config={"project_name": PROJECT}) as ctx:
        run = ctx.get_run("noted")
        keys = {summary.metric_key for summary in ctx.get_metric_summaries("noted")}
        odd = ctx.get_metric_series("noted", "eval_ood_loss")
        artifacts = ctx.list_artifacts("noted")

    assert run.status == "completed"
    assert "note" not in keys and "is_best" not in keys
    assert {"loss", "learning_rate", "train_runtime"} <= keys
    # In the training log and again in the summary, both at step 2: the same point, recorded once.
    assert list(zip(odd.steps, odd.values, strict=True)) == [(2, 0.5)]
    assert artifacts == []


class _SecondRankTrainer(transformers.Trainer):  # type: ignore[misc]
    """A Trainer that believes it is not the world's process zero, as every rank but one does."""

    def is_world_process_zero(self) -> bool:
        return False


def test_only_the_world_process_zero_captures(tmp_path: Path) -> None:
    callback = ContextaCallback("rank-one", workspace=tmp_path / "ws", project_name=PROJECT)
    trainer = _SecondRankTrainer(
        model=tiny_model(),
        args=training_args(tmp_path / "out", max_steps=2, eval_strategy="no", save_strategy="no"),
        train_dataset=TokenDataset(16, seed=1),
        callbacks=[callback],
    )
    trainer.train()

    assert not trainer.state.is_world_process_zero
    assert callback.run_id is None
    assert not (tmp_path / "ws").exists()  # no Contexta was even opened


def test_the_callback_refuses_a_ctx_together_with_a_project(tmp_path: Path) -> None:
    from contexta.errors import ConfigurationError

    with (
        Contexta(workspace=tmp_path / "ws", config={"project_name": PROJECT}) as ctx,
        pytest.raises(ConfigurationError) as raised,
    ):
        ContextaCallback(ctx=ctx, project_name="other")

    assert raised.value.code == "callback_config_conflict"


def test_a_bad_config_or_run_name_fails_when_the_callback_is_made(tmp_path: Path) -> None:
    from contexta.errors import ConfigurationError, ValidationError

    with pytest.raises(ConfigurationError, match="projct_name"):
        ContextaCallback(workspace=tmp_path / "ws", config={"projct_name": PROJECT})
    with pytest.raises(ValidationError) as raised:
        ContextaCallback("   ", workspace=tmp_path / "ws")

    assert raised.value.code == "field_invalid"
    assert not (tmp_path / "ws").exists()


def test_importing_contexta_does_not_import_transformers() -> None:
    program = (
        "import sys, contexta, contexta.integrations\n"
        "from contexta import Contexta\n"
        "print(sorted(m for m in ('transformers', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


def test_without_transformers_the_import_says_how_to_install_it() -> None:
    program = (
        "import sys\n"
        "sys.modules['transformers'] = None  # what an environment without it gives\n"
        "from contexta.errors import MissingDependencyError\n"
        "try:\n"
        "    import contexta.integrations.transformers\n"
        "except MissingDependencyError as error:\n"
        "    print(error.code, '|', error.message)\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)

    code, _, message = result.stdout.partition(" | ")
    assert code == "dependency_missing"
    assert "pip install 'contexta[transformers]'" in message
