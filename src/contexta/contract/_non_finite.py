"""How a non-finite metric value (NaN, +inf, -inf) is written where it cannot be held, and read back.

A diverging loss is worth recording, so NaN and the infinities are metric values like any other. Two
places cannot hold them: JSON has no such numbers (orjson writes them as `null`, which would read back
as "no value"), and SQLite stores a bound NaN as NULL. So a non-finite float is written as the JSON
string "NaN", "Infinity" or "-Infinity" wherever a metric value leaves Python as JSON (the capture log's
`payload.payload.value`, `contract.to_json`) or as an SQLite scalar (`metric_series.last_value`), and
every reader turns these tokens back into the same float. Finite values are never touched, and the
value type stays "float64": a token is only ever read where a metric value is expected.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["NON_FINITE_TOKENS", "decode_metric_value", "encode_metric_value", "is_finite_number"]

NON_FINITE_TOKENS: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def is_finite_number(value: float | int) -> bool:
    """True for ints and finite floats (`x - x` is 0 for both, NaN otherwise)."""
    return value - value == 0


def encode_metric_value(value: float | int) -> float | int | str:
    """`value` as JSON or SQLite can hold it: a finite number as itself, a non-finite float as its token."""
    if value - value == 0:
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_metric_value(value: Any) -> Any:
    """The float a token stands for; any other value unchanged (the caller validates it)."""
    if type(value) is str:
        return NON_FINITE_TOKENS.get(value, value)
    return value
