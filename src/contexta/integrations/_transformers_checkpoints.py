"""Finding the files of the checkpoint the Trainer just saved. Contexta registers regular files
(`register_artifact` refuses a directory), so a checkpoint is registered file by file."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["checkpoint_directory", "checkpoint_files"]

# transformers.trainer_utils.PREFIX_CHECKPOINT_DIR; repeated so this module needs no framework import.
_PREFIX = "checkpoint"


def checkpoint_directory(output_dir: str | os.PathLike[str], global_step: int) -> Path:
    """Where `Trainer._save_checkpoint` writes the checkpoint of `global_step`: `<output_dir>/checkpoint-N`
    (a hyperparameter search writes under `<output_dir>/run-<trial>/` instead)."""
    return Path(output_dir) / f"{_PREFIX}-{global_step}"


def checkpoint_files(directory: Path) -> list[Path]:
    """Every regular file under `directory`, in a stable order (sorted relative paths)."""
    found = [path for path in directory.rglob("*") if path.is_file() and not path.is_symlink()]
    return sorted(found, key=lambda path: path.relative_to(directory).as_posix())
