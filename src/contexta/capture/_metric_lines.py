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

from itertools import repeat
from operator import floordiv, is_not, itemgetter, mod
from time import gmtime, strftime
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


class Numbering(NamedTuple):
    """How the raw metrics of one batch are named: the metric at position p is record number
    `first + p` of this process (`record:{owner}.{id_prefix}{first + p}`), recorded at `recorded_ns`."""

    id_prefix: str
    first: int
    recorded_ns: int
    recorded_at: str


class _Pieces(NamedTuple):
    """The constant text around a metric line's variables, for one template."""

    head: bytes  # ... "payload_ref":"record:owner.prefix
    middle: bytes  # ","sink_name": ... "record_ref":"record:owner.prefix
    observed: bytes  # ","record_type":"metric","recorded_at":"...","observed_at":"
    value: bytes  # ", envelope constants ..."value":
    after_value: (
        bytes  # ,"value_type": ... "subject_ref": "..." [,"unit": ...] and ,"step": or the line's end
    )
    close: bytes  # the line's end after a step, or "" without one


_PIECE_PARTS = tuple(map(itemgetter, range(6)))  # head, middle, observed, value, after_value, close
_LINE_PARTS = 12  # the six pieces and the six variables of a line, interleaved
# Columns of a METRIC tuple: (METRIC, t_ns, context, key, value, unit, step, aggregation_scope, tags).
_T_NS, _VALUE, _STEP, _TAGS = itemgetter(1), itemgetter(4), itemgetter(6), itemgetter(8)
_CONTEXT, _KEY, _UNIT, _AGGREGATION = itemgetter(2), itemgetter(3), itemgetter(5), itemgetter(7)
_OPTIONS = itemgetter(5, 7)  # unit, aggregation scope
# "000" to "999" (and with the observation time's closing "Z"): looked up, not formatted.
_THREE_DIGITS = tuple(b"%03d" % number for number in range(1000))
_THREE_DIGITS_Z = tuple(b"%03dZ" % number for number in range(1000))
_TUPLE_ONLY = {tuple}


def _pieces(
    context: ScopeContext,
    key: str,
    unit: str | None,
    aggregation_scope: str,
    is_float: bool,
    has_step: bool,
    numbering: Numbering,
    sink_name_json: str,
) -> _Pieces:
    prefix = record_ref_prefix(context, numbering.id_prefix)
    recorded_at = numbering.recorded_at
    constants = orjson.dumps(envelope_constants(context)).decode()[1:-1]
    value_type = "float64" if is_float else "int64"
    unit_part = "" if unit is None else ',"unit":' + orjson.dumps(unit).decode()
    payload_rest = (
        f',"value_type":"{value_type}","aggregation_scope":{orjson.dumps(aggregation_scope).decode()},'
        f'"subject_ref":"{context.ref}"{unit_part}'
    )
    line_end = "}}}\n"
    return _Pieces(
        head=(
            f'{{"captured_at":"{recorded_at}","family":"RECORD","payload_type":"MetricRecord",'
            f'"payload_ref":"{prefix}'
        ).encode(),
        middle=f'","sink_name":{sink_name_json},"payload":{{"envelope":{{"record_ref":"{prefix}'.encode(),
        observed=f'","record_type":"metric","recorded_at":"{recorded_at}","observed_at":"'.encode(),
        value=f'",{constants}}},"payload":{{"metric_key":{orjson.dumps(key).decode()},"value":'.encode(),
        after_value=(payload_rest + (',"step":' if has_step else line_end)).encode(),
        close=line_end.encode() if has_step else b"",
    )


def record_lines(items: list[Any], numbering: Numbering | None, sink_name: str) -> bytes:
    """The RECORD-family lines of a batch: runs of plain metric tuples formatted column-wise, and
    everything else (built entries, metrics with tags) through the generic encoder."""
    if not items:
        return b""
    sink_name_json = orjson.dumps(sink_name).decode()
    pieces_for: dict[tuple[Any, ...], _Pieces] = {}
    first = numbering.first if numbering is not None else 0
    out: list[bytes] = []
    start = 0
    for position in _singles(items):
        if position > start:
            _plain_run(out, items, start, position, first, numbering, sink_name_json, pieces_for)
        item = items[position]
        if type(item) is tuple:
            assert numbering is not None
            out.append(_generic_line(materialize_metric(item, position, numbering), sink_name))
        elif item.family == "RECORD":
            out.append(_generic_line(item, sink_name))
        start = position + 1
    if start < len(items):
        _plain_run(out, items, start, len(items), first, numbering, sink_name_json, pieces_for)
    return b"".join(out)


def _singles(items: list[Any]) -> list[int]:
    """Positions of the items that are not plain metric tuples (built entries, metrics with tags)."""
    if set(map(type, items)) == _TUPLE_ONLY and list(map(_TAGS, items)).count(None) == len(items):
        return []  # the common batch, decided at C speed
    return [position for position, item in enumerate(items) if type(item) is not tuple or item[8] is not None]


def _plain_run(
    out: list[bytes],
    items: list[Any],
    start: int,
    stop: int,
    first: int,
    numbering: Numbering | None,
    sink_name_json: str,
    pieces_for: dict[tuple[Any, ...], _Pieces],
) -> None:
    """Append the lines of the plain metric tuples `items[start:stop]`.

    Every step is a C-level map over a column (values, steps, times, numbers); Python runs once per
    distinct template and once per distinct millisecond. A line is a join of its pieces, so no
    ~600-byte string is built per metric (strings that long bypass Python's small-object allocator).
    """
    run = items[start:stop]
    values = list(map(_VALUE, run))
    steps = list(map(_STEP, run))
    pieces = _run_pieces(run, values, steps, numbering, sink_name_json, pieces_for)
    micros = list(map(floordiv, map(_T_NS, run), repeat(1000)))
    millis = list(map(floordiv, micros, repeat(1000)))
    seconds: dict[int, bytes] = {}
    millis_texts: dict[int, bytes] = {}
    for milli in set(millis):
        second = milli // 1000
        text = seconds.get(second)
        if text is None:
            text = seconds[second] = strftime("%Y-%m-%dT%H:%M:%S.", gmtime(second)).encode()
        millis_texts[milli] = text + _THREE_DIGITS[milli - second * 1000]
    # orjson prints a column of numbers in one call; a missing step prints as "null" and becomes "".
    numbers = _json_column(list(range(first + start, first + stop)))
    value_texts = _json_column(values)
    step_texts = orjson.dumps(steps)[1:-1].replace(b"null", b"").split(b",")
    head, middle, observed, value, after_value, close = pieces
    # Each column is written into every 12th slot: no per-line tuple, so the collector never runs.
    lines: list[bytes] = [b""] * (_LINE_PARTS * len(run))
    lines[0::_LINE_PARTS] = head
    lines[1::_LINE_PARTS] = numbers
    lines[2::_LINE_PARTS] = middle
    lines[3::_LINE_PARTS] = numbers
    lines[4::_LINE_PARTS] = observed
    lines[5::_LINE_PARTS] = list(map(millis_texts.__getitem__, millis))
    lines[6::_LINE_PARTS] = list(map(_THREE_DIGITS_Z.__getitem__, map(mod, micros, repeat(1000))))
    lines[7::_LINE_PARTS] = value
    lines[8::_LINE_PARTS] = value_texts
    lines[9::_LINE_PARTS] = after_value
    lines[10::_LINE_PARTS] = step_texts
    lines[11::_LINE_PARTS] = close
    out += lines


def _json_column(numbers: list[Any]) -> list[bytes]:
    return orjson.dumps(numbers)[1:-1].split(b",")


def _run_pieces(
    run: list[Any],
    values: list[Any],
    steps: list[Any],
    numbering: Numbering | None,
    sink_name_json: str,
    pieces_for: dict[tuple[Any, ...], _Pieces],
) -> list[list[bytes]]:
    """The six piece columns (heads, middles, ...) of the metrics of `run`, hashing only what varies.

    One template for the whole run (one scope, one key) is the common batch; `metrics()` varies only
    the key. Each is decided by C-level counts, and a run mixing many scopes hashes full templates.
    """
    length = len(run)
    contexts, keys = list(map(_CONTEXT, run)), list(map(_KEY, run))
    options = list(map(_OPTIONS, run)) if _options_vary(run) else None  # (unit, aggregation scope)
    types = list(map(type, values))
    missing_steps = steps.count(None)
    has_step = None if missing_steps in (0, length) else list(map(is_not, steps, repeat(None)))
    varying: list[list[Any]] = [
        column
        for column in (contexts, keys, options, types, has_step)
        if column is not None and column.count(column[0]) != length  # type: ignore[arg-type]
    ]
    if not varying:
        return [[piece] * length for piece in _template_pieces(run[0], numbering, sink_name_json, pieces_for)]
    labels = varying[0] if len(varying) == 1 else list(zip(*varying, strict=True))
    by_label = {
        label: _template_pieces(run[labels.index(label)], numbering, sink_name_json, pieces_for)
        for label in set(labels)
    }
    per_metric = list(map(by_label.__getitem__, labels))
    return [list(map(part, per_metric)) for part in _PIECE_PARTS]


def _options_vary(run: list[Any]) -> bool:
    """False when every metric of `run` has the default unit (none) and aggregation scope ("step")."""
    length = len(run)
    return list(map(_UNIT, run)).count(None) != length or list(map(_AGGREGATION, run)).count("step") != length


def _template_pieces(
    item: tuple[Any, ...],
    numbering: Numbering | None,
    sink_name_json: str,
    pieces_for: dict[tuple[Any, ...], _Pieces],
) -> _Pieces:
    _, _, context, key, value, unit, step, aggregation_scope, _ = item
    template = (context, key, unit, aggregation_scope, type(value) is float, step is not None)
    pieces = pieces_for.get(template)
    if pieces is None:
        assert numbering is not None
        pieces = pieces_for[template] = _pieces(*template, numbering, sink_name_json)
    return pieces


def _generic_line(entry: CapturedEntry, sink_name: str) -> bytes:
    return orjson.dumps(entry_to_line(entry, sink_name), option=orjson.OPT_APPEND_NEWLINE)


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
