"""Hugging Face `Trainer` runs captured by Contexta: `Trainer(..., callbacks=[ContextaCallback()])`.

One `trainer.train()` is one run. It opens on train begin with the training arguments and the model
configuration as its `config_snapshot`; the Trainer's logs become metrics at `state.global_step`
(training logs on the `train` stage, `eval_*` logs and `on_evaluate` metrics on the `evaluate` stage);
each saved checkpoint's files are registered as artifacts of kind `checkpoint`; the run closes
`completed` on train end, or `failed` with the exception when `train()` raises. Only the world's
process zero captures. Importing this module imports `transformers`; `import contexta` never does.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from contexta import Contexta
from contexta.errors import CaptureWarning, ValidationError
from contexta.integrations._own_contexta import checked_run_name, fitting_run_name, own_contexta_config
from contexta.integrations._transformers_checkpoints import checkpoint_directory, checkpoint_files
from contexta.integrations._transformers_failure import find_trainer, guard_train
from contexta.integrations._transformers_import import import_transformers
from contexta.integrations._transformers_values import (
    EVALUATE_STAGE,
    TRAIN_STAGE,
    flat_items,
    json_safe,
    metric_key,
    numeric_value,
    route_log,
)

if TYPE_CHECKING:
    from contexta.capture import RunScope, StageScope

_transformers = import_transformers()  # a missing install fails here, with how to install it

from transformers import (  # noqa: E402
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

__all__ = ["ContextaCallback"]


class ContextaCallback(TrainerCallback):
    """A `transformers.TrainerCallback` that captures each `trainer.train()` as a Contexta run.

    `run_name` defaults to `args.run_name`, else the name of `args.output_dir`. Pass `ctx=` to capture
    into a `Contexta` you own (it stays open); otherwise the callback opens one on `workspace` (with
    `project_name`, and `config` as `Contexta(config=...)` takes it) at train begin and closes it at
    train end. `tags`, `metadata` and `dataset_ref` go on the run as `ctx.run` takes them.
    `log_checkpoints=False` skips hashing and registering checkpoint files.
    """

    def __init__(
        self,
        run_name: str | None = None,
        *,
        ctx: Contexta | None = None,
        workspace: str | os.PathLike[str] = ".contexta",
        project_name: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        dataset_ref: str | None = None,
        log_checkpoints: bool = True,
    ) -> None:
        self._run_name = checked_run_name(run_name)
        self._given_ctx = ctx
        self._workspace = workspace
        self._config = own_contexta_config(
            given=ctx is not None, workspace=workspace, project_name=project_name, config=config
        )
        self._tags = tags
        self._metadata = metadata
        self._dataset_ref = dataset_ref
        self._log_checkpoints = log_checkpoints
        self._ctx: Contexta | None = None  # the Contexta of the training under way
        self._run: RunScope | None = None
        self._stages: dict[str, StageScope] = {}
        # The last (step, value) recorded per (stage, key): the Trainer hands the same evaluation
        # metrics to on_log and on_evaluate, and each is recorded once.
        self._last: dict[tuple[str, str], tuple[int, float | int]] = {}
        self._run_id: str | None = None
        self._warned: set[str] = set()  # metric keys the store refused, warned about once each

    # -- what a user may read ----------------------------------------------------------------

    @property
    def run(self) -> RunScope | None:
        """The run of the training under way (to add events or metrics of your own), or None."""
        return self._run

    @property
    def run_id(self) -> str | None:
        """The ref of the last run this callback opened (`ctx.get_metric_series(callback.run_id, ...)`),
        kept after the run closes; None before the first training."""
        return self._run_id

    # -- Trainer hooks -------------------------------------------------------------------------

    def on_init_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Guard the Trainer's `train()` so a training that raises ends its run `failed`."""
        trainer = find_trainer(self, Trainer)
        if trainer is not None:
            guard_train(trainer, self._training_raised)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        if self._run is not None:  # an earlier train() raised where no guard could see it
            self._end("failed")
        ctx = self._given_ctx
        if ctx is None:
            ctx = Contexta(workspace=self._workspace, config=self._config or None)
        self._ctx = ctx
        model = kwargs.get("model")
        name, full_name = self._name(args)
        metadata = self._framework_metadata(model)
        if full_name != name:  # shortened to fit: the name the user gave the Trainer is kept here
            metadata["run_name"] = full_name
        try:
            run = ctx.run(
                name,
                tags=self._tags,
                metadata={**metadata, **(self._metadata or {})},
                config_snapshot=self._snapshot(args, model),
                dataset_ref=self._dataset_ref,
            )
        except BaseException:
            if self._given_ctx is None:  # refused (bad tags, say): the Contexta opened here goes too
                self._ctx = None
                ctx.close()
            raise
        self._run, self._run_id = run, run.run_id
        self._stages = {TRAIN_STAGE: run.stage(TRAIN_STAGE)}
        self._last = {}

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Any = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or self._run is None or not isinstance(logs, Mapping):
            return
        route = route_log(logs)
        self._record(route.stage, logs, state.global_step, route.summary_keys)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: Any = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or self._run is None or not isinstance(metrics, Mapping):
            return
        self._record(EVALUATE_STAGE, metrics, state.global_step, frozenset())

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if (
            not state.is_world_process_zero
            or self._run is None
            or not self._log_checkpoints
            or args.output_dir is None  # TrainingArguments fills it in; None saved nowhere we know
        ):
            return
        directory = checkpoint_directory(args.output_dir, state.global_step)
        stage = self._stage(TRAIN_STAGE)
        if not directory.is_dir():  # a hyperparameter search saves under run-<trial>/: say so, go on
            self._run.event(
                "checkpoint.not_found",
                message=f"the Trainer saved a checkpoint, but {directory} is not a directory",
                level="warning",
                attributes={"path": str(directory), "global_step": state.global_step},
            )
            return
        for path in checkpoint_files(directory):
            stage.register_artifact(
                "checkpoint",
                path,
                attributes={
                    "checkpoint": directory.name,
                    "file": path.relative_to(directory).as_posix(),
                    "global_step": state.global_step,
                },
            )

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        self._end("completed")

    # -- the run -------------------------------------------------------------------------------

    def _name(self, args: Any) -> tuple[str, str]:
        """The run's name, and the name it was made from (the same unless shortened to fit)."""
        if self._run_name is not None:
            return self._run_name, self._run_name  # checked when the callback was made
        if getattr(args, "run_name", None):
            given = str(args.run_name)
        else:
            given = os.path.basename(os.path.normpath(str(getattr(args, "output_dir", "") or "")))
        return fitting_run_name(given or "trainer", "trainer"), given or "trainer"

    @staticmethod
    def _snapshot(args: Any, model: Any) -> dict[str, Any]:
        snapshot: dict[str, Any] = {"training_args": json_safe(args.to_dict())}
        config_to_dict = getattr(getattr(model, "config", None), "to_dict", None)
        if callable(config_to_dict):
            snapshot["model_config"] = json_safe(config_to_dict())
        return snapshot

    @staticmethod
    def _framework_metadata(model: Any) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "framework": "transformers",
            "transformers_version": _transformers.__version__,
        }
        if model is not None:
            metadata["model_class"] = type(model).__name__
        return metadata

    def _stage(self, name: str) -> StageScope:
        stage = self._stages.get(name)
        if stage is None:
            assert self._run is not None
            stage = self._stages[name] = self._run.stage(name)
        return stage

    def _record(self, stage_name: str, values: Mapping[str, Any], step: int, summary: frozenset[str]) -> None:
        """Record the numeric values of `values` at `step` on `stage_name`, each (key, step, value)
        once; `summary` keys are stage-level values (`aggregation_scope="stage"`)."""
        points: dict[str, float | int] = {}
        summaries: dict[str, float | int] = {}
        for raw_key, raw_value in flat_items(values):
            value = numeric_value(raw_value)
            key = None if value is None else metric_key(raw_key)
            if key is None or value is None or self._last.get((stage_name, key)) == (step, value):
                continue
            self._last[(stage_name, key)] = (step, value)
            (summaries if raw_key in summary else points)[key] = value
        if not points and not summaries:
            return
        stage = self._stage(stage_name)
        if points:
            try:
                stage.metrics(points, step=step)
            except ValidationError as error:
                self._refused(error)
        for key, value in summaries.items():
            try:
                stage.metric(key, value, step=step, aggregation_scope="stage")
            except ValidationError as error:
                self._refused(error)

    def _refused(self, error: ValidationError) -> None:
        """A value the store refused (a NaN loss under `capture.non_finite = "raise"`, an int beyond
        64 bits): warned about once per key, and the training goes on; the other values of the same
        log were recorded. Any other error is a bug here, and raised."""
        if error.code in ("metrics_partly_invalid", "metrics_invalid"):
            refusals = [(item["key"], item["message"]) for item in error.details.get("refused", ())]
        elif error.code == "metric_value_invalid":
            refusals = [(str(error.details.get("key")), error.message)]
        else:
            raise error
        for key, message in refusals:
            if key not in self._warned:
                self._warned.add(key)
                warnings.warn(
                    f"the Trainer's {key!r} was not recorded (warned once per key): {message}",
                    CaptureWarning,
                    stacklevel=4,
                )

    def _end(self, status: str, error: BaseException | None = None) -> None:
        """Close the run (its stages with it) and a Contexta this callback opened."""
        run, ctx, stages = self._run, self._ctx, self._stages
        self._run, self._ctx, self._stages = None, None, {}
        try:
            if run is not None:
                if error is None:
                    for stage in stages.values():  # a run closing its open children would cancel them
                        stage.close(status=status)
                    run.close(status=status)
                else:  # the context-manager exit stores the exception's type, message and traceback
                    run.__exit__(type(error), error, error.__traceback__)
        finally:
            if ctx is not None and ctx is not self._given_ctx:
                ctx.close()

    def _training_raised(self, error: BaseException) -> None:
        """The guard's report of an exception escaping `trainer.train()`: the run ends `failed`
        (`cancelled` for Ctrl-C). Never raises: the training's own exception is what the user sees."""
        if self._run is None:
            return
        try:
            self._end("failed", error)
        except Exception as problem:  # closing must not hide the training's exception
            warnings.warn(f"contexta could not close the failed run: {problem}", stacklevel=2)
