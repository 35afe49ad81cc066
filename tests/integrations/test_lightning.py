"""`ContextaLogger` under a real Lightning `Trainer` on the CPU: what a fit leaves in the workspace is
what Lightning reported (its metrics call by call, its hyperparameters, its checkpoint files), the
run ends with the fit's outcome, and only rank zero records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from argparse import Namespace
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning")
import blake3
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from contexta import Contexta
from contexta.errors import ConfigurationError, ValidationError
from contexta.integrations._lightning_params import hyperparameter_document
from contexta.integrations._lightning_stages import MetricRouter
from contexta.integrations.lightning import ContextaLogger

SRC = str(Path(__file__).resolve().parents[2] / "src")

# The module and data, as source, so the subprocess tests (DDP, the pytorch_lightning fallback) train
# the same thing; `PL` is the Lightning import path.
MODEL_SOURCE = """
import torch
from torch.utils.data import DataLoader, TensorDataset
import {PL} as pl


class TinyClassifier(pl.LightningModule):
    # Two Gaussian blobs told apart by a linear layer: the loss falls, the accuracy rises.

    def __init__(self, lr=0.5, hidden=8, optimizer=None, fail_at_step=None):
        super().__init__()
        self.save_hyperparameters()
        layers = (torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
        self.net = torch.nn.Sequential(*layers)

    def training_step(self, batch, batch_idx):
        if self.hparams.fail_at_step is not None and self.global_step >= self.hparams.fail_at_step:
            raise RuntimeError("loss went wrong")
        x, y = batch
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        self.log("train_loss", loss)
        self.log("train/acc", (logits.argmax(1) == y).float().mean(), on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val/acc", (logits.argmax(1) == y).float().mean())

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_acc", (self.net(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders(seed=0):
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (192,), generator=generator)
    x = torch.randn(192, 4, generator=generator) + (y[:, None] * 2 - 1) * 1.5
    train = DataLoader(TensorDataset(x[:128], y[:128]), batch_size=16)
    val = DataLoader(TensorDataset(x[128:], y[128:]), batch_size=32)
    return train, val


def trainer(logger, callbacks=(), **kwargs):
    options = dict(
        max_epochs=2, accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False,
        limit_train_batches=4, limit_val_batches=2, log_every_n_steps=1, logger=logger,
        callbacks=list(callbacks),
    )
    options.update(kwargs)
    return pl.Trainer(**options)
"""

_models: dict[str, Any] = {}
exec(MODEL_SOURCE.format(PL="lightning.pytorch"), _models)
TinyClassifier, loaders, make_trainer = _models["TinyClassifier"], _models["loaders"], _models["trainer"]


class RecordingLogger(Logger):
    """Beside ours: what Lightning hands every logger, call by call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int | None, dict[str, float]]] = []
        self.hyperparameters: list[dict[str, Any]] = []
        self.statuses: list[str] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> str:
        return "0"

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.calls.append((step, dict(metrics)))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self.hyperparameters.append(dict(params))

    def finalize(self, status: str) -> None:
        self.statuses.append(status)


def expected_series(calls: list[tuple[int | None, dict[str, float]]]) -> dict[tuple[str, str], list[Any]]:
    """{(stage, key): [(step, value), ...]} as the docs say it is split: by the key's first word, and
    a key without one (Lightning's `epoch`) where the call's other keys go."""
    series: dict[tuple[str, str], list[Any]] = {}
    for step, metrics in calls:
        stages = {_stage_of(key) for key in metrics} - {None}
        default = stages.pop() if len(stages) == 1 else "train"
        for key, value in metrics.items():
            series.setdefault((_stage_of(key) or default, key), []).append((step, value))
    return series


def _stage_of(key: str) -> str | None:
    for prefix, stage in (("train", "train"), ("val", "validate"), ("test", "test")):
        if key.startswith((f"{prefix}_", f"{prefix}/")):
            return stage
    return None


def stored_series(ctx: Contexta, run: str) -> dict[tuple[str, str], list[Any]]:
    stored: dict[tuple[str, str], list[Any]] = {}
    for summary in ctx.get_metric_summaries(run):
        assert summary.stage_name is not None  # every metric is in a stage
        series = ctx.get_metric_series(run, summary.metric_key, stage=summary.stage_name)
        stored[(summary.stage_name, summary.metric_key)] = [(p.step, p.value) for p in series.points]
    return stored


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / ".contexta"


@pytest.fixture(autouse=True)
def _rank_zero() -> Iterator[None]:
    rank = rank_zero_only.rank
    yield
    rank_zero_only.rank = rank


def test_a_fit_leaves_its_stages_series_hyperparameters_and_checkpoints(workspace: Path) -> None:
    recorder = RecordingLogger()
    ours = ContextaLogger("baseline", workspace=workspace, project_name="tiny", tags={"team": "ml"})
    checkpoints = ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last=True)
    model = TinyClassifier(lr=0.5, optimizer={"name": "sgd", "momentum": 0.0})
    make_trainer([ours, recorder], [checkpoints]).fit(model, *loaders())

    with Contexta(workspace=workspace, config={"project_name": "tiny"}) as ctx:
        (run,) = ctx.list_runs(all_executions=True)
        assert (run.name, run.status, run.tags) == ("baseline", "completed", {"team": "ml"})
        assert run.config_snapshot == recorder.hyperparameters[0] == dict(model.hparams)
        assert run.config_snapshot["optimizer"] == {"name": "sgd", "momentum": 0.0}
        assert sorted(stage.name for stage in ctx.list_stages("baseline")) == ["train", "validate"]
        expected = expected_series(recorder.calls)
        assert ("train", "train/acc_epoch") in expected and ("validate", "val/acc") in expected
        assert stored_series(ctx, "baseline") == expected
        steps = [step for step, _ in expected[("train", "train_loss")]]
        assert steps == list(range(8))  # 2 epochs of 4 batches, logged every step
        first, last = expected[("train", "train_loss")][0][1], expected[("train", "train_loss")][-1][1]
        assert last < first  # it learned: the series is a real one

        manifests = ctx.artifact_store.list_manifests(run.run_id)
        assert {manifest.artifact_kind for manifest in manifests} == {"checkpoint"}
        by_path: dict[str, list[Any]] = {}
        for manifest in manifests:
            by_path.setdefault(manifest.attributes["path"], []).append(manifest)
        top_k = {os.path.abspath(path): score.item() for path, score in checkpoints.best_k_models.items()}
        assert set(top_k) < set(by_path)
        for path, score in top_k.items():
            (manifest,) = by_path[path]  # once per file
            assert manifest.hash_value == blake3.blake3(Path(path).read_bytes()).hexdigest()
            assert manifest.attributes["score"] == score
            assert manifest.attributes["monitor"] == "val_loss"
            assert manifest.attributes["step"] == torch.load(path, weights_only=False)["global_step"]
            assert ctx.verify_artifact(manifest.artifact_ref).status == "verified"
        last = by_path[os.path.abspath(checkpoints.last_model_path)]
        assert len(last) == 2  # last.ckpt, written at each epoch's end: each version once
        assert (
            last[-1].hash_value == blake3.blake3(Path(checkpoints.last_model_path).read_bytes()).hexdigest()
        )
    assert Path(checkpoints.dirpath) == Path(ours.save_dir, "tiny", ours.version, "checkpoints")
    assert recorder.statuses == ["success"]


def test_an_exception_in_training_step_fails_the_run(workspace: Path) -> None:
    recorder = RecordingLogger()
    ours = ContextaLogger("broken", workspace=workspace, project_name="tiny")
    with pytest.raises(RuntimeError, match="loss went wrong"):
        make_trainer([ours, recorder]).fit(TinyClassifier(fail_at_step=3), *loaders())

    with Contexta(workspace=workspace, config={"project_name": "tiny"}) as ctx:
        (run,) = ctx.list_runs()
        assert run.status == "failed"
        assert run.config_snapshot["fail_at_step"] == 3
        assert stored_series(ctx, "broken") == expected_series(recorder.calls)
        assert [step for step, _ in expected_series(recorder.calls)[("train", "train_loss")]] == [0, 1, 2]
        (event,) = [event for event in _events(workspace) if event["event_key"] == "lightning.failed"]
        assert "RuntimeError: loss went wrong" in event["message"]
    assert recorder.statuses == ["failed"]


def test_ctrl_c_cancels_the_run(workspace: Path) -> None:
    class Interrupted(TinyClassifier):  # type: ignore[misc, valid-type]
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            if self.global_step == 2:
                raise KeyboardInterrupt
            return super().training_step(batch, batch_idx)

    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning's graceful shutdown ends with sys.exit(1)
            make_trainer(ContextaLogger("stopped", workspace=workspace, project_name="tiny")).fit(
                Interrupted(), *loaders()
            )
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-C after the first
    with Contexta(workspace=workspace, config={"project_name": "tiny"}) as ctx:
        assert [run.status for run in ctx.list_runs()] == ["cancelled"]


def test_a_test_after_the_fit_adds_its_stage_to_the_same_run(workspace: Path) -> None:
    recorder = RecordingLogger()
    trainer = make_trainer(
        [ContextaLogger("fit-then-test", workspace=workspace, project_name="tiny"), recorder]
    )
    model = TinyClassifier()
    train, val = loaders()
    trainer.fit(model, train, val)
    (results,) = trainer.test(model, val)

    with Contexta(workspace=workspace, config={"project_name": "tiny"}) as ctx:
        (run,) = ctx.list_runs(all_executions=True)
        assert run.status == "completed"
        assert sorted(stage.name for stage in ctx.list_stages(run.run_id)) == ["test", "train", "validate"]
        assert ctx.get_metric_series(run.run_id, "test_acc", stage="test").values == (results["test_acc"],)
        assert stored_series(ctx, run.run_id) == expected_series(recorder.calls)
    assert recorder.statuses == ["success", "success"]


def test_hyperparameters_logged_during_training_reach_config_snapshot(workspace: Path) -> None:
    class Tuned(TinyClassifier):  # type: ignore[misc, valid-type]
        def on_train_epoch_end(self) -> None:
            self.logger.log_hyperparams({"optimizer": {"tuned_at_epoch": self.current_epoch}})

    recorder = RecordingLogger()
    ours = ContextaLogger("tuned", workspace=workspace, project_name="tiny")
    trainer = make_trainer([ours, recorder])
    trainer.fit(Tuned(optimizer={"name": "sgd"}), *loaders())

    with Contexta(workspace=workspace, config={"project_name": "tiny"}) as ctx:
        (run,) = ctx.list_runs(all_executions=True)  # amended, not a second execution
        assert run.status == "completed"
        assert run.config_snapshot is not None
        assert run.config_snapshot["optimizer"] == {"name": "sgd", "tuned_at_epoch": 1}
        assert run.config_snapshot["lr"] == 0.5
        assert stored_series(ctx, "tuned") == expected_series(recorder.calls)


def test_other_ranks_record_nothing(workspace: Path) -> None:
    """The rank forced to 1 in this process (a real two-process run is in the test below)."""
    rank_zero_only.rank = 1
    ours = ContextaLogger("rank-one", workspace=workspace, project_name="tiny")
    make_trainer(ours, [ModelCheckpoint(dirpath=workspace.parent / "ckpt")]).fit(TinyClassifier(), *loaders())
    ours.log_metrics({"train_loss": 1.0}, step=0)
    ours.log_hyperparams({"lr": 1.0})
    assert type(ours.experiment).__name__ == "_DummyExperiment"
    ours.finalize("success")
    assert list((workspace.parent / "ckpt").iterdir())  # Lightning saved; we registered nothing
    assert not workspace.exists()  # no Contexta was ever opened on this rank


DDP_SCRIPT = """
import os, sys
sys.path.insert(0, {src!r})
from contexta.integrations.lightning import ContextaLogger
{model}
if __name__ == "__main__":
    from lightning.pytorch.callbacks import ModelCheckpoint
    logger = ContextaLogger("ddp", workspace={workspace!r}, project_name="tiny")
    t = trainer(logger, [ModelCheckpoint()], strategy="ddp", devices=2, max_epochs=1)
    t.fit(TinyClassifier(), *loaders())
    print("RANK", t.global_rank, "DONE", flush=True)
"""


def test_a_two_process_ddp_run_leaves_exactly_one_run(workspace: Path, tmp_path: Path) -> None:
    script = tmp_path / "ddp_fit.py"
    model = MODEL_SOURCE.format(PL="lightning.pytorch")
    script.write_text(DDP_SCRIPT.format(src=SRC, model=model, workspace=str(workspace)))
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RANK 0 DONE" in result.stdout
    with Contexta(workspace=workspace, config={"project_name": "tiny"}) as ctx:
        (run,) = ctx.list_runs(all_executions=True)
        assert run.status == "completed"
        # Each rank trains on its half of the data (4 batches of 16); rank zero's calls are recorded.
        steps = [point.step for point in ctx.get_metric_series("ddp", "train_loss").points]
        assert steps == [0, 1, 2, 3]
        assert len(ctx.list_artifacts("ddp")) == 1


def test_the_pytorch_lightning_trainer_drives_it_too(workspace: Path) -> None:
    pytest.importorskip("pytorch_lightning")
    models: dict[str, Any] = {}
    exec(MODEL_SOURCE.format(PL="pytorch_lightning"), models)
    from pytorch_lightning.callbacks import ModelCheckpoint as PlModelCheckpoint

    ours = ContextaLogger("pl", workspace=workspace, project_name="tiny")
    checkpoints = PlModelCheckpoint(monitor="val_loss")
    models["trainer"](ours, [checkpoints]).fit(models["TinyClassifier"](hidden=4), *models["loaders"]())
    with Contexta(workspace=workspace, config={"project_name": "tiny"}) as ctx:
        (run,) = ctx.list_runs()
        assert (run.status, run.config_snapshot["hidden"]) == ("completed", 4)
        assert len(ctx.get_metric_series("pl", "train_loss", stage="train").points) == 8
        assert len(ctx.get_metric_series("pl", "val_loss", stage="validate").points) == 2
        # One checkpoint per epoch (the first removed by Lightning when the second was better).
        artifacts = ctx.list_artifacts("pl")
        assert len(artifacts) == 2
        assert f"path:{os.path.abspath(checkpoints.best_model_path)}" in {a.location for a in artifacts}


def _python(program: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_lightning_it_is_built_on_pytorch_lightning(tmp_path: Path) -> None:
    pytest.importorskip("pytorch_lightning")
    model = MODEL_SOURCE.format(PL="pytorch_lightning")
    program = f"""
import sys
sys.modules["lightning"] = None  # as if only pytorch_lightning were installed
from contexta.integrations.lightning import ContextaLogger
import pytorch_lightning
{model}
logger = ContextaLogger("fallback", workspace={str(tmp_path / "ws")!r}, project_name="tiny")
print(isinstance(logger, pytorch_lightning.loggers.Logger), "lightning.pytorch" in sys.modules)
trainer(logger).fit(TinyClassifier(), *loaders())
from contexta import Contexta
with Contexta(workspace={str(tmp_path / "ws")!r}, config={{"project_name": "tiny"}}) as ctx:
    run = ctx.list_runs()[0]
    points = len(ctx.get_metric_series("fallback", "train_loss").points)
    print(run.status, run.metadata["lightning"]["package"], points)
"""
    result = _python(program)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-2:] == ["True False", "completed pytorch_lightning 8"]


def test_without_any_lightning_the_import_says_what_to_install() -> None:
    result = _python(
        """
        import sys
        sys.modules["lightning"] = sys.modules["pytorch_lightning"] = None
        try:
            import contexta.integrations.lightning
        except ImportError as error:
            print(type(error).__name__, error.code, "pip install 'contexta[lightning]'" in error.message)
        """
    )
    assert result.stdout.split() == ["MissingDependencyError", "dependency_missing", "True"]


def test_import_contexta_leaves_lightning_unloaded() -> None:
    result = _python(
        """
        import sys, contexta, contexta.integrations
        from contexta import Contexta
        print(sorted(m for m in ("lightning", "pytorch_lightning", "torch") if m in sys.modules))
        """
    )
    assert result.stdout.strip() == "[]"


def test_conflicting_or_bad_arguments_are_refused_at_construction(workspace: Path) -> None:
    with Contexta(workspace=workspace, config={"project_name": "tiny"}) as ctx:
        with pytest.raises(ConfigurationError) as conflict:
            ContextaLogger("r", ctx=ctx, workspace=workspace)
        assert conflict.value.code == "lightning_logger_arguments_conflict"
        logger = ContextaLogger("r", ctx=ctx)
        assert (logger.name, logger.save_dir) == ("tiny", str(workspace))
    with pytest.raises(ConfigurationError):
        ContextaLogger("r", project_name="a", config={"project_name": "b"})
    with pytest.raises(ValidationError):
        ContextaLogger("")
    with pytest.raises(ValidationError):
        ContextaLogger("r", tags=["not", "a", "mapping"])  # type: ignore[arg-type]


def test_a_given_contexta_stays_open_and_holds_the_run(workspace: Path) -> None:
    with Contexta(workspace=workspace, config={"project_name": "tiny"}) as ctx:
        logger = ContextaLogger("shared", ctx=ctx)
        make_trainer(logger).fit(TinyClassifier(), *loaders())
        with ctx.run("after") as run:  # still usable: the logger did not close it
            run.metric("x", 1.0)
        assert sorted(run.name for run in ctx.list_runs()) == ["after", "shared"]


@dataclass
class _Schedule:
    warmup: int
    path: Path


def test_hyperparameters_become_plain_nested_json() -> None:
    params = Namespace(
        lr=torch.tensor(0.25),
        schedule=_Schedule(3, Path("/data/x")),
        layers=(8, 4),
        eps=float("nan"),
        model=torch.nn.Linear(1, 1),
    )
    assert hyperparameter_document(params) == {
        "lr": 0.25,
        "schedule": {"warmup": 3, "path": "/data/x"},
        "layers": [8, 4],
        "eps": "nan",
        "model": "Linear(in_features=1, out_features=1, bias=True)",
    }


def test_keys_are_routed_by_their_first_word() -> None:
    router = MetricRouter()
    groups, renamed = router.split({"val/acc": 1.0, "epoch": 0.0, "valid.f1": 2.0})
    assert groups == {"validate": {"val/acc": 1.0, "epoch": 0.0, "valid.f1": 2.0}}
    groups, renamed = router.split({"trainable_params": 5, "loss": 1.0, "test_acc@1": 0.5, "train-x": 1})
    assert groups == {
        "train": {"trainable_params": 5, "loss": 1.0, "train-x": 1},
        "test": {"test_acc_1": 0.5},
    }
    assert renamed == [("test_acc@1", "test_acc_1")]


def _events(workspace: Path) -> list[dict[str, Any]]:
    import orjson

    events = []
    for line in (workspace / "cache" / "capture" / "record.jsonl").read_bytes().splitlines():
        document = orjson.loads(line)
        if document["payload_type"] == "StructuredEventRecord":
            events.append(document["payload"]["payload"])
    return events


def test_a_pickled_logger_carries_its_settings_not_its_open_run(workspace: Path) -> None:
    """What `ddp_spawn` does to a logger: the copy records into the same workspace on its own."""
    import pickle

    logger = ContextaLogger("spawned", workspace=workspace, project_name="tiny", tags={"k": "v"})
    logger.log_metrics({"train_loss": 1.0}, step=0)  # the original has its run open
    copy = pickle.loads(pickle.dumps(logger))
    logger.finalize("success")
    assert (copy.run_name, copy.version, copy.save_dir) == ("spawned", logger.version, logger.save_dir)
    copy.log_metrics({"train_loss": 0.5}, step=1)
    copy.finalize("success")
    with Contexta(workspace=workspace, config={"project_name": "tiny"}) as ctx:
        assert ctx.get_metric_series("spawned", "train_loss").values == (1.0, 0.5)
        assert [run.tags for run in ctx.list_runs(all_executions=True)] == [{"k": "v"}]
