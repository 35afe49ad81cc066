"""Keras 3: `ContextaCallback` captures `fit` and `evaluate` into one Contexta run.

```python
with ContextaCallback("mnist-mlp", ctx=ctx) as callback:
    model.fit(x, y, validation_data=(xv, yv), epochs=3, callbacks=[callback])
    model.evaluate(xt, yt, callbacks=[callback])
```

What goes where (all names are Keras's own log names, so `history.history` keys read back as is):
- stage `train`: each epoch's logs (`loss`, `accuracy`, ...) at step = the epoch (0-based, as Keras
  passes it) and each batch's logs as `batch/loss`, ... at a global batch step (from 0, across epochs);
- stage `validate`: the epoch's `val_*` logs at the epoch, and validation batches as `batch/val_*`;
- stage `evaluate`: each `evaluate` call's result (`loss`, ...) at step = that call's number (from 0),
  and its batches as `batch/loss`, ... at a global step;
- the run's `config_snapshot`: Keras's version and backend, the model's config and parameter count,
  the optimizer's config, the compile config and the first call's params (`fit`: epochs, steps).

The run opens at the first `fit` (or `evaluate`) and stays open across calls, because a user who
fits and then evaluates with one callback expects one run (a `fit` of another model opens a new
one); it closes at `callback.close()` or when the `with` block ends (`failed` if an exception
escapes it). Keras has no hook for a `fit` that raised, so without either the run is closed when
the process ends, as every open run is; a caught failure's stages are closed `failed` by the next
call. Given an open `run=` instead of `ctx`, the callback adds stages to it and never closes the
run itself. Given neither, it opens a Contexta of its own on `workspace` (with `project_name` and `config` as
`Contexta(config=...)` takes them) and closes it with the run, as the Lightning and Hugging Face
integrations do.

Keras must be importable with a backend (`KERAS_BACKEND=torch` or `jax`, or TensorFlow installed);
importing this module without it raises `MissingDependencyError` saying what to install or set.
"""

from __future__ import annotations

import inspect
import os
import weakref
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from contexta.errors import ConfigurationError
from contexta.integrations._keras_checkpoints import CheckpointFiles
from contexta.integrations._keras_config import keras_config_snapshot
from contexta.integrations._keras_import import keras_import_error, keras_version_error
from contexta.integrations._keras_run import KerasRun
from contexta.integrations._own_contexta import checked_run_name, fitting_run_name, own_contexta_config

try:
    import keras
except ImportError as _error:
    raise keras_import_error(_error) from None
if (_too_old := keras_version_error(str(keras.__version__))) is not None:
    raise _too_old

if TYPE_CHECKING:
    from contexta import Contexta
    from contexta.capture import RunScope

__all__ = ["ContextaCallback"]


class ContextaCallback(keras.callbacks.Callback):
    """A Keras callback that records `fit` and `evaluate` into a Contexta run (see the module
    docstring for what is recorded where).

    The callback opens `ctx.run(run_name, ...)` at the first `fit` or `evaluate` (`run_name` defaults
    to the model's name) in `ctx`, or in a Contexta of its own on `workspace` when no `ctx` is given;
    or, given `run`, an open run of your own, it only adds stages to it. `log_batches=False`
    records epochs and results only. `checkpoints`: `keras.callbacks.ModelCheckpoint` callbacks of the
    same `fit` (saving per epoch) whose files are registered as `checkpoint` artifacts on the `train`
    stage, hashed, each time a file is written or rewritten.
    """

    def __init__(
        self,
        run_name: str | None = None,
        *,
        ctx: Contexta | None = None,
        run: RunScope | None = None,
        workspace: str | os.PathLike[str] = ".contexta",
        project_name: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        dataset_ref: str | None = None,
        config_snapshot: Mapping[str, Any] | None = None,
        log_batches: bool = True,
        checkpoints: Sequence[Any] = (),
    ) -> None:
        super().__init__()
        if ctx is not None and run is not None:
            raise ConfigurationError(
                "ContextaCallback takes ctx (it opens a run there) or run (an open run of yours), not both",
                code="keras_callback_target_invalid",
            )
        if run is not None and (tags or metadata or dataset_ref or config_snapshot or run_name):
            raise ConfigurationError(
                "run_name, tags, metadata, dataset_ref and config_snapshot describe a run the callback "
                "opens; with run= give them to ctx.run(...) instead",
                code="keras_callback_target_invalid",
            )
        if not isinstance(log_batches, bool):
            raise ConfigurationError(
                f"log_batches must be True or False, got {log_batches!r}",
                code="keras_callback_option_invalid",
            )
        self._ctx = ctx
        self._owns_ctx = ctx is None and run is None
        self._owns_run = run is None
        self._run_model: weakref.ref[Any] | None = None  # the model whose call opened the run
        self._workspace = workspace
        self._config = own_contexta_config(
            given=ctx is not None or run is not None,
            workspace=workspace,
            project_name=project_name,
            config=config,
        )
        self._run_name = checked_run_name(run_name)
        self._tags, self._metadata, self._dataset_ref = tags, metadata, dataset_ref
        self._user_snapshot = dict(config_snapshot or {})
        self._capture = KerasRun(self._open_run, log_batches=log_batches, owns_run=run is None)
        self._capture.run = run
        self._checkpoints = CheckpointFiles(checkpoints)
        self._last_epoch: tuple[int, Mapping[str, Any]] | None = None

    @property
    def run(self) -> RunScope | None:
        """The run captured into: None until the first `fit` or `evaluate` opens it; after
        `close()`, the run that was closed (a later `fit` or `evaluate` opens a new one)."""
        return self._capture.run

    def _open_run(self, call: str, params: Mapping[str, Any]) -> RunScope:
        if self._ctx is None:  # neither ctx= nor run=: a Contexta of the callback's own, closed with it
            from contexta import Contexta

            self._ctx = Contexta(workspace=self._workspace, config=self._config or None)
        model = self.model  # set by Keras before any hook
        self._run_model = weakref.ref(model) if model is not None else None
        snapshot = keras_config_snapshot(keras, model, call, params)
        name = self._run_name or fitting_run_name(str(getattr(model, "name", None) or "keras"), "keras")
        return self._ctx.run(
            name,
            tags=self._tags,
            metadata=self._metadata,
            dataset_ref=self._dataset_ref,
            config_snapshot={**snapshot, **self._user_snapshot},
        )

    # -- Keras hooks ------------------------------------------------------------------------------

    def set_params(self, params: dict[str, Any]) -> None:
        """Keras builds a new callback list, and so sets params, at the start of every `fit`,
        `evaluate` and `predict` call, and never for the validation inside `fit`: the one moment
        the callback learns that an earlier call of its own raised (Keras calls no hook for that)."""
        super().set_params(params)
        if not self._capture.in_fit and self._capture.train is None and not self._capture.evaluating:
            return  # nothing left open: the common case
        nested = _call_inside_fit(self.model)
        if nested is not None:  # an `evaluate` or `predict` from inside a `fit` (a user's callback)
            self._capture.nested_evaluate = nested == "evaluate"  # recorded as one; the fit goes on
            return
        self._register_checkpoints()  # the epochs that did end before the earlier fit raised
        self._last_epoch = None
        self._capture.call_began()

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._fits_another_model():
            self._capture.close()  # that model's run is done; fit_began opens this one's
        self._capture.fit_began(self.params or {})

    def _fits_another_model(self) -> bool:
        """Whether this `fit` trains another model than the one the open run (this callback's own)
        describes: its config snapshot, its epochs numbered from 0 again. An `evaluate` of another
        model (the best checkpoint loaded back) stays in the run; a `fit` is a training of its own."""
        run, previous = self._capture.run, self._run_model
        if not self._owns_run or run is None or run.status != "open" or previous is None:
            return False
        return previous() is not self.model

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._capture.epoch_began()
        self._register_checkpoints()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if logs and self._capture.log_batches:
            self._capture.train_batch_ended(batch, logs)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if logs:
            self._capture.epoch_ended(epoch, logs)
        if self._checkpoints:
            # Registered at the next epoch's start or the end of fit: by then every callback's
            # `on_epoch_end` has run, so a file found changed was written at this epoch's end.
            self._last_epoch = (epoch, dict(logs or {}))

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._register_checkpoints()
        self._last_epoch = None
        self._capture.fit_ended()

    def _register_checkpoints(self) -> None:
        """Register the checkpoint files of the last epoch that ended, written by now."""
        if self._last_epoch is not None and self._capture.train is not None:
            self._checkpoints.register_new(self._capture.train, *self._last_epoch)

    def on_test_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._capture.test_began(self.params or {})

    def on_test_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if logs and self._capture.log_batches:
            self._capture.test_batch_ended(batch, logs)

    def on_test_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._capture.test_ended(logs or {})

    # -- the end ----------------------------------------------------------------------------------

    def close(self, status: str = "completed") -> None:
        """Close the run this callback opened (and any stage left open) with `status`
        ("completed", "failed" or "cancelled"); given `run=`, close only its stages. Idempotent. A
        Contexta the callback opened itself (no `ctx=`) is closed too, after its run."""
        self._capture.close(status)
        self._close_own_contexta()

    def _close_own_contexta(self) -> None:
        ctx, owned = self._ctx, self._owns_ctx
        if owned and ctx is not None:
            self._ctx = None  # a later `fit` opens a new one
            ctx.close()

    def __enter__(self) -> ContextaCallback:
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            self.close()
        else:
            self._capture.finish(error)
            self._close_own_contexta()


def _call_inside_fit(model: Any) -> str | None:
    """The call now starting (the innermost `fit`, `evaluate` or `predict` of `model`, which is
    building its callback list) when a `fit` of `model` is beneath it on the stack, else None: the
    one way to tell an `evaluate` nested in a running `fit` from one after a `fit` that raised."""
    frame = inspect.currentframe()
    current: str | None = None
    try:
        while frame is not None:
            name = frame.f_code.co_name
            if name in _CALLS and frame.f_locals.get("self") is model:
                if current is not None and name == "fit":
                    return current
                current = current or name
            frame = frame.f_back
        return None
    finally:
        del frame  # frames refer to their locals: drop the reference rather than keep a cycle


_CALLS = frozenset({"fit", "evaluate", "predict"})
