"""Metric points packed into columns: one chunk per series per stored batch (the write side).

A store of one row per point spends more time in SQLite than capture spends producing the points,
so each batch's points are grouped by series and each group becomes one row of columns (positions,
observation times, values, steps), each encoded compactly (see `_chunk_codec.py`). The series row
keeps running aggregates (count, first and last seq, last value, how many points are NaN or infinite
and the step of the first) that answer "latest value", "how many" and "did it diverge" without the
points.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any, NamedTuple

import orjson

from contexta._courtesy import each_making_way
from contexta.contract._non_finite import decode_metric_value, encode_metric_value
from contexta.contract._records import PRODUCER_REF, SCHEMA_VERSION
from contexta.contract._refs import execution_of_record_ref, record_id_prefix
from contexta.store._chunk_codec import CODEC_PER_COLUMN, column_progression, encode_column
from contexta.store._chunk_summary import Summarized, summarize

__all__ = [
    "NO_STEP",
    "ChunkNaming",
    "MetricChunkWriter",
    "SeriesIdentity",
    "SeriesIds",
    "SeriesPoints",
    "reserve_seq",
]

NO_STEP = -1  # steps are non-negative, so -1 marks a point without one
POSITION_TYPE = "i"  # a position within one batch fits 32 bits


def reserve_seq(connection: sqlite3.Connection, count: int) -> int:
    """Reserve `count` capture-order numbers inside the caller's write transaction; returns the first."""
    (end,) = connection.execute(
        "UPDATE counters SET value = value + ? WHERE name = 'seq' RETURNING value", (count,)
    ).fetchone()
    return int(end) - count + 1


class SeriesIdentity(NamedTuple):
    """What every point of a series shares; '' where a ref or unit is absent (see the schema)."""

    execution_id: str  # the run execution it belongs to ('' for a run-less deployment's)
    run_ref: str
    stage_ref: str
    batch_ref: str
    sample_ref: str
    deployment_ref: str
    key: str
    value_type: str  # how the values are stored: float64 or int64
    unit: str
    extras: str  # canonical JSON of the rare fields that differ from their defaults, or ''

    @classmethod
    def captured(
        cls,
        execution_id: str | None,
        refs: tuple[str | None, str | None, str | None, str | None, str | None],
        key: str,
        value_type: str,
        unit: str | None,
        aggregation_scope: str,
        subject_ref: str | None,
        tags: Any,
    ) -> SeriesIdentity:
        """The series of a metric captured live: `refs` are its run, stage, batch, sample and
        deployment refs, `subject_ref` the scope it was captured on. A scope, subject or tags other
        than the defaults are kept in `extras`, so points that differ in them are never one series."""
        extras = _extras(
            {"aggregation_scope": aggregation_scope, "subject_ref": subject_ref, "tags": tags},
            {"aggregation_scope": "step", "subject_ref": default_subject(*refs), "tags": None},
        )
        return _identity(execution_id, refs, key, value_type, unit, extras)


def default_subject(
    run_ref: str | None,
    stage_ref: str | None,
    batch_ref: str | None,
    sample_ref: str | None,
    deployment_ref: str | None,
) -> str | None:
    """The subject a metric has when it was captured on its innermost context (not worth storing)."""
    return sample_ref or batch_ref or stage_ref or run_ref or deployment_ref


def _identity(
    execution_id: str | None,
    refs: tuple[str | None, ...],
    key: str,
    value_type: str,
    unit: str | None,
    extras: str,
) -> SeriesIdentity:
    run, stage, batch, sample, deployment = (ref or "" for ref in refs)
    return SeriesIdentity(
        execution_id or "", run, stage, batch, sample, deployment, key, value_type, unit or "", extras
    )


# The execution a record document belongs to, given its run ref, the execution its record ref names
# (None when it names none) and its time (see store/_executions.py `ExecutionResolver`).
ExecutionOf = Callable[[str | None, str | None, str | None], str]


def _extras(fields: dict[str, Any], defaults: dict[str, Any]) -> str:
    """Canonical JSON of the fields whose value is not their default ('' when all are)."""
    present = {key: value for key, value in fields.items() if value != defaults.get(key)}
    return orjson.dumps(present, option=orjson.OPT_SORT_KEYS).decode() if present else ""


_ENVELOPE_DEFAULTS = {
    "producer_ref": PRODUCER_REF,
    "completeness_marker": "complete",
    "degradation_marker": "none",
    "schema_version": SCHEMA_VERSION,
}


def _record_identity(document: dict[str, Any], execution_of: ExecutionOf) -> SeriesIdentity:
    envelope, payload = document["envelope"], document["payload"]
    refs = tuple(
        envelope.get(name)
        for name in (
            "run_ref",
            "stage_execution_ref",
            "batch_execution_ref",
            "sample_observation_ref",
            "deployment_execution_ref",
        )
    )
    value = decode_metric_value(payload["value"])  # a replayed log line holds a token for NaN/inf
    stored_type = "float64" if type(value) is float else "int64"
    fields = {name: envelope.get(name, default) for name, default in _ENVELOPE_DEFAULTS.items()}
    fields.update(
        aggregation_scope=payload.get("aggregation_scope", "step"),
        subject_ref=payload.get("subject_ref"),  # absent is None here, not the default subject
        tags=payload.get("tags"),
        value_type=payload.get("value_type", stored_type),
    )
    defaults = {
        **_ENVELOPE_DEFAULTS,
        "aggregation_scope": "step",
        "subject_ref": default_subject(*refs),
        "tags": None,
        "value_type": stored_type,
    }
    execution_id = execution_of(
        envelope.get("run_ref"), execution_of_record_ref(envelope["record_ref"]), envelope.get("observed_at")
    )
    return _identity(
        execution_id, refs, payload["metric_key"], stored_type, payload.get("unit"), _extras(fields, defaults)
    )


class ChunkNaming(NamedTuple):
    """How the captured points of one batch are named: the point at position p is record number
    `first + p` of its writer (`record:{owner}.{id_prefix}{first + p}` within its execution),
    recorded at `recorded_ns`. Stored once per chunk, so no point carries its own ref."""

    id_prefix: str
    first: int
    recorded_ns: int


class SeriesPoints:
    """The points of one series within one batch, as columns: the capture side appends to them."""

    __slots__ = ("explicit", "identity", "observed", "positions", "steps", "values")

    NO_STEP = NO_STEP  # in `steps`, a point without a step
    POSITION_TYPE = POSITION_TYPE  # the typecode of `positions`

    def __init__(self, identity: SeriesIdentity, explicit: bool):
        self.identity = identity
        # Arrays, not lists: a run of points is appended with one copy of machine numbers, and a
        # column is encoded without being converted first.
        self.positions: array[int] = array(POSITION_TYPE)  # within the batch (the seq base is added)
        self.observed: array[int] = array("q")  # nanoseconds since the epoch
        self.values: array[Any] = array("d" if identity.value_type == "float64" else "q")
        self.steps: array[int] = array("q")  # NO_STEP where a point has none
        # Hand-written or replayed points keep their own ref and timestamps, exactly as given.
        self.explicit: dict[str, list[str]] | None = (
            {"refs": [], "observed_at": [], "recorded_at": []} if explicit else None
        )


_SERIES_COLUMNS = (
    "execution_id, run_ref, stage_ref, batch_ref, sample_ref, deployment_ref, key, value_type, unit, extras"
)
_UPSERT_SERIES_HEAD = (
    f"INSERT INTO metric_series ({_SERIES_COLUMNS}, point_count, first_seq, last_seq, last_value, "
    "non_finite_count, first_non_finite_step, min_value, max_value, extremes_known) VALUES "
)
# The right-hand sides read the row as it was before this update: the first non-finite step is
# taken from the batch that brings the series' first non-finite point.
_UPSERT_SERIES_TAIL = (
    f" ON CONFLICT ({_SERIES_COLUMNS}) "
    "DO UPDATE SET point_count = point_count + excluded.point_count, "
    "first_seq = min(first_seq, excluded.first_seq), "
    "last_value = CASE WHEN excluded.last_seq > last_seq THEN excluded.last_value ELSE last_value END, "
    "last_seq = max(last_seq, excluded.last_seq), "
    "non_finite_count = non_finite_count + excluded.non_finite_count, "
    "first_non_finite_step = CASE WHEN non_finite_count = 0 "
    "THEN excluded.first_non_finite_step ELSE first_non_finite_step END, "
    # SQLite's two-argument min/max give NULL if either is NULL (a batch of NaN only, or none yet).
    "min_value = min(coalesce(min_value, excluded.min_value), coalesce(excluded.min_value, min_value)), "
    "max_value = max(coalesce(max_value, excluded.max_value), coalesce(excluded.max_value, max_value)), "
    # (min of two flags, not AND: the same SQL in SQLite and in PostgreSQL, where the flag is an integer)
    "extremes_known = min(extremes_known, excluded.extremes_known)"
)
# the identity's 10 columns, the 4 aggregates, the 2 non-finite ones, the 3 extremes
_SERIES_ROW_WIDTH = 19
_INSERT_CHUNKS_HEAD = (
    "INSERT INTO metric_chunks (series_id, seq_base, point_count, positions, observed_ns, point_values, "
    "steps, id_prefix, ref_base, recorded_ns, explicit, encoding, summary) VALUES "
)
# Rows per multi-row statement: 500 x 19 parameters stays far below SQLite's 32,766.
_ROWS_PER_STATEMENT = 500


def _many_rows(head: str, width: int, count: int, tail: str = "") -> str:
    row = f"({', '.join('?' * width)})"
    return f"{head}{', '.join([row] * count)}{tail}"


_UPSERT_SERIES = _many_rows(
    _UPSERT_SERIES_HEAD, _SERIES_ROW_WIDTH, 1, f"{_UPSERT_SERIES_TAIL} RETURNING series_id"
)
_INSERT_CHUNK = _many_rows(_INSERT_CHUNKS_HEAD, 13, 1)


def _statements(head: str, rows: list[tuple[Any, ...]], tail: str = "") -> Iterator[tuple[str, list[Any]]]:
    """One multi-row statement per `_ROWS_PER_STATEMENT` rows, with its flattened parameters."""
    for first in range(0, len(rows), _ROWS_PER_STATEMENT):
        part = rows[first : first + _ROWS_PER_STATEMENT]
        yield _many_rows(head, len(part[0]), len(part), tail), list(chain.from_iterable(part))


class SeriesIds:
    """The row id of each series the store sink wrote, remembered between batches.

    SQLite releases the GIL for every statement, and under load taking it back waits for whichever
    thread took it meanwhile; one upsert and one insert per series per batch made the sink wait more
    than it worked (100 concurrent samples: 110 us per series per batch). With the ids known, a batch
    updates all its series in one statement and inserts all its chunks in another. Cleared whenever
    rows could have gone (any run opened, resumed or closed, a transaction rolled back, another
    connection) and when it grows past `LIMIT` series, so it never holds more than a bounded amount.
    """

    LIMIT = 20_000

    def __init__(self) -> None:
        self.ids: dict[SeriesIdentity, int] = {}
        self.connection: sqlite3.Connection | None = None

    def use(self, connection: sqlite3.Connection) -> None:
        """Start a batch on `connection`: another connection (the store was reopened) starts afresh."""
        if connection is not self.connection or len(self.ids) > self.LIMIT:
            self.clear()
            self.connection = connection

    def clear(self) -> None:
        self.ids.clear()
        self.connection = None


def _no_execution(run_ref: str | None, claimed: str | None, at: str | None) -> str:
    return ""


class MetricChunkWriter:
    """Collects one batch's metric points by series, then writes one chunk per series."""

    def __init__(self, ids: SeriesIds | None = None, execution_of: ExecutionOf = _no_execution) -> None:
        self._ids = SeriesIds() if ids is None else ids
        self._execution_of = execution_of
        self._captured: dict[SeriesIdentity, SeriesPoints] = {}
        self._explicit: dict[SeriesIdentity, SeriesPoints] = {}

    def series(self, identity: SeriesIdentity) -> SeriesPoints:
        """The columns that points captured live of series `identity` are appended to (named, when
        written, by the batch's `ChunkNaming`)."""
        return self._group(self._captured, identity)

    def add_record(self, position: int, document: dict[str, Any]) -> None:
        """Add a metric given as its record document (written by hand, or replayed from the outbox)."""
        group = self._group(self._explicit, _record_identity(document, self._execution_of))
        envelope, payload = document["envelope"], document["payload"]
        step = payload.get("step")
        group.positions.append(position)
        group.values.append(decode_metric_value(payload["value"]))
        group.steps.append(NO_STEP if step is None else step)
        assert group.explicit is not None
        group.explicit["refs"].append(envelope["record_ref"])
        group.explicit["observed_at"].append(envelope["observed_at"])
        group.explicit["recorded_at"].append(envelope["recorded_at"])

    def _group(self, groups: dict[SeriesIdentity, SeriesPoints], identity: SeriesIdentity) -> SeriesPoints:
        group = groups.get(identity)
        if group is None:
            group = groups[identity] = SeriesPoints(identity, explicit=groups is self._explicit)
        return group

    def write(self, connection: sqlite3.Connection, seq_base: int, naming: ChunkNaming | None) -> None:
        """Write every collected group (positions are offsets from `seq_base`) and start afresh."""
        captured = list(self._captured.values())
        if captured:
            assert naming is not None
            self._write_captured(connection, seq_base, naming, captured)
        for group in self._explicit.values():
            self._write_explicit(connection, seq_base, group)
        self._captured.clear()
        self._explicit.clear()

    @staticmethod
    def _series_row(group: SeriesPoints, seq_base: int) -> tuple[tuple[Any, ...], _Summarized]:
        """The series row's share of this batch, and the chunk's summary (whose extremes it keeps)
        with its encoded steps (whose encoding says whether they are in order)."""
        values = group.values
        last = values[-1]
        non_finite_count, first_non_finite_step = 0, None
        # A finite sum (taken at C speed) means no point is NaN or infinite: the common batch stops here.
        finite = (total := sum(values)) - total == 0
        if not finite:
            where = [index for index, value in enumerate(values) if value - value != 0]
            if where:  # else finite values whose sum overflowed
                non_finite_count = len(where)
                step = group.steps[where[0]]
                first_non_finite_step = None if step == NO_STEP else step
        steps = encode_column("q", group.steps)
        summary = summarize(
            values,
            group.steps,
            None if group.explicit is not None else group.observed,
            finite,
            column_progression(CODEC_PER_COLUMN, steps),
        )
        row = (
            *group.identity,
            len(group.positions),
            seq_base + group.positions[0],
            seq_base + group.positions[-1],
            last if last - last == 0 else encode_metric_value(last),  # SQLite stores NaN as NULL
            non_finite_count,
            first_non_finite_step,
            summary.smallest,  # NaN left out; SQLite keeps the infinities as REAL
            summary.largest,
            1,
        )
        return row, _Summarized(summary, steps)

    def _write_captured(
        self, connection: sqlite3.Connection, seq_base: int, naming: ChunkNaming, groups: list[SeriesPoints]
    ) -> None:
        """All captured groups in a few multi-row statements (see `SeriesCache`)."""
        ids = self._ids.ids
        rows = [self._series_row(group, seq_base) for group in each_making_way(groups)]
        known = [row for group, (row, _) in zip(groups, rows, strict=True) if group.identity in ids]
        new = [row for group, (row, _) in zip(groups, rows, strict=True) if group.identity not in ids]
        for sql, parameters in _statements(_UPSERT_SERIES_HEAD, known, _UPSERT_SERIES_TAIL):
            connection.execute(sql, parameters)
        returning = f"{_UPSERT_SERIES_TAIL} RETURNING series_id, {_SERIES_COLUMNS}"
        for sql, parameters in _statements(_UPSERT_SERIES_HEAD, new, returning):
            # RETURNING gives rows in no promised order: each names its series.
            for series_id, *identity in connection.execute(sql, parameters).fetchall():
                ids[SeriesIdentity(*identity)] = series_id
        chunks = [
            _chunk_row(group, ids[group.identity], seq_base, naming, summary)
            for group, (_, summary) in each_making_way(zip(groups, rows, strict=True))
        ]
        for sql, parameters in _statements(_INSERT_CHUNKS_HEAD, chunks):
            connection.execute(sql, parameters)

    @staticmethod
    def _write_explicit(connection: sqlite3.Connection, seq_base: int, group: SeriesPoints) -> None:
        """A hand-written or replayed group: its points keep their own refs and timestamps."""
        row, summary = MetricChunkWriter._series_row(group, seq_base)
        (series_id,) = connection.execute(_UPSERT_SERIES, row).fetchone()
        connection.execute(_INSERT_CHUNK, _chunk_row(group, series_id, seq_base, None, summary))
        explicit = group.explicit
        assert explicit is not None
        connection.executemany(
            "INSERT INTO explicit_metric_refs (record_ref, series_id) VALUES (?, ?)",
            [(ref, series_id) for ref in explicit["refs"]],
        )


class _Summarized(NamedTuple):
    summary: Summarized
    steps: bytes  # the encoded steps column


def _chunk_row(
    group: SeriesPoints, series_id: int, seq_base: int, naming: ChunkNaming | None, summarized: _Summarized
) -> tuple[Any, ...]:
    """A metric_chunks row: captured points are named by the writer's naming; explicit ones
    (`naming` None) carry their own refs and timestamps. `summary` is what charts read (schema 6)."""
    explicit = group.explicit
    return (
        series_id,
        seq_base,
        len(group.positions),
        encode_column(POSITION_TYPE, group.positions),
        encode_column("q", group.observed) if explicit is None else None,
        encode_column("d" if group.identity.value_type == "float64" else "q", group.values),
        summarized.steps,
        None if naming is None else record_id_prefix(group.identity.execution_id, naming.id_prefix),
        None if naming is None else naming.first,
        None if naming is None else naming.recorded_ns,
        None if explicit is None else orjson.dumps(explicit).decode(),
        CODEC_PER_COLUMN,
        summarized.summary.blob,
    )
