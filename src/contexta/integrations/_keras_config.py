"""What a Keras model was built, compiled and fitted with, as a run's `config_snapshot`.

Keras serialises models and optimizers with `get_config()`; those dicts are mostly JSON already,
but hold tuples, NumPy numbers and, in custom layers, anything at all. The snapshot keeps what JSON
can carry and writes the rest as its `repr`, so an unusual layer never stops a run from opening.
A model that cannot describe itself (a subclassed model without `get_config`) is described by its
class and parameter count only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["keras_config_snapshot", "plain_json"]

_MAX_DEPTH = 24


def keras_config_snapshot(
    keras: Any, model: Any, call: str, params: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The snapshot for a run opened by `call` ("fit" or "evaluate") with Keras's `params`:
    `keras` (version, backend), `model`, `optimizer`, `compile` and the call's parameters."""
    snapshot: dict[str, Any] = {
        "keras": {"version": str(keras.__version__), "backend": str(keras.backend.backend())}
    }
    if model is not None:
        snapshot["model"] = _model(model)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            snapshot["optimizer"] = {"class_name": type(optimizer).__name__, **_config_of(optimizer)}
        compile_config = _call(model, "get_compile_config")
        if isinstance(compile_config, Mapping):
            # The optimizer is described above, readably; here it would repeat itself nested.
            snapshot["compile"] = plain_json({k: v for k, v in compile_config.items() if k != "optimizer"})
    snapshot[call] = plain_json(dict(params or {}))
    return snapshot


def _model(model: Any) -> dict[str, Any]:
    described: dict[str, Any] = {"class_name": type(model).__name__, "name": str(getattr(model, "name", ""))}
    if getattr(model, "built", False):
        count = _call(model, "count_params")
        if isinstance(count, int):
            described["parameters"] = count
    config = _config_of(model)
    if config:
        described["config"] = config
    return described


def _config_of(subject: Any) -> dict[str, Any]:
    config = _call(subject, "get_config")
    return plain_json(config) if isinstance(config, Mapping) else {}


def _call(subject: Any, method: str) -> Any:
    """`subject.method()`, or None when it is missing or fails: a description is a courtesy, and a
    layer whose `get_config` raises (Keras's default for layers with constructor arguments) must not
    stop training."""
    function = getattr(subject, method, None)
    if not callable(function):
        return None
    try:
        return function()
    except Exception:
        return None


def plain_json(value: Any, depth: int = 0) -> Any:
    """`value` as JSON types: tuples as lists, NumPy scalars as numbers, a non-finite float and
    anything else as text (attributes must be finite JSON)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth >= _MAX_DEPTH:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(key): plain_json(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(item, depth + 1) for item in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        try:
            return plain_json(item(), depth + 1)
        except Exception:
            return repr(value)
    return repr(value)
