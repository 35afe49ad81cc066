"""Metric values in a command's JSON: a NaN or infinite value is written as the token the capture log
and `contexta.contract.to_json` use ("NaN", "Infinity", "-Infinity"), not as `null`, which would read
as "no value" (a diverged run is not a run without the metric)."""

from __future__ import annotations

from typing import Any

from contexta.contract import encode_metric_value

__all__ = ["with_metric_tokens"]


def with_metric_tokens(value: Any) -> Any:
    """`value` (JSON-ready mappings, lists and scalars) with every non-finite float made a token."""
    if isinstance(value, dict):
        return {key: with_metric_tokens(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [with_metric_tokens(item) for item in value]
    if type(value) is float:
        return encode_metric_value(value)
    return value
