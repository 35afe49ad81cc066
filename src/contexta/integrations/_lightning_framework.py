"""Finding the installed Lightning: `lightning.pytorch` (the `lightning` package) first, else the
standalone `pytorch_lightning`. Both ship the same `Logger` base and rank-zero helpers; the rank the
helpers read (`rank_zero_only.rank`) lives in `lightning_utilities`, shared by both, so a logger built
on either base behaves the same under either package's `Trainer`."""

from __future__ import annotations

import importlib
import importlib.util
from importlib import metadata
from typing import Any, NamedTuple

from contexta.errors import MissingDependencyError

__all__ = ["LightningFramework", "load_framework"]

# (the import path of the Lightning API, the top-level module that says it is installed, its distribution)
_CANDIDATES = (
    ("lightning.pytorch", "lightning", "lightning"),
    ("pytorch_lightning", "pytorch_lightning", "pytorch-lightning"),
)


class LightningFramework(NamedTuple):
    """What the logger is built from."""

    package: str  # "lightning.pytorch" or "pytorch_lightning"
    version: str
    logger_base: type[Any]
    rank_zero_only: Any
    rank_zero_experiment: Any


def load_framework() -> LightningFramework:
    """The preferred installed Lightning, imported; `MissingDependencyError` when neither is.

    An installed package that fails to import raises its own error: falling back to the other one
    would hide a broken installation."""
    for package, top_level, distribution in _CANDIDATES:
        if importlib.util.find_spec(top_level) is None:
            continue
        loggers = importlib.import_module(f"{package}.loggers.logger")
        rank_zero = importlib.import_module(f"{package}.utilities.rank_zero")
        try:
            version = metadata.version(distribution)
        except metadata.PackageNotFoundError:  # a source checkout without metadata
            version = str(getattr(importlib.import_module(top_level), "__version__", "unknown"))
        return LightningFramework(
            package, version, loggers.Logger, rank_zero.rank_zero_only, loggers.rank_zero_experiment
        )
    raise MissingDependencyError(
        "contexta.integrations.lightning needs PyTorch Lightning, which is not installed: "
        "pip install 'contexta[lightning]' (or pip install lightning; pytorch_lightning works too)",
        code="dependency_missing",
        details={"package": "lightning", "extra": "lightning"},
    )
