"""PyTorch Lightning: `Trainer(logger=ContextaLogger("baseline"))` captures the fit as a Contexta run.

Importing this module imports Lightning (`lightning.pytorch`, else `pytorch_lightning`); nothing in
`contexta` imports this module, so `import contexta` never does. What a fit leaves in the workspace:

- a run named `run_name` (default `lightning`), whose `config_snapshot` holds the hyperparameters
  Lightning logs (`self.save_hyperparameters()`), nested;
- the metrics of each `log_metrics` call under the stage their key names (`train_loss`, `train/acc` in
  `train`; `val_loss`, `val/acc` in `validate`; `test_*` in `test`; see `_lightning_stages`), at the
  step Lightning passes, with the key as logged;
- every checkpoint file a `ModelCheckpoint` saves, registered once as an artifact of kind
  `checkpoint` (BLAKE3 digest, size, and its path, step, monitor and score as attributes);
- the run's end: `finalize("success")` closes it `completed`, `"failed"` closes it `failed` (Ctrl-C,
  which Lightning also reports as `"failed"`, closes it `cancelled`), any other status `cancelled`.

Only global rank zero captures (Lightning's `rank_zero_only`): the other ranks of a DDP job open no
workspace and record nothing. The run opens at the first call that needs it (Lightning's setup
touches `experiment`, before it logs the hyperparameters); hyperparameters logged while the run is
open are written into its `config_snapshot` at once (see `log_hyperparams`).
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contexta import Contexta
from contexta.config import UnifiedConfig, load_config
from contexta.errors import CaptureWarning, ConfigurationError, ValidationError
from contexta.integrations._lightning_framework import load_framework
from contexta.integrations._lightning_params import hyperparameter_document, merge_documents
from contexta.integrations._lightning_stages import MetricRouter

if TYPE_CHECKING:
    from argparse import Namespace

    from lightning.fabric.loggers.logger import rank_zero_experiment
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers.logger import Logger as _LoggerBase
    from lightning_utilities.core.rank_zero import rank_zero_only

    from contexta.capture import RunScope, StageScope
else:
    _FRAMEWORK = load_framework()
    _LoggerBase = _FRAMEWORK.logger_base
    rank_zero_only = _FRAMEWORK.rank_zero_only
    rank_zero_experiment = _FRAMEWORK.rank_zero_experiment

__all__ = ["ContextaLogger"]

_DEFAULT_RUN_NAME = "lightning"
_STATUSES = {"success": "completed", "failed": "failed"}  # any other Lightning status: cancelled


class ContextaLogger(_LoggerBase):
    """A Lightning logger that records the fit into a Contexta workspace (see the module docstring).

    Give it your `Contexta` (`ctx=`; the logger never closes it), or let it open one over
    `workspace` with `project_name` / `config` (it closes that one in `finalize`). `tags`,
    `metadata` and `dataset_ref` go to the run as in `ctx.run(...)`. `version` names the directory
    Lightning's `ModelCheckpoint` writes under `<save_dir>/<name>/<version>/checkpoints` (default: the
    UTC time the logger was made and a random suffix, so two fits never share one).
    """

    def __init__(
        self,
        run_name: str | None = None,
        *,
        ctx: Contexta | None = None,
        workspace: str | os.PathLike[str] | None = None,
        project_name: str | None = None,
        config: UnifiedConfig | Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        dataset_ref: str | None = None,
        version: str | None = None,
    ) -> None:
        super().__init__()
        if run_name is not None and (not isinstance(run_name, str) or not run_name.strip()):
            raise ValidationError(
                f"run_name must be a non-empty string, got {run_name!r}", code="name_invalid"
            )
        if version is not None and (not isinstance(version, str) or not version.strip()):
            raise ValidationError(
                f"version must be a non-empty string, got {version!r}", code="field_invalid"
            )
        for field, value in (("tags", tags), ("metadata", metadata)):
            if value is not None and not isinstance(value, Mapping):
                raise ValidationError(
                    f"{field} must be a mapping, got {type(value).__name__}", code="attributes_invalid"
                )
        if ctx is not None:
            given = [name for name, value in _contexta_arguments(workspace, project_name, config) if value]
            if given:
                raise ConfigurationError(
                    f"ContextaLogger got ctx= and also {', '.join(given)}: the Contexta you pass already "
                    "has its workspace and project; pass one or the other",
                    code="lightning_logger_arguments_conflict",
                    details={"arguments": given},
                )
            resolved = ctx.config
        else:
            resolved = load_config(
                _with_project(config, project_name), workspace=".contexta" if workspace is None else workspace
            )
        self._config = resolved
        self._given_ctx = ctx
        self._ctx: Contexta | None = ctx
        self._run_name = run_name
        self._version = version or _new_version()
        self._tags = None if tags is None else dict(tags)
        self._metadata = None if metadata is None else dict(metadata)
        self._dataset_ref = dataset_ref
        self._hyperparameters: dict[str, Any] = {}
        self._router = MetricRouter()
        self._run: RunScope | None = None
        self._stages: dict[str, StageScope] = {}
        self._had_run = False  # a later opening resumes the execution the first one started
        self._registered: set[tuple[str, int, int]] = set()  # (path, mtime_ns, size) of checkpoints

    # -- what Lightning asks of every logger ---------------------------------------------------

    @property
    def name(self) -> str:
        """The Contexta project: Lightning's experiment name (a directory of `save_dir`)."""
        return self._config.project_name

    @property
    def version(self) -> str:
        """This fit's directory under `save_dir/name` (checkpoints go to its `checkpoints/`)."""
        return self._version

    @property
    def save_dir(self) -> str:
        """The Contexta workspace (absolute)."""
        return str(self._config.workspace.root)

    @property
    def run_name(self) -> str:
        """The run's name (default "lightning"; every fit is a new execution of it)."""
        return self._run_name or _DEFAULT_RUN_NAME

    @property
    @rank_zero_experiment
    def experiment(self) -> RunScope:
        """The Contexta run of this fit (opened on first access): `self.logger.experiment.event(...)`
        or `.register_artifact(...)` in a LightningModule. On other ranks Lightning's no-op stand-in."""
        return self._open_run()

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace | None, *args: Any, **kwargs: Any) -> None:
        """Merge `params` into the run's `config_snapshot` (nested; non-JSON values made plain).

        Lightning opens the run before it logs hyperparameters (its setup touches `experiment`); an
        open run's configuration is replaced in place (capture records its opening again with it:
        the same execution and start, never closed meanwhile, so no reader sees it end early)."""
        document = hyperparameter_document(params)
        if not document:
            return
        self._hyperparameters = merge_documents(self._hyperparameters, document)
        run = self._run
        if run is not None and run.status == "open":
            run.replace_config_snapshot(self._hyperparameters)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record one `log_metrics` call: each key under its stage, all at `step`."""
        run = self._run
        if run is None:
            run = self._open_run()
        groups, renamed = self._router.split(metrics)
        if renamed:
            _warn_renamed(renamed)
        stages = self._stages
        for stage_name, values in groups.items():
            stage = stages.get(stage_name)
            if stage is None:
                stage = stages[stage_name] = run.stage(stage_name)
            stage.metrics(values, step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        """Register each checkpoint file the callback saved and this logger has not registered yet
        (a file is known by its path, modification time and size: `last.ckpt`, rewritten each
        epoch, is registered each time it is rewritten)."""
        run = self._run if self._run is not None else self._open_run()
        monitor = getattr(checkpoint_callback, "monitor", None)
        step = getattr(checkpoint_callback, "_last_global_step_saved", None)  # no public attribute says
        just_saved = getattr(checkpoint_callback, "_last_checkpoint_saved", None)
        for path, score in _checkpoint_files(checkpoint_callback):
            try:
                stat = os.stat(path)
            except OSError:
                continue  # removed already (a top-k checkpoint pushed out), or never written on this host
            seen = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
            if seen in self._registered:
                continue
            self._registered.add(seen)
            attributes: dict[str, Any] = {"path": os.path.abspath(path), "file_name": os.path.basename(path)}
            if monitor is not None:
                attributes["monitor"] = str(monitor)
            if score is not None:
                attributes["score"] = score if math.isfinite(score) else str(score)
            if (
                isinstance(step, int)
                and just_saved is not None
                and os.path.abspath(just_saved) == attributes["path"]
            ):
                attributes["step"] = step
            run.register_artifact("checkpoint", path, attributes=attributes)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Close the run with the status that is true (see the module docstring); a fit that failed
        before its first metric still leaves its run, `failed`, with its hyperparameters."""
        if self._run is None and self._had_run:
            return  # e.g. `trainer.predict` after a finalized fit: nothing of this call to record
        run = self._run if self._run is not None else self._open_run()
        error = sys.exc_info()[1]  # Lightning finalizes inside its `except` when the fit raised
        outcome = _STATUSES.get(status, "cancelled")
        if isinstance(error, KeyboardInterrupt):
            outcome = "cancelled"
        if outcome != "completed":
            reason = (
                f"{type(error).__name__}: {error}" if error is not None else f"Lightning status {status!r}"
            )
            attributes = {"lightning_status": str(status)}
            if error is not None:
                attributes["exception_type"] = type(error).__name__
            run.event(
                f"lightning.{outcome}",
                message=f"training ended {outcome}: {reason}"[:2000],
                level="error" if outcome == "failed" else "warning",
                attributes=attributes,
            )
        for stage in self._stages.values():
            stage.close(outcome)
        run.close(outcome)
        self._run, self._stages = None, {}
        if self._given_ctx is None and self._ctx is not None:
            self._ctx.close()
            self._ctx = None

    # -- the run -------------------------------------------------------------------------------

    def _open_run(self) -> RunScope:
        """The open run, opened now if need be (resuming this logger's earlier one after a finalize,
        as when `trainer.test()` follows `trainer.fit()`)."""
        run = self._run
        if run is not None and run.status == "open":
            return run
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = Contexta(config=self._config)
        metadata = {
            "lightning": {
                "package": _FRAMEWORK_INFO[0],
                "package_version": _FRAMEWORK_INFO[1],
                "logger_version": self._version,
                "checkpoint_dir": str(Path(self.save_dir, self.name, self._version, "checkpoints")),
            }
        }
        run = self._run = ctx.run(
            self.run_name,
            tags=self._tags,
            metadata={**metadata, **(self._metadata or {})},
            config_snapshot=self._hyperparameters or None,
            dataset_ref=self._dataset_ref,
            resume=self._had_run,
        )
        self._stages = {}
        self._had_run = True
        return run

    def __getstate__(self) -> dict[str, Any]:
        """What `ddp_spawn` sends to its processes: the settings, not the open Contexta or run (a
        process that logs opens its own over the same workspace and config)."""
        state = dict(self.__dict__)
        state.update(_given_ctx=None, _ctx=None, _run=None, _stages={})
        return state


if TYPE_CHECKING:
    _FRAMEWORK_INFO = ("lightning.pytorch", "")
else:
    _FRAMEWORK_INFO = (_FRAMEWORK.package, _FRAMEWORK.version)


def _contexta_arguments(
    workspace: str | os.PathLike[str] | None, project_name: str | None, config: object
) -> list[tuple[str, bool]]:
    return [
        ("workspace=", workspace is not None),
        ("project_name=", project_name is not None),
        ("config=", config is not None),
    ]


def _with_project(
    config: UnifiedConfig | Mapping[str, Any] | None, project_name: str | None
) -> UnifiedConfig | Mapping[str, Any] | None:
    """`config` with `project_name` set in it (refused when `config` names another project)."""
    if project_name is None:
        return config
    if isinstance(config, UnifiedConfig):
        configured: object = config.project_name
    else:
        configured = (config or {}).get("project_name")
    if (
        configured is not None
        and configured != project_name
        and not (isinstance(config, UnifiedConfig) and configured == "default")
    ):
        raise ConfigurationError(
            f"project_name={project_name!r} but config names the project {configured!r}; give it once",
            code="lightning_logger_arguments_conflict",
            details={"arguments": ["project_name=", "config="]},
        )
    if isinstance(config, UnifiedConfig):
        from dataclasses import replace

        return replace(config, project_name=project_name)
    return {**(config or {}), "project_name": project_name}


def _checkpoint_files(callback: Any) -> list[tuple[str, float | None]]:
    """The checkpoint files a `ModelCheckpoint` knows of, with their monitored score when it has one
    (its public state: the top-k files with their scores, the best one, the last one)."""
    found: dict[str, float | None] = {}
    for path, score in dict(getattr(callback, "best_k_models", None) or {}).items():
        if path:
            found[str(path)] = _number(score)
    for attribute in ("best_model_path", "last_model_path"):
        path = getattr(callback, attribute, None)
        if path and str(path) not in found:
            found[str(path)] = (
                _number(getattr(callback, "best_model_score", None))
                if attribute == "best_model_path"
                else None
            )
    return list(found.items())


def _number(value: Any) -> float | None:
    """A score (a 0-d tensor, a float) as a float, or None."""
    if value is None:
        return None
    item = getattr(value, "item", None)
    try:
        return float(item() if callable(item) else value)
    except (TypeError, ValueError):
        return None


def _new_version() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def _warn_renamed(renamed: list[tuple[str, str]]) -> None:
    pairs = ", ".join(f"{key!r} as {stored!r}" for key, stored in renamed)
    warnings.warn(
        f"contexta: metric keys may hold only letters, digits and _ . / -; recorded {pairs}",
        CaptureWarning,
        stacklevel=3,
    )
