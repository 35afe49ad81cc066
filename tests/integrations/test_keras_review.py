"""Review of the Keras callback against what a demanding user does: a `fit` that raised and was caught
(a notebook cell interrupted, a divergence handled by the caller), then more calls with the same
callback. Keras has no hook for a `fit` that raised, so these tests hold the callback to what the
user sees afterwards in the run: the later calls recorded, and nothing of the callback's raising."""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is first imported; TensorFlow is not installed

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import pytest
from tests.integrations.test_keras import BATCH_SIZE, Logs, _data, _model, _stored

from contexta import Contexta
from contexta.errors import ValidationError
from contexta.integrations.keras import ContextaCallback

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


class _Diverges(keras.callbacks.Callback):
    """Raises at the end of the second epoch, once."""

    def __init__(self) -> None:
        super().__init__()
        self.done = False

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if epoch == 1 and not self.done:
            self.done = True
            raise RuntimeError("diverged")


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "keras-review"}) as ctx:
        yield ctx


def _fit_that_raises(model: Any, callback: ContextaCallback) -> None:
    x, y = _data(128, seed=1)
    with pytest.raises(RuntimeError, match="diverged"):
        model.fit(
            x,
            y,
            epochs=3,
            batch_size=BATCH_SIZE,
            validation_split=0.25,
            callbacks=[callback, _Diverges()],
            verbose=0,
        )


def test_evaluate_after_a_fit_that_raised_is_recorded_as_an_evaluation(ctx: Contexta) -> None:
    callback = ContextaCallback("caught", ctx=ctx)
    model = _model()
    _fit_that_raises(model, callback)

    x, y = _data(64, seed=2)
    result = model.evaluate(x, y, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0, return_dict=True)
    callback.close()

    stages = {stage.name: stage.status for stage in ctx.list_stages("caught")}
    assert stages == {"train": "failed", "validate": "failed", "evaluate": "completed"}
    assert _stored(ctx, "caught", "evaluate", "loss") == [(0, result["loss"])]


def test_a_second_fit_after_one_that_raised_trains_and_is_recorded(ctx: Contexta) -> None:
    callback = ContextaCallback("retried", ctx=ctx)
    model = _model()
    _fit_that_raises(model, callback)

    x, y = _data(128, seed=1)
    history = model.fit(
        x, y, epochs=4, initial_epoch=2, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0
    )
    callback.close()

    # A stage is known by its name in the run: `train` is the second fit's, completed; the dead fit's
    # validation, never reopened, stays failed.
    stages = {stage.name: stage.status for stage in ctx.list_stages("retried")}
    assert stages == {"train": "completed", "validate": "failed"}
    epochs = [(step, value) for step, value in _stored(ctx, "retried", "train", "loss") if step >= 2]
    assert epochs == list(zip(history.epoch, history.history["loss"], strict=True))


def test_an_evaluate_that_raised_does_not_break_the_next_one(ctx: Contexta) -> None:
    class _Fails(keras.callbacks.Callback):
        def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
            raise RuntimeError("bad batch")

    callback = ContextaCallback("evaluations", ctx=ctx)
    model = _model()
    x, y = _data(64, seed=2)
    with pytest.raises(RuntimeError, match="bad batch"):
        model.evaluate(x, y, batch_size=BATCH_SIZE, callbacks=[callback, _Fails()], verbose=0)
    result = model.evaluate(x, y, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0, return_dict=True)
    callback.close()

    assert {stage.name: stage.status for stage in ctx.list_stages("evaluations")} == {"evaluate": "completed"}
    # The call that raised produced no result: the one that finished is the first result.
    assert _stored(ctx, "evaluations", "evaluate", "loss") == [(0, result["loss"])]


def test_an_evaluate_called_from_inside_fit_does_not_end_the_fit(ctx: Contexta) -> None:
    """A callback of the user's evaluating on held-out data at each epoch's end, with our callback in
    its list too: the fit is still under way, and its stages stay open and keep recording."""
    x, y = _data(128, seed=1)
    held_x, held_y = _data(32, seed=3)
    held_out: list[float] = []

    class _HeldOut(keras.callbacks.Callback):
        def __init__(self, watched: ContextaCallback) -> None:
            super().__init__()
            self.watched = watched

        def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
            self.model.predict(held_x, callbacks=[self.watched], verbose=0)  # not captured, harmless
            result = self.model.evaluate(
                held_x, held_y, callbacks=[self.watched], verbose=0, return_dict=True
            )
            held_out.append(result["loss"])
            self.model.predict(held_x, callbacks=[self.watched], verbose=0)

    with ContextaCallback("held-out", ctx=ctx) as callback:
        history = _model().fit(
            x,
            y,
            epochs=3,
            batch_size=BATCH_SIZE,
            validation_split=0.25,
            callbacks=[callback, _HeldOut(callback)],
            verbose=0,
        )

    stages = {stage.name: stage.status for stage in ctx.list_stages("held-out")}
    assert stages == {"train": "completed", "validate": "completed", "evaluate": "completed"}
    assert _stored(ctx, "held-out", "validate", "val_loss") == list(
        zip(history.epoch, history.history["val_loss"], strict=True)
    )
    assert _stored(ctx, "held-out", "evaluate", "loss") == list(enumerate(held_out))
    assert _stored(ctx, "held-out", "train", "loss") == list(
        zip(history.epoch, history.history["loss"], strict=True)
    )


def test_a_run_name_contexta_refuses_fails_when_the_callback_is_made(ctx: Contexta) -> None:
    with pytest.raises(ValidationError, match="the limit is 63") as too_long:
        ContextaCallback(
            "dense-relu-adam-lr0.05-batch32-epochs3-validation0.25-seed7-with-dropout0.1", ctx=ctx
        )
    with pytest.raises(ValidationError) as empty:
        ContextaCallback("", ctx=ctx)
    assert (too_long.value.code, empty.value.code) == ("name_too_long", "field_invalid")


def test_a_model_named_longer_than_a_run_name_still_trains_and_is_recorded(ctx: Contexta) -> None:
    model = _model()
    model.name = "line-classifier-dense8-relu-softmax-adam-lr0.05-sparse-categorical-crossentropy"
    x, y = _data(64, seed=0)
    with ContextaCallback(ctx=ctx) as callback:
        history = model.fit(x, y, epochs=2, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0)

    [run] = ctx.list_runs()
    assert run.status == "completed"
    assert _stored(ctx, run.run_id, "train", "loss") == list(
        zip(history.epoch, history.history["loss"], strict=True)
    )


def test_a_callback_reused_for_another_model_gives_that_training_its_own_run(ctx: Contexta) -> None:
    """Comparing two architectures with one callback: each `fit` of another model is a run of its own
    (its config, its epochs from 0), not the first model's run with a second set of epochs 0, 1.
    An `evaluate` of another model (the best one loaded back) stays in the run of the last fit."""
    x, y = _data(128, seed=1)
    first, second = _model(), _model()
    second.name = "wider"
    keras.utils.set_random_seed(8)
    second.set_weights([weight * 0.5 for weight in second.get_weights()])  # another start, another curve
    callback = ContextaCallback("compare", ctx=ctx)
    first_history = first.fit(x, y, epochs=2, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0)
    second_history = second.fit(x, y, epochs=2, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0)
    loaded = keras.models.clone_model(second)
    loaded.compile(loss="sparse_categorical_crossentropy")
    loaded.set_weights(second.get_weights())
    result = loaded.evaluate(x, y, batch_size=BATCH_SIZE, callbacks=[callback], verbose=0, return_dict=True)
    callback.close()

    runs = sorted(ctx.list_runs(all_executions=True), key=lambda run: run.execution_number)
    assert [(run.execution_number, run.status) for run in runs] == [(1, "completed"), (2, "completed")]
    assert runs[0].run_id != runs[1].run_id
    assert first_history.history["loss"] != second_history.history["loss"]
    for run, history in zip(runs, (first_history, second_history), strict=True):
        assert _stored(ctx, run.run_id, "train", "loss") == list(
            zip(history.epoch, history.history["loss"], strict=True)
        )
    assert ctx.get_run_snapshot(runs[1].run_id).run.config_snapshot["model"]["name"] == "wider"
    assert _stored(ctx, runs[1].run_id, "evaluate", "loss") == [(0, result["loss"])]
