"""Lightning hyperparameters as a run's `config_snapshot` (no framework import here).

`LightningModule.save_hyperparameters()` keeps whatever the module's `__init__` received: numbers and
strings, but also `argparse.Namespace`s, dataclasses, paths, enums, tensors, even modules or callables.
The store keeps nested JSON, so the hyperparameters stay nested (queries read `params.optimizer.lr`);
what JSON cannot hold is turned into a faithful plain value here, so logging hyperparameters never
breaks a training run: a 0-d tensor or NumPy scalar is its number, a non-finite float its text
(`"nan"`, `"inf"`), a dataclass or namespace its fields, and anything else its `repr`.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

__all__ = ["hyperparameter_document", "merge_documents"]

_MAX_DEPTH = 16  # deeper than this (or a structure that refers to itself) is kept as its repr


def hyperparameter_document(params: Any) -> dict[str, Any]:
    """`params` (a mapping, an `argparse.Namespace`, a dataclass, or None) as a JSON-ready nested dict."""
    if params is None:
        return {}
    value = _plain(params, 0)
    if not isinstance(value, dict):
        return {"value": value}  # a bare value (a list, a number): kept, under a name
    return value


def merge_documents(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`update` laid over `base`, mappings merged key by key (a later call refines, never erases)."""
    merged = dict(base)
    for key, value in update.items():
        earlier = merged.get(key)
        if isinstance(earlier, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_documents(earlier, value)
        else:
            merged[key] = value
    return merged


def _plain(value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return repr(value)
    if value is None or isinstance(value, (bool, str)):
        return str.__str__(value) if isinstance(value, str) else value
    if isinstance(value, enum.Enum):
        return _plain(value.value, depth + 1)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        number = float(value)
        return number if math.isfinite(number) else str(number)
    if isinstance(value, Namespace):
        return _mapping(vars(value), depth)
    if isinstance(value, Mapping):
        return _mapping(value, depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        return _mapping(fields, depth)
    if isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(item, depth + 1) for item in value), key=repr)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:  # a 0-d tensor or a NumPy scalar
        return _plain(item(), depth + 1)
    return repr(value)


def _mapping(value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    return {str(key): _plain(item, depth + 1) for key, item in value.items()}
