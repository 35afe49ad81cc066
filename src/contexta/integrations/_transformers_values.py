"""What the Trainer hands a callback, made into what Contexta records: metric values, keys, stages,
and a JSON-safe configuration snapshot. Pure functions, no framework import, so they are tested and
typed on their own."""

from __future__ import annotations

import enum
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "EVALUATE_STAGE",
    "TRAIN_STAGE",
    "LogRoute",
    "flat_items",
    "json_safe",
    "metric_key",
    "numeric_value",
    "route_log",
]

TRAIN_STAGE: Final = "train"
EVALUATE_STAGE: Final = "evaluate"
# The Trainer's prefix for evaluation metrics (`metric_key_prefix="eval"` by default).
_EVAL_PREFIX = "eval_"
# Only the end-of-training summary log carries it (speed_metrics("train", ...) in Trainer._finalize_training).
_SUMMARY_MARKER = "train_runtime"
# Kept in the summary log as the last point of the ordinary series rather than as a summary value.
_SERIES_KEYS = frozenset({"epoch"})
_KEY_INVALID = re.compile(r"[^A-Za-z0-9_./-]")
_MAX_KEY = 200  # contexta's metric key limit
_MAX_NESTING = 8  # levels of a nested `compute_metrics` result followed into


@dataclass(frozen=True, slots=True)
class LogRoute:
    """Where one `on_log` dict goes: its stage, and which keys summarise the stage rather than being a
    point of a per-step series (`aggregation_scope="stage"`)."""

    stage: Literal["train", "evaluate"]
    summary_keys: frozenset[str]


def route_log(logs: Mapping[str, Any]) -> LogRoute:
    """An evaluation log (any `eval_*` key) goes to `evaluate`; everything else to `train`. The final
    summary (train_runtime, train_loss, total_flos, ...) goes to `train` as stage-level values."""
    if any(key.startswith(_EVAL_PREFIX) for key in logs):
        return LogRoute(EVALUATE_STAGE, frozenset())
    if _SUMMARY_MARKER in logs:
        return LogRoute(TRAIN_STAGE, frozenset(key for key in logs if key not in _SERIES_KEYS))
    return LogRoute(TRAIN_STAGE, frozenset())


def numeric_value(value: Any) -> float | int | None:
    """`value` as a number contexta records, or None for what is not one (text, bools, lists, None):
    the Trainer's logs may carry such values, which are skipped rather than failing the training."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):  # a 0-d tensor
        return numeric_value(value.item())
    return None


def flat_items(values: Mapping[Any, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    """`values` with nested mappings followed, their keys joined by '/': a `compute_metrics` that
    returns a report (`{"report": {"macro avg": {"recall": 0.5}}}`, as sklearn's
    `classification_report(output_dict=True)` does) reaches the Trainer's logs as one `eval_report`
    dict, which is `eval_report/macro avg/recall` here. Keys that are not text are left out."""
    items: list[tuple[str, Any]] = []
    for key, value in values.items():
        if not isinstance(key, str):
            continue
        if isinstance(value, Mapping) and depth < _MAX_NESTING:
            items.extend(flat_items(value, f"{prefix}{key}/", depth + 1))
        else:
            items.append((prefix + key, value))
    return items


def metric_key(key: str) -> str | None:
    """`key` as a valid contexta metric key: characters it refuses (spaces, ':' in a custom eval dataset
    name) become '_'; None for an empty key."""
    cleaned = _KEY_INVALID.sub("_", key)[:_MAX_KEY]
    if not cleaned:
        return None
    return f"_{cleaned[1:]}" if cleaned[0] in "./-" else cleaned


def json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of a configuration value: mappings with text keys, lists, finite numbers,
    text, bools and None; non-finite floats as their text ("inf"), enums as their value, and
    anything else (a dtype, a path, a callable) as its `str`. Deeper than 32 levels becomes text."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return json_safe(value.value, depth + 1)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else str(number)
    if depth >= 32:
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [json_safe(item, depth + 1) for item in items]
    return str(value)
