"""Capture-log lines of raw metric tuples, formatted directly: the writer's hottest loop.

A metric line is about 600 bytes of which only the record number, the observation time, the value
and the step change from one metric to the next. Everything else is constant per (scope, key, unit,
aggregation scope, value type, has-step) and is cut once into the six pieces between those
variables; a run of metrics becomes columns (`record_segments`), which `_line_writer.assemble`
interleaves with the pieces, here or in the log-writer process. The result equals
`orjson.dumps(entry_to_line(...))` as JSON (a test holds them equal): refs and keys are validated at
the call to need no JSON escaping, finite floats and int64s print as valid JSON numbers, and free
text (unit) goes through orjson. Metrics with tags, and metrics whose value is NaN or infinite (which
the generic encoder writes as a token, since JSON has no such numbers), take the generic encoder.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from itertools import repeat
from operator import is_not
from typing import Any, NamedTuple

import orjson

from contexta.capture._items import (
    METRIC_CONTEXT,
    METRIC_FIELDS,
    METRIC_KEY,
    METRIC_OPTIONS,
    METRIC_STEP,
    METRIC_T_NS,
    METRIC_TAGS,
    METRIC_VALUE,
    ScopeContext,
    as_context,
    has_default_options,
    only_tuples,
)
from contexta.capture._log._entries import (
    CapturedEntry,
    MetricFields,
    entry_to_line,
    envelope_constants,
    record_ref_prefix,
)
from contexta.capture._log._line_writer import MetricColumns, Segment, assemble

try:
    from contexta.capture._metric_columns import plain_metric_columns
except ImportError:  # built without a C compiler: `_columns` does every run
    plain_metric_columns = None  # type: ignore[assignment]
from contexta.contract._timestamps import format_ns

__all__ = ["Numbering", "materialize_metric", "record_lines"]

# Items a piece of `record_segments(..., between_pieces=)`: a quarter of a full batch.
_PIECE = 4096


class Numbering(NamedTuple):
    """How the raw metrics of one batch are named: the metric at position p is record number
    `first + p` of this process (`record:{owner}.{id_prefix}{first + p}`), recorded at `recorded_ns`."""

    id_prefix: str
    first: int
    recorded_ns: int
    recorded_at: str


# The constant text around a metric line's variables, for one template, in line order: head
# (... "payload_ref":"record:owner.prefix), middle (","sink_name": ... "record_ref":"record:owner.prefix),
# observed (","record_type":"metric","recorded_at":"...","observed_at":"), value (", envelope
# constants ..."value":), after_value (,"value_type": ... "subject_ref":"..." [,"unit": ...] and
# ,"step": or the line's end), close (the line's end after a step, or "" without one).
# A plain tuple, not a NamedTuple: the pieces are pickled to the log-writer process, and a class
# defined here made its first unpickle import all of contexta (~85 ms, while the lane held a batch
# and the queue filled behind it).
_Pieces = tuple[bytes, bytes, bytes, bytes, bytes, bytes]


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
    return (
        (
            f'{{"captured_at":"{recorded_at}","family":"RECORD","payload_type":"MetricRecord",'
            f'"payload_ref":"{prefix}'
        ).encode(),
        f'","sink_name":{sink_name_json},"payload":{{"envelope":{{"record_ref":"{prefix}'.encode(),
        f'","record_type":"metric","recorded_at":"{recorded_at}","observed_at":"'.encode(),
        f'",{constants}}},"payload":{{"metric_key":{orjson.dumps(key).decode()},"value":'.encode(),
        (payload_rest + (',"step":' if has_step else line_end)).encode(),
        line_end.encode() if has_step else b"",
    )


def record_lines(items: list[Any], numbering: Numbering | None, sink_name: str) -> bytes:
    """The RECORD-family lines of a batch."""
    return assemble(record_segments(items, numbering, sink_name))


def record_segments(
    items: list[Any],
    numbering: Numbering | None,
    sink_name: str,
    between_pieces: Callable[[], None] | None = None,
) -> list[Segment]:
    """The RECORD-family lines of a batch as segments: runs of plain metric tuples as columns (cheap
    to build, assembled into lines by `assemble`), everything else (built entries, metrics with
    tags) as lines from the generic encoder.

    With `between_pieces`, a batch is taken `_PIECE` items at a time and `between_pieces()` is called
    between them: the capture log's lane passes `make_way`, since splitting a whole 16,384-item batch
    held the GIL 0.35-0.6 ms in one compiled call while capturing threads waited."""
    if not items:
        return []
    sink_name_json = orjson.dumps(sink_name).decode()
    pieces_for: dict[tuple[Any, ...], _Pieces] = {}
    if between_pieces is None or len(items) <= _PIECE:
        return _range_segments(items, 0, len(items), numbering, sink_name, sink_name_json, pieces_for)
    out: list[Segment] = []
    for start in range(0, len(items), _PIECE):
        if start:
            between_pieces()
        stop = min(len(items), start + _PIECE)
        out += _range_segments(items, start, stop, numbering, sink_name, sink_name_json, pieces_for)
    return out


def _range_segments(
    items: list[Any],
    start: int,
    stop: int,
    numbering: Numbering | None,
    sink_name: str,
    sink_name_json: str,
    pieces_for: dict[tuple[Any, ...], _Pieces],
) -> list[Segment]:
    """`record_segments` of `items[start:stop]`."""
    # The common range, plain finite metrics only, split in one compiled pass: no singles to look for.
    whole = _whole_columns(items, start, stop, numbering, sink_name_json, pieces_for)
    if whole is not None:
        return [whole]
    out: list[Segment] = []
    done = start
    for position in _singles(items if (start, stop) == (0, len(items)) else items[start:stop]):
        position += start
        if position > done:
            out += _column_segments(items, done, position, numbering, sink_name, sink_name_json, pieces_for)
        item = items[position]
        if type(item) is tuple:
            assert numbering is not None
            out.append(_generic_line(materialize_metric(item, position, numbering), sink_name))
        elif item.family == "RECORD":
            out.append(_generic_line(item, sink_name))
        done = position + 1
    if done < stop:
        out += _column_segments(items, done, stop, numbering, sink_name, sink_name_json, pieces_for)
    return out


def _singles(items: list[Any]) -> list[int]:
    """Positions of the items that are not plain metric tuples (built entries, metrics with tags)."""
    if only_tuples(items) and list(map(METRIC_TAGS, items)).count(None) == len(items):
        return []  # the common batch, decided at C speed
    return [
        position
        for position, item in enumerate(items)
        if type(item) is not tuple or METRIC_TAGS(item) is not None
    ]


def _column_segments(
    items: list[Any],
    start: int,
    stop: int,
    numbering: Numbering | None,
    sink_name: str,
    sink_name_json: str,
    pieces_for: dict[tuple[Any, ...], _Pieces],
) -> list[Segment]:
    """The plain metric tuples `items[start:stop]` as columns, except any whose value is NaN or
    infinite: those are cut out as lines from the generic encoder, which writes the value as its
    token (JSON has no such numbers, and the columns print values as JSON numbers)."""
    whole = _whole_columns(items, start, stop, numbering, sink_name_json, pieces_for)
    if whole is not None:
        return [whole]
    first = numbering.first if numbering is not None else 0
    run = items[start:stop]
    values = list(map(METRIC_VALUE, run))
    if (total := sum(values)) - total == 0:  # the common run, decided at C speed: no NaN, no infinity
        return [_columns(run, values, first + start, numbering, sink_name_json, pieces_for)]
    assert numbering is not None
    out: list[Segment] = []
    done = 0  # offsets in `run` before this one are in `out`
    for offset, value in enumerate(values):
        if value - value != 0:
            if offset > done:
                out.append(
                    _columns(
                        run[done:offset],
                        values[done:offset],
                        first + start + done,
                        numbering,
                        sink_name_json,
                        pieces_for,
                    )
                )
            out.append(_generic_line(materialize_metric(run[offset], start + offset, numbering), sink_name))
            done = offset + 1
    if done < len(run):  # (none was cut out when the sum only overflowed)
        out.append(
            _columns(run[done:], values[done:], first + start + done, numbering, sink_name_json, pieces_for)
        )
    return out


def _whole_columns(
    items: list[Any],
    start: int,
    stop: int,
    numbering: Numbering | None,
    sink_name_json: str,
    pieces_for: dict[tuple[Any, ...], _Pieces],
) -> MetricColumns | None:
    """`items[start:stop]` as one set of columns when the compiled pass takes them whole (plain
    finite float metrics, steps all given or all missing), else None."""
    split = plain_metric_columns(items, start, stop) if plain_metric_columns is not None else None
    if split is None or not split[4] or split[5] not in (0, stop - start):
        return None
    first = numbering.first if numbering is not None else 0
    return _split_columns(items, start, stop, split, first, numbering, sink_name_json, pieces_for)


def _split_columns(
    items: list[Any],
    start: int,
    stop: int,
    split: tuple[list[int], bytes, bytes, bytes, bool, int],
    first: int,
    numbering: Numbering | None,
    sink_name_json: str,
    pieces_for: dict[tuple[Any, ...], _Pieces],
) -> MetricColumns:
    """`_columns` of a run the compiled pass split (`capture/_metric_columns.c`: plain float metrics,
    all finite, steps all given or all missing): one template per run of one (scope, key), and the
    values and steps as machine arrays, turned into JSON numbers where the lines are assembled (in
    the log-writer process, under load), not on the writer thread."""
    run_starts, observed_ns, values_bytes, steps_bytes, _, _ = split
    templates: list[tuple[bytes, ...]] = [
        _template_pieces(items[start + offset], numbering, sink_name_json, pieces_for)
        for offset in run_starts
    ]
    labels: list[int] | None = None
    if len(run_starts) > 1:
        labels = []
        for index, (begin, end) in enumerate(zip(run_starts, [*run_starts[1:], stop - start], strict=True)):
            labels += repeat(index, end - begin)
    values, steps = array("d"), array("q")
    values.frombytes(values_bytes)
    steps.frombytes(steps_bytes)
    return (first + start, templates, labels, values, steps, observed_ns)


def _columns(
    run: list[Any],
    values: list[Any],
    first: int,
    numbering: Numbering | None,
    sink_name_json: str,
    pieces_for: dict[tuple[Any, ...], _Pieces],
) -> MetricColumns:
    """The columns of a run of plain metric tuples with finite values, each taken at C speed.

    Only what varies inside the run is hashed to find each metric's template: one template for the
    whole run (one scope, one key) is the common batch, and `metrics()` varies only the key.
    """
    length = len(run)
    steps = list(map(METRIC_STEP, run))
    contexts, keys = list(map(METRIC_CONTEXT, run)), list(map(METRIC_KEY, run))
    options = None if has_default_options(run) else list(map(METRIC_OPTIONS, run))
    types = list(map(type, values))
    missing_steps = steps.count(None)
    has_step = None if missing_steps in (0, length) else list(map(is_not, steps, repeat(None)))
    varying: list[list[Any]] = [
        column
        for column in (contexts, keys, options, types, has_step)
        if column is not None and column.count(column[0]) != length  # type: ignore[arg-type]
    ]
    templates: list[tuple[bytes, ...]]
    labels: list[int] | None = None
    if not varying:
        templates = [_template_pieces(run[0], numbering, sink_name_json, pieces_for)]
    else:
        named = varying[0] if len(varying) == 1 else list(zip(*varying, strict=True))
        # Each label's first position, in one C-level pass (earlier positions overwrite later ones).
        first_of = dict(zip(reversed(named), range(length - 1, -1, -1), strict=True))
        index_of = {label: index for index, label in enumerate(first_of)}
        templates = [
            _template_pieces(run[position], numbering, sink_name_json, pieces_for)
            for position in first_of.values()
        ]
        labels = list(map(index_of.__getitem__, named))
    observed_ns = array("q", map(METRIC_T_NS, run)).tobytes()  # cheaper to pickle than a list of ints
    return (first, templates, labels, orjson.dumps(values), orjson.dumps(steps), observed_ns)


def _template_pieces(
    item: tuple[Any, ...],
    numbering: Numbering | None,
    sink_name_json: str,
    pieces_for: dict[tuple[Any, ...], _Pieces],
) -> _Pieces:
    _, fields, key, value, unit, step, aggregation_scope, _ = METRIC_FIELDS(item)
    context = as_context(fields)
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
    t_ns, fields, key, value, unit, step, aggregation_scope, tags = METRIC_FIELDS(item)
    context = as_context(fields)
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
