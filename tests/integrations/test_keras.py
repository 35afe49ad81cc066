"""ContextaCallback on a real Keras 3 training (torch backend, CPU): what `fit` and `evaluate` report
through their hooks is what the run holds, at the steps the docs promise.

A plain recording callback sits beside ours in the same `callbacks` list and keeps every log Keras
passed; the expected series are derived from that, so each comparison is exact."""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is first imported; TensorFlow is not installed

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import keras
import numpy as np
import pytest

from contexta import Contexta, Workspace
from contexta.capture import read_capture_log
from contexta.errors import CaptureWarning, ConfigurationError, NotFoundError
from contexta.integrations.keras import ContextaCallback

# Keras's torch backend converts tensors in a way NumPy 2 deprecates; not ours to fix here.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

EPOCHS = 3
Logs = dict[str, Any] | None
BATCH_SIZE = 32


class Recorder(keras.callbacks.Callback):
    """Keeps every hook call with a copy of its logs, in order: ("train_batch", batch, logs), ..."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int | None, dict[str, Any]]] = []

    def _keep(self, hook: str, index: int | None, logs: dict[str, Any] | None) -> None:
        self.calls.append((hook, index, dict(logs or {})))

    def on_train_begin(self, logs: Logs = None) -> None:
        self._keep("train_begin", None, logs)

    def on_train_end(self, logs: Logs = None) -> None:
        self._keep("train_end", None, logs)

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._keep("train_batch", batch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self._keep("epoch", epoch, logs)

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._keep("test_batch", batch, logs)

    def on_test_end(self, logs: Logs = None) -> None:
        self._keep("test_end", None, logs)

    def expected(self) -> dict[tuple[str, str], list[tuple[int, float]]]:
        """(stage, metric key) -> [(step, value)], as the integration's docs say they are recorded."""
        series: dict[tuple[str, str], list[tuple[int, float]]] = {}
        in_fit = False
        train_step = validation_step = evaluation_step = evaluations = 0

        def add(stage: str, key: str, step: int, value: float) -> None:
            series.setdefault((stage, key), []).append((step, value))

        for hook, index, logs in self.calls:
            if hook == "train_begin":
                in_fit = True
            elif hook == "train_end":
                in_fit = False
            elif hook == "train_batch":
                for name, value in logs.items():
                    add("train", f"batch/{name}", train_step, value)
                train_step += 1
            elif hook == "epoch":
                assert index is not None
                for name, value in logs.items():
                    add("validate" if name.startswith("val_") else "train", name, index, value)
            elif hook == "test_batch":
                for name, value in logs.items():
                    if in_fit:
                        add("validate", f"batch/val_{name}", validation_step, value)
                    else:
                        add("evaluate", f"batch/{name}", evaluation_step, value)
                if in_fit:
                    validation_step += 1
                else:
                    evaluation_step += 1
            elif hook == "test_end" and not in_fit:
                for name, value in logs.items():
                    add("evaluate", name, evaluations, value)
                evaluations += 1
        return series


def _data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points whose class is which side of a line they fall on: a signal a tiny model learns."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    return x, y


def _model() -> Any:
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(2, activation="softmax", name="classes"),
        ],
        name="line-classifier",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.05),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _stored(ctx: Contexta, run: str, stage: str, key: str) -> list[tuple[int, float]]:
    return [(point.step, point.value) for point in ctx.get_metric_series(run, key, stage=stage).points]


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "keras-tests"}) as ctx:
        yield ctx


def test_fit_then_evaluate_is_one_run_holding_every_log_keras_passed(ctx: Contexta) -> None:
    x, y = _data(320, seed=0)
    x_test, y_test = _data(128, seed=1)
    model, recorder = _model(), Recorder()

    with ContextaCallback("line-fit", ctx=ctx, tags={"team": "vision"}) as callback:
        history = model.fit(
            x[:256],
            y[:256],
            validation_data=(x[256:], y[256:]),
            epochs=EPOCHS,
            batch_size=BATCH_SIZE,
            callbacks=[recorder, callback],
            verbose=0,
        )
        result = model.evaluate(
            x_test, y_test, batch_size=BATCH_SIZE, callbacks=[recorder, callback], verbose=0, return_dict=True
        )

    [run] = ctx.list_runs()
    assert (run.name, run.status, run.tags) == ("line-fit", "completed", {"team": "vision"})
    stages = ctx.list_stages("line-fit")
    assert [(stage.name, stage.status) for stage in stages] == [
        ("train", "completed"),
        ("validate", "completed"),
        ("evaluate", "completed"),
    ]
    expected = recorder.expected()
    assert {("train", "batch/loss"), ("validate", "val_loss"), ("validate", "batch/val_loss")} <= set(
        expected
    )
    for (stage, key), points in expected.items():
        assert _stored(ctx, "line-fit", stage, key) == points, (stage, key)
    # The same numbers as Keras's own History and evaluate result, at the epochs Keras numbers.
    assert _stored(ctx, "line-fit", "train", "loss") == list(enumerate(history.history["loss"]))
    assert _stored(ctx, "line-fit", "validate", "val_accuracy") == list(
        enumerate(history.history["val_accuracy"])
    )
    assert _stored(ctx, "line-fit", "evaluate", "accuracy") == [(0, result["accuracy"])]
    steps_per_epoch = 256 // BATCH_SIZE
    assert [step for step, _ in _stored(ctx, "line-fit", "train", "batch/loss")] == list(
        range(EPOCHS * steps_per_epoch)
    )
    # The model learned the line, so the series carry a real signal.
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert result["accuracy"] > 0.8


def test_the_config_snapshot_holds_the_model_optimizer_and_fit_params(ctx: Contexta) -> None:
    x, y = _data(128, seed=0)
    model = _model()

    with ContextaCallback(ctx=ctx, config_snapshot={"data": {"rows": 128}}) as callback:
        model.fit(x, y, epochs=2, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0)

    [run] = ctx.list_runs()
    assert run.name == "line-classifier"  # the model's name when none is given
    snapshot = run.config_snapshot
    assert snapshot["keras"] == {"version": keras.__version__, "backend": "torch"}
    assert snapshot["fit"] == {"verbose": 0, "epochs": 2, "steps": 4}
    assert snapshot["model"]["class_name"] == "Sequential"
    assert snapshot["model"]["parameters"] == model.count_params() == 4 * 8 + 8 + 8 * 2 + 2
    layers = snapshot["model"]["config"]["layers"]
    assert [(layer["class_name"], layer["config"].get("units")) for layer in layers] == [
        ("InputLayer", None),
        ("Dense", 8),
        ("Dense", 2),
    ]
    assert snapshot["optimizer"]["class_name"] == "Adam"
    assert snapshot["optimizer"]["learning_rate"] == pytest.approx(0.05)
    assert snapshot["compile"]["loss"] == "sparse_categorical_crossentropy"
    assert snapshot["data"] == {"rows": 128}


def test_evaluate_alone_opens_the_run_and_each_call_is_one_step(ctx: Contexta) -> None:
    x, y = _data(96, seed=3)
    model, recorder = _model(), Recorder()
    callback = ContextaCallback("eval-only", ctx=ctx)

    first = model.evaluate(
        x, y, batch_size=BATCH_SIZE, callbacks=[recorder, callback], verbose=0, return_dict=True
    )
    second = model.evaluate(
        x[:64], y[:64], batch_size=BATCH_SIZE, callbacks=[recorder, callback], verbose=0, return_dict=True
    )
    assert callback.run is not None and callback.run.status == "open"
    callback.close()

    [run] = ctx.list_runs()
    assert run.status == "completed"
    assert "fit" not in run.config_snapshot and run.config_snapshot["evaluate"]["steps"] == 3
    assert [stage.name for stage in ctx.list_stages("eval-only")] == ["evaluate"]
    assert _stored(ctx, "eval-only", "evaluate", "loss") == [(0, first["loss"]), (1, second["loss"])]
    assert (
        _stored(ctx, "eval-only", "evaluate", "batch/loss") == recorder.expected()[("evaluate", "batch/loss")]
    )
    assert [step for step, _ in _stored(ctx, "eval-only", "evaluate", "batch/loss")] == [0, 1, 2, 3, 4]


def test_a_run_of_your_own_gets_the_stages_and_stays_open(ctx: Contexta) -> None:
    x, y = _data(64, seed=0)
    with ctx.run("mine") as run:
        callback = ContextaCallback(run=run, log_batches=False)
        _model().fit(x, y, epochs=2, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0)
        callback.close()
        assert run.status == "open"
        run.metric("after", 1.0)

    assert [stage.name for stage in ctx.list_stages("mine")] == ["train"]
    assert [step for step, _ in _stored(ctx, "mine", "train", "loss")] == [0, 1]
    with pytest.raises(NotFoundError):  # log_batches=False
        ctx.get_metric_series("mine", "batch/loss")


def test_a_second_fit_continues_the_batch_steps_and_keras_numbers_its_epochs(ctx: Contexta) -> None:
    x, y = _data(64, seed=0)
    model = _model()
    with ContextaCallback("twice", ctx=ctx) as callback:
        model.fit(x, y, epochs=2, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0)
        model.fit(x, y, initial_epoch=2, epochs=3, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0)

    assert [step for step, _ in _stored(ctx, "twice", "train", "batch/loss")] == [0, 1, 2, 3, 4, 5]
    assert [step for step, _ in _stored(ctx, "twice", "train", "loss")] == [0, 1, 2]
    assert [stage.name for stage in ctx.list_stages("twice")] == ["train"]


def test_after_close_the_callback_opens_a_new_execution_counting_from_zero(ctx: Contexta) -> None:
    x, y = _data(64, seed=0)
    model = _model()
    callback = ContextaCallback("trial", ctx=ctx)
    for _ in range(2):
        with callback:
            model.fit(x, y, epochs=1, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0)

    executions = ctx.list_runs(all_executions=True)
    assert [(run.name, run.status) for run in executions] == [("trial", "completed")] * 2
    for run in executions:
        steps = [
            point.step for point in ctx.get_metric_series(run.run_id, "batch/loss", stage="train").points
        ]
        assert steps == [0, 1]


class _Explodes(keras.callbacks.Callback):
    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if epoch == 1:
            raise RuntimeError("diverged")


def test_a_fit_that_raises_inside_the_with_block_fails_the_run(ctx: Contexta) -> None:
    x, y = _data(64, seed=0)
    with pytest.raises(RuntimeError, match="diverged"), ContextaCallback("boom", ctx=ctx) as callback:
        _model().fit(x, y, epochs=3, batch_size=BATCH_SIZE, callbacks=[callback, _Explodes()], verbose=0)

    [run] = ctx.list_runs()
    assert run.status == "failed" and run.failure is not None and "diverged" in str(run.failure)
    assert [(stage.name, stage.status) for stage in ctx.list_stages("boom")] == [("train", "failed")]
    assert [step for step, _ in _stored(ctx, "boom", "train", "loss")] == [0, 1]


def test_a_metric_name_contexta_refuses_is_warned_about_and_the_others_are_kept(ctx: Contexta) -> None:
    x, y = _data(64, seed=0)
    model = _model()
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc (train)")],
    )

    with (
        pytest.warns(CaptureWarning, match=r"'acc \(train\)' is left out") as warned,
        ContextaCallback("odd", ctx=ctx) as callback,
    ):
        model.fit(x, y, epochs=2, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0)

    assert len([w for w in warned if "batch" not in str(w.message)]) >= 1
    assert [step for step, _ in _stored(ctx, "odd", "train", "loss")] == [0, 1]
    assert len(_stored(ctx, "odd", "train", "batch/loss")) == 4


def test_checkpoint_files_become_artifacts_with_their_digests(ctx: Contexta, tmp_path: Path) -> None:
    x, y = _data(128, seed=0)
    every_epoch = keras.callbacks.ModelCheckpoint(str(tmp_path / "ckpt" / "epoch-{epoch:02d}.keras"))
    # "Best" as the highest val_loss: as the model learns, that file is written at the first epoch
    # and then left alone, so an unchanged file must not be registered again.
    best = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "best.keras"), monitor="val_loss", mode="max", save_best_only=True
    )
    improved: list[int] = []  # the epochs whose val_loss beat every earlier one: when `best` saves
    history_so_far: list[float] = []

    class Improvements(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
            assert logs is not None
            if not history_so_far or logs["val_loss"] > max(history_so_far):
                improved.append(epoch)
            history_so_far.append(logs["val_loss"])

    # One checkpoint before ours in the list and one after: both are found.
    with ContextaCallback("ckpt", ctx=ctx, checkpoints=[every_epoch, best]) as callback:
        _model().fit(
            x[:96],
            y[:96],
            validation_data=(x[96:], y[96:]),
            epochs=3,
            batch_size=BATCH_SIZE,
            callbacks=[best, callback, every_epoch, Improvements()],
            verbose=0,
        )

    assert 0 < len(improved) < 3
    artifacts = ctx.list_artifacts("ckpt")
    assert {artifact.kind for artifact in artifacts} == {"checkpoint"}
    assert {artifact.stage_id for artifact in artifacts} == {"stage:keras-tests.ckpt.train"}
    files = sorted(Path(artifact.location.removeprefix("path:")).name for artifact in artifacts)
    assert files == sorted(
        ["epoch-01.keras", "epoch-02.keras", "epoch-03.keras"] + ["best.keras"] * len(improved)
    )
    for artifact in artifacts:
        path = Path(artifact.location.removeprefix("path:"))
        if path.name.startswith("epoch-"):  # never rewritten: the digest is the file's
            assert artifact.hash_value == blake3.blake3(path.read_bytes()).hexdigest()
    [*_, last_best] = [artifact for artifact in artifacts if artifact.location.endswith("best.keras")]
    assert last_best.hash_value == blake3.blake3((tmp_path / "best.keras").read_bytes()).hexdigest()
    # Each registration names the epoch that wrote the file.
    ctx.flush()
    logged = [
        line["payload"]["manifest"]
        for line in read_capture_log(ctx.workspace / "cache" / "capture" / "artifact.jsonl").lines
    ]
    epochs = sorted(
        (Path(manifest["location_ref"]).name, manifest["attributes"]["epoch"]) for manifest in logged
    )
    assert epochs == sorted(
        [(f"epoch-0{e + 1}.keras", e) for e in range(3)] + [("best.keras", e) for e in improved]
    )


def test_a_per_class_metric_array_is_left_out_after_one_warning_per_series(ctx: Contexta) -> None:
    x, y = _data(64, seed=0)
    model = _model()
    model.compile(
        optimizer="adam",
        loss="categorical_crossentropy",
        metrics=[keras.metrics.F1Score(average=None)],  # one F1 per class: an array in the logs
    )

    with (
        pytest.warns(CaptureWarning, match="'f1_score' is left out") as warned,
        ContextaCallback("arrays", ctx=ctx) as callback,
    ):
        model.fit(x, np.eye(2)[y], epochs=2, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0)

    assert len([w for w in warned if issubclass(w.category, CaptureWarning)]) == 2  # batches, epochs
    assert [step for step, _ in _stored(ctx, "arrays", "train", "loss")] == [0, 1]
    assert [step for step, _ in _stored(ctx, "arrays", "train", "batch/loss")] == [0, 1, 2, 3]
    with pytest.raises(NotFoundError):
        ctx.get_metric_series("arrays", "f1_score")


def test_without_ctx_the_callback_opens_its_own_contexta_and_closes_it_with_the_run(tmp_path: Path) -> None:
    """The same shape as the Lightning and Hugging Face integrations: nothing but a run name needed."""
    x, y = _data(96, seed=5)
    model = _model()
    with ContextaCallback("own", workspace=tmp_path / "own", project_name="solo") as callback:
        model.fit(x, y, epochs=1, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0)
        result = model.evaluate(
            x, y, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0, return_dict=True
        )
        assert callback.run is not None and callback.run.status == "open"
    assert callback._ctx is None  # closed, not left for the process's exit

    with Workspace(tmp_path / "own", config={"project_name": "solo"}) as reader:
        [run] = reader.list_runs()
        stored = _stored(reader, "own", "evaluate", "loss")  # type: ignore[arg-type]
    assert (run.name, run.status) == ("own", "completed")
    assert stored == [(0, result["loss"])]


def test_ctx_run_and_config_are_refused_together(ctx: Contexta) -> None:
    with ctx.run("r") as run, pytest.raises(ConfigurationError) as both:
        ContextaCallback(ctx=ctx, run=run)
    with pytest.raises(ConfigurationError) as configured_twice:
        ContextaCallback(ctx=ctx, project_name="elsewhere")
    with pytest.raises(ConfigurationError) as not_a_mapping:
        ContextaCallback(config="project_name=x")  # type: ignore[arg-type]
    assert both.value.code == "keras_callback_target_invalid"
    assert configured_twice.value.code == "callback_config_conflict"
    assert not_a_mapping.value.code == "callback_config_invalid"


def _python(program: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **environment}
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, check=False
    )


def test_importing_contexta_never_imports_keras() -> None:
    result = _python("import sys, contexta, contexta.integrations; print('keras' in sys.modules)")
    assert result.stdout.split() == ["False"], result.stderr


_IMPORT_THE_CALLBACK = """
from contexta.errors import MissingDependencyError
try:
    import contexta.integrations.keras
except MissingDependencyError as error:
    print(error.code)
    print(error.message)
"""

_HIDE_KERAS = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "keras" or name.startswith("keras."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
"""


def test_without_keras_the_error_says_what_to_install() -> None:
    result = _python(_HIDE_KERAS + _IMPORT_THE_CALLBACK)
    code, message = result.stdout.splitlines()
    assert code == "dependency_missing", result.stderr
    assert "pip install 'contexta[keras]'" in message


def test_without_its_backend_the_error_says_what_to_set() -> None:
    result = _python(_IMPORT_THE_CALLBACK, KERAS_BACKEND="tensorflow")  # TensorFlow is not installed
    code, message = result.stdout.splitlines()
    assert code == "keras_backend_missing", result.stderr
    assert "KERAS_BACKEND=torch" in message
