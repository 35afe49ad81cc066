"""The run a Keras callback captures into: which stage each hook's logs go to, at which step, and
when the run and its stages open and close. Keras-free, so the callback stays a thin shell.

Keras calls the same test hooks for `evaluate` and for the validation inside `fit`; they are told
apart by whether a `fit` is under way (between `on_train_begin` and `on_train_end`). Steps:
- train batches: a global batch step, counted across epochs (and across `fit` calls) from 0;
- epochs: the epoch number Keras passes (0-based, as in `History.epoch`), for train and validate;
- validation and evaluation batches: a global step per stage, counted across calls from 0;
- an `evaluate` result: the number of that `evaluate` call in this run, from 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from contexta.integrations._keras_logs import LogRecorder

if TYPE_CHECKING:
    from contexta.capture import RunScope, Scope, StageScope

__all__ = ["KerasRun", "RunOpener"]

# Opens the run on first use, given the call ("fit" or "evaluate") that needs it and that call's
# Keras params; the callback supplies it, knowing the model and the user's arguments.
RunOpener = Callable[[str, Mapping[str, Any]], "RunScope"]

_VALIDATION_PREFIX = "val_"


class _BatchCounter:
    """A global batch step from Keras's per-call batch index: the batches of earlier epochs or calls
    plus this one's index (which jumps by `steps_per_execution` when that is above 1)."""

    __slots__ = ("last", "offset")

    def __init__(self) -> None:
        self.offset = 0
        self.last = -1

    def next_round(self) -> None:
        self.offset += self.last + 1
        self.last = -1


class KerasRun:
    """Routes a Keras training's hooks into one Contexta run (see the module docstring)."""

    def __init__(self, open_run: RunOpener, *, log_batches: bool, owns_run: bool) -> None:
        self._open_run = open_run
        self._owns_run = owns_run
        self.log_batches = log_batches
        self.run: RunScope | None = None
        self.in_fit = False
        # The next test hooks are an `evaluate` called from inside a running `fit` (by a callback of
        # the user's), not the fit's validation: set by the callback, which can tell them apart.
        self.nested_evaluate = False
        self.train: StageScope | None = None
        self._validate: StageScope | None = None
        self._evaluate: StageScope | None = None
        self._in_validation = False
        self._start_counting()
        self.train_batch_logs = LogRecorder("batch/")
        self._epoch_logs = LogRecorder()
        self._validation_batch_logs = LogRecorder("batch/val_")
        self._evaluation_batch_logs = LogRecorder("batch/")
        self._evaluation_logs = LogRecorder()

    def _start_counting(self) -> None:
        """Steps start from 0 in each run."""
        self._evaluations = 0
        self.train_batches = _BatchCounter()
        self._validation_batches = _BatchCounter()
        self._evaluation_batches = _BatchCounter()

    def _ensure_run(self, call: str, params: Mapping[str, Any]) -> RunScope:
        """The run to capture into: opened now when there is none yet, or when the one this
        callback opened was closed (by `close()`, or by a `with` block that ended)."""
        if self.run is None or (self._owns_run and self.run.status != "open"):
            self.run = self._open_run(call, params)
            self._start_counting()
        return self.run

    @property
    def evaluating(self) -> bool:
        """Whether an `evaluate` call's stage is open (its `on_test_end` not reached yet)."""
        return self._evaluate is not None

    def call_began(self) -> bool:
        """A new `fit`, `evaluate` or `predict` call is starting. Stages still open from an earlier
        call mean that call raised (Keras has no hook for that, and the caller caught it): they are
        closed `failed`, so this call is routed as itself (an `evaluate` is not taken for the dead
        fit's validation) and can open its stages again. True when there were such stages."""
        stale = [scope for scope in (self._evaluate, self._validate, self.train) if scope is not None]
        self._evaluate = self._validate = self.train = None
        self.in_fit = self._in_validation = False
        for scope in stale:
            scope.close("failed")
        if stale and self.run is not None and self.run.status == "open":
            self.run.event(
                "keras.call.unfinished",
                message="an earlier fit or evaluate of this callback raised before it ended; "
                "its stages were closed failed",
                level="warning",
                attributes={"stages": [scope.name for scope in stale]},
            )
        return bool(stale)

    # -- fit ----------------------------------------------------------------------------------

    def fit_began(self, params: Mapping[str, Any]) -> None:
        """Open the run if this is its first call, then the `train` stage."""
        run = self._ensure_run("fit", params)
        run.event("keras.fit.began", message="model.fit started", attributes={"params": dict(params)})
        self.in_fit = True
        self.train = run.stage("train")

    def epoch_began(self) -> None:
        self.train_batches.next_round()

    def train_batch_ended(self, batch: int, logs: Mapping[str, Any]) -> None:
        """The hot path: a train batch's logs at the global batch step."""
        counter = self.train_batches
        counter.last = batch
        if self.train is not None:
            self.train_batch_logs.record(self.train, logs, counter.offset + batch)

    def epoch_ended(self, epoch: int, logs: Mapping[str, Any]) -> None:
        """An epoch's logs at `epoch`: `val_*` on the `validate` stage, the rest on `train`."""
        train = {name: value for name, value in logs.items() if not name.startswith(_VALIDATION_PREFIX)}
        if train and self.train is not None:
            self._epoch_logs.record(self.train, train, epoch)
        if len(train) < len(logs):
            validation = {name: value for name, value in logs.items() if name.startswith(_VALIDATION_PREFIX)}
            self._epoch_logs.record(self._validation_stage(), validation, epoch)

    def fit_ended(self) -> None:
        """Close the `train` and `validate` stages; the run stays open for `evaluate`."""
        self.in_fit = False
        for stage in (self._validate, self.train):
            if stage is not None:
                stage.close()
        self._validate = self.train = None

    def _validation_stage(self) -> StageScope:
        if self._validate is None:
            assert self.run is not None  # fit began
            self._validate = self.run.stage("validate")
        return self._validate

    # -- validation inside fit, and evaluate ----------------------------------------------------

    def test_began(self, params: Mapping[str, Any]) -> None:
        """Validation inside a `fit` (the `validate` stage), else an `evaluate` call (the
        `evaluate` stage, opened again for each call; the run opens here when no `fit` came first)."""
        nested, self.nested_evaluate = self.nested_evaluate, False
        if self.in_fit and self.run is not None and not nested:
            self._in_validation = True
            self._validation_stage()
            self._validation_batches.next_round()
            return
        run = self._ensure_run("evaluate", params)
        self._in_validation = False
        self._evaluate = run.stage("evaluate")
        self._evaluation_batches.next_round()

    def test_batch_ended(self, batch: int, logs: Mapping[str, Any]) -> None:
        if self._in_validation:
            counter, recorder, stage = self._validation_batches, self._validation_batch_logs, self._validate
        else:
            counter, recorder, stage = self._evaluation_batches, self._evaluation_batch_logs, self._evaluate
        counter.last = batch
        if stage is not None:
            recorder.record(stage, logs, counter.offset + batch)

    def test_ended(self, logs: Mapping[str, Any]) -> None:
        """An `evaluate` call's result at its call number, and its stage closed. Validation's result
        arrives again, named `val_*`, at the epoch's end: it is recorded there, at the epoch."""
        if self._in_validation:
            self._in_validation = False
            return
        if self._evaluate is not None:
            if logs:
                self._evaluation_logs.record(self._evaluate, logs, self._evaluations)
            self._evaluate.close()
            self._evaluate = None
        self._evaluations += 1

    # -- the end --------------------------------------------------------------------------------

    def close(self, status: str = "completed") -> None:
        """Close the open stages with `status`, and the run when this callback opened it (a later
        `fit` or `evaluate` then opens a new run, a new execution of the same name)."""
        for scope in self._open_scopes():
            scope.close(status)

    def finish(self, error: BaseException) -> None:
        """Close as a `with` block that `error` escaped: `failed` (`cancelled` for Ctrl-C) with the
        error's type, message and traceback kept, as leaving `with ctx.run(...)` does."""
        for scope in self._open_scopes():
            scope.__exit__(type(error), error, error.__traceback__)

    def _open_scopes(self) -> list[Scope]:
        """The open stages, innermost first, then the run when it is this callback's to close; from
        now on this object holds none of them."""
        scopes: list[Scope] = [s for s in (self._evaluate, self._validate, self.train) if s is not None]
        if self.run is not None and self._owns_run:
            scopes.append(self.run)
        self._evaluate = self._validate = self.train = None
        self.in_fit = self._in_validation = False
        return scopes
