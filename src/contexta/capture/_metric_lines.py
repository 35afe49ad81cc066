"""Capture-log lines of raw metric tuples, formatted directly: the writer's hottest loop.

A metric line is about 600 bytes of which only the record number, the observation time, the value
and the step change from one metric to the next. Everything else is constant per (scope, key, unit,
aggregation scope, value type) and is cut once into the five string pieces between those variables,
so each metric costs one f-string. The result equals `orjson.dumps(entry_to_line(...))` as JSON (a
test holds them equal): refs and keys are validated at the call to need no JSON escaping, finite
floats and int64s print as valid JSON numbers, and free text (unit) goes through orjson. Metrics with
tags take the generic encoder.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import orjson

from contexta.capture._entries import (
    CapturedEntry,
    MetricFields,
    entry_to_line,
    envelope_constants,
    record_ref_prefix,
)
from contexta.capture._items import ScopeContext
from contexta.contract._timestamps import format_ns

__all__ = ["Numbering", "materialize_metric", "record_lines"]

# "000" to "999": the two halves of an observation time's microseconds, looked up, not formatted.
_THREE_DIGITS = tuple(f"{number:03d}" for number in range(1000))


class Numbering(NamedTuple):
    """How the raw metrics of one batch are named: the metric at position p is record number
    `first + p` of this process (`record:{owner}.{id_prefix}{first + p}`), recorded at `recorded_ns`."""

    id_prefix: str
    first: int
    recorded_ns: int
    recorded_at: str


class _Pieces(NamedTuple):
    head: str  # ... "payload_ref":"record:owner.prefix
    middle: str  # ","sink_name": ... "record_ref":"record:owner.prefix
    observed: str  # ","record_type":"metric","recorded_at":"...","observed_at":"
    value: str  # Z", envelope constants ..."value":
    step: str  # ,"value_type": ... "subject_ref": "..." [,"unit": ...] ,"step":
    tail_without_step: str  # the same as `step` but closing the line without a step


def _pieces(
    context: ScopeContext,
    key: str,
    unit: str | None,
    aggregation_scope: str,
    value: float | int,
    numbering: Numbering,
    sink_name_json: str,
) -> _Pieces:
    prefix = record_ref_prefix(context, numbering.id_prefix)
    recorded_at = numbering.recorded_at
    constants = orjson.dumps(envelope_constants(context)).decode()[1:-1]
    value_type = "float64" if type(value) is float else "int64"
    unit_part = "" if unit is None else ',"unit":' + orjson.dumps(unit).decode()
    payload_rest = (
        f',"value_type":"{value_type}","aggregation_scope":{orjson.dumps(aggregation_scope).decode()},'
        f'"subject_ref":"{context.ref}"{unit_part}'
    )
    return _Pieces(
        head=(
            f'{{"captured_at":"{recorded_at}","family":"RECORD","payload_type":"MetricRecord",'
            f'"payload_ref":"{prefix}'
        ),
        middle=f'","sink_name":{sink_name_json},"payload":{{"envelope":{{"record_ref":"{prefix}',
        observed=f'","record_type":"metric","recorded_at":"{recorded_at}","observed_at":"',
        value=f'Z",{constants}}},"payload":{{"metric_key":{orjson.dumps(key).decode()},"value":',
        step=payload_rest + ',"step":',
        tail_without_step=payload_rest + "}}}\n",
    )


def record_lines(items: list[Any], numbering: Numbering | None, sink_name: str) -> bytes:
    """The RECORD-family lines of a batch: raw metric tuples fast, built entries through orjson."""
    sink_name_json = orjson.dumps(sink_name).decode()
    out: list[str] = []
    append = out.append
    pieces_for: dict[tuple[int, str, str | None, str, bool], _Pieces] = {}
    strftime, gmtime = time.strftime, time.gmtime
    three_digits = _THREE_DIGITS
    last_second = -1
    second_text = ""
    first = numbering.first if numbering is not None else 0
    # One orjson call formats every value (about half the cost of repr() each); 0 holds entries' places.
    values = orjson.dumps([item[4] if type(item) is tuple else 0 for item in items]).decode()[1:-1].split(",")
    for position, item in enumerate(items):
        if type(item) is not tuple:
            if item.family == "RECORD":
                append(_generic_line(item, sink_name))
            continue
        _, t_ns, context, key, value, unit, step, aggregation_scope, tags = item
        if tags is not None:
            assert numbering is not None
            append(_generic_line(materialize_metric(item, position, numbering), sink_name))
            continue
        template_key = (id(context), key, unit, aggregation_scope, type(value) is float)
        pieces = pieces_for.get(template_key)
        if pieces is None:
            assert numbering is not None
            pieces = pieces_for[template_key] = _pieces(
                context, key, unit, aggregation_scope, value, numbering, sink_name_json
            )
        micros = t_ns // 1000
        second = micros // 1_000_000
        if second != last_second:
            last_second = second
            second_text = strftime("%Y-%m-%dT%H:%M:%S.", gmtime(second))
        micros -= second * 1_000_000
        number = first + position
        head, middle, observed, value_piece, step_piece, tail_without_step = pieces
        if step is None:
            append(
                f"{head}{number}{middle}{number}{observed}{second_text}{three_digits[micros // 1000]}"
                f"{three_digits[micros % 1000]}{value_piece}{values[position]}{tail_without_step}"
            )
        else:
            append(
                f"{head}{number}{middle}{number}{observed}{second_text}{three_digits[micros // 1000]}"
                f"{three_digits[micros % 1000]}{value_piece}{values[position]}{step_piece}{step}}}}}}}\n"
            )
    return "".join(out).encode()


def _generic_line(entry: CapturedEntry, sink_name: str) -> str:
    return orjson.dumps(entry_to_line(entry, sink_name), option=orjson.OPT_APPEND_NEWLINE).decode()


def materialize_metric(item: tuple[Any, ...], position: int, numbering: Numbering) -> CapturedEntry:
    """The entry of one raw metric tuple at `position` of its batch."""
    _, t_ns, context, key, value, unit, step, aggregation_scope, tags = item
    ref = f"{record_ref_prefix(context, numbering.id_prefix)}{numbering.first + position}"
    recorded_at = numbering.recorded_at
    return CapturedEntry(
        "RECORD",
        "MetricRecord",
        ref,
        recorded_at,
        None,
        MetricFields(
            ref, recorded_at, format_ns(t_ns), context, key, value, unit, step, aggregation_scope, tags
        ),
    )
