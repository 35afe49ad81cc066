"""Metric points read back from their chunks (the read side of `_metric_chunks.py`).

Series are chosen by SQL on `metric_series`; their chunks are decoded with `array` (C speed) into
columns, in capture order. Points become objects only when someone asks: a million-point series is
a few arrays, not a million models.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Iterator, MutableSequence, Sequence
from typing import Any, NamedTuple

import orjson

from contexta.contract._non_finite import decode_metric_value
from contexta.contract._records import PRODUCER_REF, SCHEMA_VERSION, MetricRecord
from contexta.contract._serialization import model_from_dict
from contexta.contract._timestamps import format_ns
from contexta.store._chunk_codec import read_column
from contexta.store._metric_chunks import NO_STEP, POSITION_TYPE, default_subject
from contexta.store._sql import where_equal

__all__ = ["MetricColumns", "SeriesRow", "load_columns", "select_series"]

_SERIES_COLUMNS = (
    "series_id, run_ref, stage_ref, batch_ref, sample_ref, deployment_ref, key, value_type, unit, extras, "
    "point_count, first_seq, last_seq, last_value, non_finite_count, first_non_finite_step"
)


class SeriesRow(NamedTuple):
    """A stored series; refs and unit are None where absent."""

    series_id: int
    run_ref: str | None
    stage_ref: str | None
    batch_ref: str | None
    sample_ref: str | None
    deployment_ref: str | None
    key: str
    value_type: str
    unit: str | None
    extras: dict[str, Any]
    point_count: int
    first_seq: int
    last_seq: int
    last_value: float | int  # NaN and infinities included (stored as their tokens)
    non_finite_count: int  # how many points are NaN or infinite
    first_non_finite_step: int | None  # the step of the first of them, if it had one


def _series_row(row: tuple[Any, ...]) -> SeriesRow:
    (series_id, run, stage, batch, sample, deployment, key, value_type, unit, extras, *aggregates) = row
    point_count, first_seq, last_seq, last_value, non_finite_count, first_non_finite_step = aggregates
    return SeriesRow(
        series_id,
        run or None,
        stage or None,
        batch or None,
        sample or None,
        deployment or None,
        key,
        value_type,
        unit or None,
        orjson.loads(extras) if extras else {},
        point_count,
        first_seq,
        last_seq,
        decode_metric_value(last_value),
        non_finite_count,
        first_non_finite_step,
    )


def select_series(
    connection: sqlite3.Connection,
    *,
    execution_id: str | None = None,
    key: str | None = None,
    stage_ref: str | None = None,
    deployment_ref: str | None = None,
) -> list[SeriesRow]:
    """The series matching every filter given (an execution of a run, a key, a stage ref, a
    deployment ref), in the order their first points were captured."""
    where, parameters = where_equal(
        (
            ("execution_id", execution_id),
            ("key", key),
            ("stage_ref", stage_ref),
            ("deployment_ref", deployment_ref),
        )
    )
    rows = connection.execute(
        f"SELECT {_SERIES_COLUMNS} FROM metric_series{where} ORDER BY first_seq", parameters
    ).fetchall()
    return [_series_row(row) for row in rows]


class _Naming(NamedTuple):
    """How the points of one chunk are named: captured points from the writer's numbering, hand-written
    ones from their own refs and times (by position in their batch)."""

    seq_base: int
    ref_prefix: str | None  # record:{owner}.{id_prefix}
    ref_base: int | None
    recorded_at: str | None
    explicit: dict[int, tuple[str, str]] | None  # position -> (record ref, recorded at)


class MetricColumns:
    """Points of one or more series in capture order, one column per field.

    Columns are arrays while every point allows it (floats of float series, captured observation
    times in epoch ns) and lists otherwise. `steps` holds NO_STEP where a point has none; `observed`
    holds epoch ns for captured points and the given string for hand-written ones; `series` holds each
    point's index into `series_rows`, `chunk` its index into the chunks' naming. Use the accessors,
    which turn those into the public forms, one point at a time.
    """

    __slots__ = ("chunk", "namings", "observed", "seqs", "series", "series_rows", "steps", "values")

    def __init__(self, series_rows: list[SeriesRow]):
        self.series_rows = series_rows
        value_types = {row.value_type for row in series_rows}
        self.values: MutableSequence[Any] = (
            array("d") if value_types == {"float64"} else array("q") if value_types == {"int64"} else []
        )
        self.steps: array[int] = array("q")
        self.observed: MutableSequence[Any] = array("q")
        self.seqs: array[int] = array("q")
        self.series: array[int] = array("i")
        self.chunk: array[int] = array("i")
        self.namings: list[_Naming] = []

    def __len__(self) -> int:
        return len(self.seqs)

    def step(self, index: int) -> int | None:
        step = self.steps[index]
        return None if step == NO_STEP else step

    def step_list(self) -> list[int | None]:
        return [None if step == NO_STEP else step for step in self.steps]

    def observed_at(self, index: int) -> str:
        observed = self.observed[index]
        return observed if type(observed) is str else format_ns(observed)

    def ref_and_recorded_at(self, index: int) -> tuple[str, str]:
        naming = self.namings[self.chunk[index]]
        position = self.seqs[index] - naming.seq_base
        if naming.explicit is not None:
            return naming.explicit[position]
        assert naming.ref_base is not None and naming.recorded_at is not None
        return f"{naming.ref_prefix}{naming.ref_base + position}", naming.recorded_at

    def record(self, index: int) -> MetricRecord:
        """The contract record of point `index` (validated, as every record read from the store)."""
        row = self.series_rows[self.series[index]]
        extras = row.extras
        record_ref, recorded_at = self.ref_and_recorded_at(index)
        envelope = {
            "record_ref": record_ref,
            "record_type": "metric",
            "recorded_at": recorded_at,
            "observed_at": self.observed_at(index),
            "producer_ref": extras.get("producer_ref", PRODUCER_REF),
            "run_ref": row.run_ref,
            "stage_execution_ref": row.stage_ref,
            "batch_execution_ref": row.batch_ref,
            "sample_observation_ref": row.sample_ref,
            "deployment_execution_ref": row.deployment_ref,
            "completeness_marker": extras.get("completeness_marker", "complete"),
            "degradation_marker": extras.get("degradation_marker", "none"),
            "schema_version": extras.get("schema_version", SCHEMA_VERSION),
        }
        payload = {
            "metric_key": row.key,
            "value": self.values[index],
            "value_type": extras.get("value_type", row.value_type),
            "unit": row.unit,
            "step": self.step(index),
            "aggregation_scope": extras.get("aggregation_scope", "step"),
            "subject_ref": extras.get(
                "subject_ref",
                default_subject(
                    row.run_ref, row.stage_ref, row.batch_ref, row.sample_ref, row.deployment_ref
                ),
            ),
            "tags": extras.get("tags"),
        }
        record: Any = model_from_dict("MetricRecord", {"envelope": envelope, "payload": payload})
        return record  # type: ignore[no-any-return]


class _Chunk(NamedTuple):
    series_index: int
    seq_base: int
    positions: Sequence[int]
    values: array[Any]
    steps: Sequence[int]
    observed: array[int] | list[str]
    naming: _Naming


def _chunks(
    connection: sqlite3.Connection, series_rows: list[SeriesRow], after_seq: int | None = None
) -> Iterator[_Chunk]:
    index_of = {row.series_id: index for index, row in enumerate(series_rows)}
    typecodes = {row.series_id: "d" if row.value_type == "float64" else "q" for row in series_rows}
    ids = list(index_of)
    # After a capture position: only the chunk holding it and later ones (a chunk's points follow its
    # seq_base, so the last chunk starting at or before it may hold later points too).
    since = (
        ""
        if after_seq is None
        else " AND seq_base >= coalesce((SELECT max(earlier.seq_base) FROM metric_chunks AS earlier "
        "WHERE earlier.series_id = metric_chunks.series_id AND earlier.seq_base <= ?), 0)"
    )
    for start in range(0, len(ids), 500):  # SQLite caps the parameters of one statement
        part = ids[start : start + 500]
        rows = connection.execute(
            "SELECT series_id, seq_base, point_count, encoding, positions, observed_ns, point_values, steps, "
            "id_prefix, ref_base, recorded_ns, explicit FROM metric_chunks "
            f"WHERE series_id IN ({', '.join('?' * len(part))}){since} ORDER BY seq_base, chunk_id",
            part if after_seq is None else [*part, after_seq],
        )
        for series_id, seq_base, count, encoding, *columns, prefix, ref_base, recorded, text in rows:
            positions, observed, values, steps = columns
            series_index = index_of[series_id]
            unpacked_positions = read_column(encoding, POSITION_TYPE, positions, count)
            if text is not None:
                explicit = orjson.loads(text)
                naming = _Naming(
                    seq_base,
                    None,
                    None,
                    None,
                    dict(
                        zip(
                            unpacked_positions,
                            zip(explicit["refs"], explicit["recorded_at"], strict=True),
                            strict=True,
                        )
                    ),
                )
                observed_column: array[int] | list[str] = explicit["observed_at"]
            else:
                owner = series_rows[series_index].run_ref or series_rows[series_index].deployment_ref or ""
                naming = _Naming(
                    seq_base,
                    f"record:{owner.partition(':')[2]}.{prefix}",
                    ref_base,
                    format_ns(recorded),
                    None,
                )
                observed_column = read_column(encoding, "q", observed, count)
            yield _Chunk(
                series_index,
                seq_base,
                unpacked_positions,
                read_column(encoding, typecodes[series_id], values, count),
                read_column(encoding, "q", steps, count),
                observed_column,
                naming,
            )


def load_columns(
    connection: sqlite3.Connection, series_rows: list[SeriesRow], *, after_seq: int | None = None
) -> MetricColumns:
    """Every point of `series_rows`, merged into capture order; with `after_seq`, at least the points
    captured after that position (and perhaps a few before it, from the chunk that holds it)."""
    columns = MetricColumns(series_rows)
    pending: list[_Chunk] = []  # chunks of one stored batch; several series may interleave inside it
    for chunk in _chunks(connection, series_rows, after_seq):
        if pending and chunk.seq_base != pending[0].seq_base:
            _append_batch(columns, pending)
            pending = []
        pending.append(chunk)
    if pending:
        _append_batch(columns, pending)
    return columns


def _append_batch(columns: MetricColumns, chunks: list[_Chunk]) -> None:
    numbers = []
    for chunk in chunks:
        numbers.append(len(columns.namings))
        columns.namings.append(chunk.naming)
    if len(chunks) == 1:
        _append_chunk(columns, chunks[0], numbers[0])
        return
    # Several series in one batch: merge their points by position (a batch's seq range is its own).
    order = sorted(
        (position, number, index)
        for number, chunk in enumerate(chunks)
        for index, position in enumerate(chunk.positions)
    )
    for _, number, index in order:
        chunk = chunks[number]
        if type(chunk.observed) is not array and type(columns.observed) is array:
            columns.observed = list(columns.observed)
        columns.seqs.append(chunk.seq_base + chunk.positions[index])
        columns.steps.append(chunk.steps[index])
        columns.values.append(chunk.values[index])
        columns.observed.append(chunk.observed[index])
        columns.series.append(chunk.series_index)
        columns.chunk.append(numbers[number])


def _append_chunk(columns: MetricColumns, chunk: _Chunk, number: int) -> None:
    """Append all of `chunk`, column by column, at C speed."""
    if type(chunk.observed) is not array and type(columns.observed) is array:
        columns.observed = list(columns.observed)  # hand-written points keep their own strings
    count = len(chunk.positions)
    columns.seqs.extend(map(chunk.seq_base.__add__, chunk.positions))
    columns.steps.extend(chunk.steps)
    columns.values.extend(chunk.values)
    columns.observed.extend(chunk.observed)
    columns.series.extend(array("i", [chunk.series_index]) * count)
    columns.chunk.extend(array("i", [number]) * count)
