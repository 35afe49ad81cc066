"""Files Keras's `ModelCheckpoint` writes, registered as `checkpoint` artifacts of the run.

A callback cannot see the other callbacks of a `fit`, so the user hands the checkpoint callbacks
over (`ContextaCallback(..., checkpoints=[checkpoint])`). Whether a checkpoint callback runs before or
after ours in the list, its epoch's file is written by the next epoch's start or by the end of `fit`,
so the file of an epoch is looked for then, and what is found is exactly that epoch's. A file is
registered again only when it changed (size or modification time), so a `save_best_only` path
rewritten on improvement gives one artifact per improvement, with the epoch that wrote it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contexta.errors import ConfigurationError

if TYPE_CHECKING:
    from contexta.capture import Scope

__all__ = ["CheckpointFiles"]


class CheckpointFiles:
    """Registers the files written by the given `ModelCheckpoint` callbacks (see the module docstring)."""

    def __init__(self, checkpoints: Sequence[Any]) -> None:
        for checkpoint in checkpoints:
            if not isinstance(getattr(checkpoint, "filepath", None), (str, os.PathLike)):
                raise ConfigurationError(
                    "checkpoints takes keras.callbacks.ModelCheckpoint callbacks, got "
                    f"{type(checkpoint).__name__}",
                    code="keras_callback_option_invalid",
                )
        self._checkpoints = tuple(checkpoints)
        self._registered: dict[Path, tuple[int, int]] = {}

    def __bool__(self) -> bool:
        return bool(self._checkpoints)

    def register_new(self, scope: Scope, epoch: int, logs: Mapping[str, Any]) -> None:
        """Register the file each checkpoint names for `epoch` (0-based, as Keras passes it) when it
        exists and is new or changed since it was last registered."""
        for checkpoint in self._checkpoints:
            path = _epoch_path(checkpoint, epoch, logs)
            if path is None:
                continue
            try:
                status = path.stat()
            except OSError:
                continue  # not written (yet, or not this epoch: save_best_only)
            fingerprint = (status.st_size, status.st_mtime_ns)
            if path.is_dir() or self._registered.get(path) == fingerprint:
                continue
            self._registered[path] = fingerprint
            scope.register_artifact(
                "checkpoint",
                path,
                attributes={
                    "epoch": epoch,
                    "monitor": str(getattr(checkpoint, "monitor", "")),
                    "save_best_only": bool(getattr(checkpoint, "save_best_only", False)),
                    "weights_only": bool(getattr(checkpoint, "save_weights_only", False)),
                },
            )


def _epoch_path(checkpoint: Any, epoch: int, logs: Mapping[str, Any]) -> Path | None:
    """The file `checkpoint` writes at the end of `epoch`, formatted as Keras formats it (epochs from
    1 in the name); None when the name needs values these logs lack (a per-batch checkpoint)."""
    try:
        return Path(str(os.fspath(checkpoint.filepath)).format(epoch=epoch + 1, **logs)).absolute()
    except (KeyError, IndexError, ValueError):
        return None
