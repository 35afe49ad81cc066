"""Turning contexta values into what OpenTelemetry accepts: nanosecond times and attribute values.

No SDK import here: plain conversions, shared by the span and metric halves of the sink.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

# Private to the contract package, but the one parser of what a record ref says about its execution.
from contexta.contract import execution_of_record_ref

__all__ = ["AttributeValue", "attribute_value", "flat_attributes", "record_execution", "time_ns"]

AttributeValue = str | bool | int | float | list[str] | list[bool] | list[int] | list[float]


@lru_cache(maxsize=4096)
def time_ns(timestamp: str) -> int:
    """Nanoseconds since the epoch of an ISO-8601 UTC timestamp as contexta writes them ("...Z"),
    exactly (no float rounding). Cached: the records of one writer cycle share a few timestamps."""
    parsed = datetime.fromisoformat(timestamp)
    if parsed.utcoffset():
        parsed = (parsed - parsed.utcoffset()).replace(tzinfo=None)  # type: ignore[operator]
    return calendar.timegm(parsed.timetuple()) * 1_000_000_000 + parsed.microsecond * 1_000


def attribute_value(value: Any) -> AttributeValue | None:
    """`value` as an OpenTelemetry attribute: primitives and homogeneous lists of them as they are,
    anything else as its JSON text (so a nested mapping is kept, readable, not dropped). None is
    left out (OpenTelemetry has no null attribute)."""
    if value is None:
        return None
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)) and value:
        kinds = {type(item) for item in value}
        if len(kinds) == 1 and kinds <= {str, bool, int, float}:
            return list(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def flat_attributes(prefix: str, mapping: Mapping[str, Any] | None) -> dict[str, AttributeValue]:
    """`{prefix}{key}: value` for each key with a value (tags, metadata, user attributes)."""
    out: dict[str, AttributeValue] = {}
    for key, value in (mapping or {}).items():
        converted = attribute_value(value)
        if converted is not None:
            out[f"{prefix}{key}"] = converted
    return out


def record_execution(envelope: Mapping[str, Any]) -> str | None:
    """The run execution a record belongs to, named in its record ref (None when it names none: a
    run-less deployment's record). Two executions of one run name may be open at once."""
    record_ref = envelope.get("record_ref")
    return execution_of_record_ref(record_ref) if isinstance(record_ref, str) else None
