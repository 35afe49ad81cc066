"""Records no sink can encode: found after a batch failed to encode, each replaced where it stood.

Capture calls store what JSON and UTF-8 cannot carry in a documented form, or refuse it (see
`contract._checks.json_attributes`), so this is the writer's second line: a record that still cannot
be encoded (a bug, or an item put on the queue past the checks) must cost only itself. A batch is
encoded whole, as ever (one orjson call per family, columns for metrics), so the common batch pays
nothing for this. Only when that raises is the batch gone through record by record, and each record
whose capture-log line cannot be encoded is replaced at its own position:

- a metric, event, span or marker by a `DegradedRecord` with the same record number (so every other
  record keeps its ref and place), reason `record_unencodable`, and the error in its message;
- a scope, environment or artifact record (the structure other records hang on) by itself, with
  each value that cannot be encoded replaced by text saying what it was (`salvaged`).

The replaced metric, event or span is lost and counted so (`failed`, `lost`); its marker is a record
the writer added. What was replaced is reported by the next `flush()` / `close()`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from contexta.capture._items import (
    KIND,
    METRIC,
    METRIC_CONTEXT,
    METRIC_KEY,
    METRIC_SIZE,
    METRIC_STEP,
    METRIC_T_NS,
    METRIC_TAGS,
    METRIC_UNIT,
    METRIC_VALUE,
    as_context,
)
from contexta.capture._log._builder import degraded_entry
from contexta.capture._log._entries import CapturedEntry, entry_to_line
from contexta.capture._log._metric_lines import Numbering, materialize_metric
from contexta.contract._checks import INT64_MAX, INT64_MIN, plain_text
from contexta.contract._timestamps import parse_timestamp

__all__ = ["ENCODING_ERRORS", "REASON_CODE", "Isolated", "isolate", "salvaged"]

REASON_CODE = "record_unencodable"

# What encoding a record raises: orjson's JSONEncodeError is a TypeError, UnicodeEncodeError a
# ValueError, an int SQLite cannot hold an OverflowError. Anything else (a full disk, a lock) is not
# about one record, and the batch is parked whole as before.
ENCODING_ERRORS = (TypeError, ValueError, OverflowError)

_MAX_ERROR_CHARACTERS = 300
_MAX_SALVAGE_DEPTH = 64


class Isolated(NamedTuple):
    """One record replaced because it could not be encoded."""

    position: int
    payload_type: str  # MetricRecord, StructuredEventRecord, Run, ...
    ref: str  # the record's (or scope's, or artifact's) ref
    error: str  # why it could not be encoded
    kept: bool  # True: written with its unencodable values replaced; False: lost, a marker in its place


def isolate(items: list[Any], numbering: Numbering | None) -> tuple[list[Any], list[Isolated]]:
    """`items` with each record that cannot be encoded replaced, and what was replaced (`items`
    itself, unchanged, when every record encodes)."""
    replaced: list[Any] | None = None
    isolated: list[Isolated] = []
    for position, item in enumerate(items):
        error = _encoding_error(item, position, numbering)
        if error is None:
            continue
        if replaced is None:
            replaced = list(items)
        replacement, report = _replacement(item, position, numbering, error)
        replaced[position] = replacement
        isolated.append(report)
    return (items if replaced is None else replaced), isolated


def _encoding_error(item: Any, position: int, numbering: Numbering | None) -> str | None:
    """Why the capture-log line of `item` cannot be encoded, or None when it can."""
    try:
        if type(item) is tuple:
            if _plain_metric(item):
                return None
            if len(item) == METRIC_SIZE and type(METRIC_VALUE(item)) not in (int, float):
                value_type = type(METRIC_VALUE(item)).__qualname__
                return plain_text(f"TypeError: a metric value must be an int or a float, not {value_type}")
            assert numbering is not None
            entry = materialize_metric(item, position, numbering)
        else:
            entry = item
        orjson.dumps(entry_to_line(entry, ""))
    except Exception as error:  # whatever it is, this record is what cannot be written
        return _describe(error)
    return None


def _plain_metric(item: tuple[Any, ...]) -> bool:
    """True for the metric tuple of a plain `metric()` call, whose line always encodes (its refs
    and key were checked at the call, its value is a float): the bulk of a batch, decided cheaply."""
    if len(item) != METRIC_SIZE or KIND(item) != METRIC:
        return False
    key, step = METRIC_KEY(item), METRIC_STEP(item)
    return (
        type(METRIC_VALUE(item)) is float
        and type(key) is str
        and key.isascii()
        and METRIC_UNIT(item) is None
        and METRIC_TAGS(item) is None
        and (step is None or (type(step) is int and 0 <= step <= INT64_MAX))
    )


def _describe(error: BaseException) -> str:
    text = plain_text(f"{type(error).__name__}: {error}")
    return text if len(text) <= _MAX_ERROR_CHARACTERS else f"{text[: _MAX_ERROR_CHARACTERS - 3]}..."


def _replacement(
    item: Any, position: int, numbering: Numbering | None, error: str
) -> tuple[CapturedEntry, Isolated]:
    if type(item) is tuple:
        assert numbering is not None
        return _metric_marker(item, position, numbering, error)
    entry: CapturedEntry = item
    if entry.family == "RECORD":
        return _record_marker(entry, position, error)
    kept = entry._replace(payload_ref=plain_text(str(entry.payload_ref)), document=salvaged(entry.document))
    return kept, Isolated(position, entry.payload_type, kept.payload_ref, error, True)


def _metric_marker(
    item: tuple[Any, ...], position: int, numbering: Numbering, error: str
) -> tuple[CapturedEntry, Isolated]:
    context = as_context(METRIC_CONTEXT(item))
    key = salvaged(METRIC_KEY(item))
    t_ns = METRIC_T_NS(item)
    marker = degraded_entry(
        numbering,
        position,
        context,
        context.ref,
        REASON_CODE,
        f"metric {key!r} could not be encoded and was not kept ({error})",
        1,
        t_ns,
        t_ns,
        {"record_type": "metric", "key": key, "error": error},
    )
    return marker, Isolated(position, "MetricRecord", marker.payload_ref, error, False)


def _record_marker(entry: CapturedEntry, position: int, error: str) -> tuple[CapturedEntry, Isolated]:
    """A degraded marker in place of a built record: its ref, scope refs and times are the record's."""
    try:
        document = salvaged(entry.payload)
    except Exception:  # a metric entry whose fields cannot even make a document
        document = None
    envelope = _mapping(document, "envelope")
    body = _mapping(document, "payload")
    record_type = str(envelope.get("record_type", "record"))
    ref = plain_text(str(envelope.get("record_ref", entry.payload_ref)))
    observed_at = envelope.get("observed_at")
    observed_at = observed_at if _is_timestamp(observed_at) else entry.captured_at
    key = next(
        (body[field] for field in ("event_key", "span_name", "metric_key", "reason_code") if field in body),
        None,
    )
    described = record_type if key is None else f"{record_type} {key!r}"
    attributes: dict[str, Any] = {"record_type": record_type, "error": error}
    if key is not None:
        attributes["key"] = key
    marker_envelope = {
        **envelope,
        "record_ref": ref,
        "record_type": "degraded",
        "observed_at": observed_at,
        "completeness_marker": "partial",
        "degradation_marker": "degraded",
    }
    payload = {
        "reason_code": REASON_CODE,
        "message": f"{described} could not be encoded and was not kept ({error})",
        "dropped_count": 1,
        "first_observed_at": observed_at,
        "last_observed_at": observed_at,
        "attributes": attributes,
    }
    subject = body.get("subject_ref", envelope.get("run_ref"))
    if isinstance(subject, str):
        payload["subject_ref"] = subject
    marker = CapturedEntry(
        "RECORD",
        "DegradedRecord",
        ref,
        entry.captured_at,
        {"envelope": marker_envelope, "payload": payload},
    )
    return marker, Isolated(position, entry.payload_type, ref, error, False)


def _mapping(document: Any, field: str) -> dict[str, Any]:
    part = document.get(field) if isinstance(document, dict) else None
    return part if isinstance(part, dict) else {}


def _is_timestamp(value: Any) -> bool:
    try:
        parse_timestamp(value)
    except Exception:
        return False
    return True


def salvaged(value: Any, depth: int = 0) -> Any:
    """`value` as JSON and UTF-8 can carry it, never raising: text as `plain_text` gives it, an int
    beyond 64 bits as its digits, keys as text, and anything else as text naming what it was."""
    kind = type(value)
    if kind is str:
        return plain_text(value)
    if value is None or kind is bool or kind is float:
        return value
    if kind is int:
        return value if INT64_MIN <= value <= INT64_MAX else _digits(value)
    if depth >= _MAX_SALVAGE_DEPTH:
        return "[unencodable: nested too deep]"
    if kind is dict:
        return {_salvaged_key(key): salvaged(item, depth + 1) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [salvaged(item, depth + 1) for item in value]
    if isinstance(value, str):
        return plain_text(str.__str__(value))
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return salvaged(int.__int__(value), depth)
    if isinstance(value, float):
        return float.__float__(value)
    return f"[unencodable: {plain_text(kind.__qualname__)}]"


def _salvaged_key(key: Any) -> str:
    if isinstance(key, str):
        return plain_text(str.__str__(key))
    try:
        return plain_text(str(key))
    except Exception:
        return f"[unencodable key: {plain_text(type(key).__qualname__)}]"


def _digits(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return f"[unencodable: an int of {value.bit_length()} bits]"
