"""The record store: metrics, events, spans and degraded markers, in capture order."""

from __future__ import annotations

import bisect
import sqlite3
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from contexta.contract._records import DegradedRecord, MetricRecord, StructuredEventRecord, TraceSpanRecord
from contexta.errors import ValidationError
from contexta.store._database import StoreDatabase
from contexta.store._executions import ExecutionResolver, latest_execution_id
from contexta.store._metric_chunks import ChunkNaming, MetricChunkWriter, SeriesIds, reserve_seq
from contexta.store._metric_points import MetricColumns, load_columns, select_series
from contexta.store._rows import RECORD_COLUMNS, AnyRecord, record_from_row, record_row_from_payload
from contexta.store._sql import where_equal

__all__ = [
    "AppendResult",
    "RecordRows",
    "RecordStore",
    "RecordView",
    "RejectedRecord",
    "insert_record_rows",
    "record_view",
    "store_record_documents",
]

_RECORD_TYPES = (MetricRecord, StructuredEventRecord, TraceSpanRecord, DegradedRecord)
_INSERT = (
    f"INSERT INTO records ({RECORD_COLUMNS}) VALUES ({', '.join('?' * len(RECORD_COLUMNS.split(', ')))})"
)


def insert_record_rows(connection: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Insert record rows (RECORD_COLUMNS order, seq included)."""
    if rows:
        connection.executemany(_INSERT, rows)


class RecordRows:
    """The records of one write transaction, collected in order and written together: metrics into
    chunks (see `_metric_chunks.py`), other records into rows. A record document (`{"envelope":
    ..., "payload": ...}`, refs and timestamps kept exactly) belongs to the execution its ref names,
    else (written by hand) to the execution of its run that had started by its `observed_at`."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        count: int,
        execution_of: ExecutionResolver,
        series_ids: SeriesIds | None = None,
    ):
        self.seq_base = reserve_seq(connection, count)  # this transaction's capture-order numbers
        self.metrics = MetricChunkWriter(series_ids, execution_of)
        self._execution_of = execution_of
        self._rows: list[list[Any]] = []

    def add(self, position: int, document: dict[str, Any]) -> None:
        """The record at `position` (from `seq_base`) of the transaction's numbers."""
        if document["envelope"]["record_type"] == "metric":
            self.metrics.add_record(position, document)
        else:
            row = record_row_from_payload(document, self.seq_base + position)
            row[-2] = self._execution_of(row[3], row[-2], row[8])  # run, claimed execution, observed_at
            self._rows.append(row)

    def write(self, connection: sqlite3.Connection, naming: ChunkNaming | None = None) -> None:
        """Write what was added; `naming` names the points captured live (see `ChunkNaming`)."""
        self.metrics.write(connection, self.seq_base, naming)
        insert_record_rows(connection, self._rows)
        self._rows = []


def store_record_documents(connection: sqlite3.Connection, documents: Sequence[dict[str, Any]]) -> None:
    """Store records given as documents, in this order, as they are; the caller has checked them."""
    if not documents:
        return
    records = RecordRows(connection, len(documents), ExecutionResolver(connection))
    for position, document in enumerate(documents):
        records.add(position, document)
    records.write(connection)


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    record_ref: str
    reason: str


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What `append` / `append_many` stored, and what it refused and why."""

    accepted: tuple[str, ...]
    rejected: tuple[RejectedRecord, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.rejected


class RecordStore:
    """`ctx.record_store`: append records by hand (seed 004) or scan what capture stored."""

    def __init__(self, database: StoreDatabase):
        self._database = database

    def append(self, record: AnyRecord) -> AppendResult:
        return self.append_many([record])

    def append_many(self, records: Iterable[AnyRecord]) -> AppendResult:
        """Store records whose run (or deployment) is stored; refuse the others with a reason."""
        accepted: list[AnyRecord] = []
        rejected: list[RejectedRecord] = []
        seen: set[str] = set()
        with self._database.transaction() as connection:
            for record in records:
                if not isinstance(record, _RECORD_TYPES):
                    raise ValidationError(
                        f"append takes metric, event, span or degraded records; got {type(record).__name__}",
                        code="record_type_invalid",
                    )
                envelope = record.envelope
                reason = self._missing_owner(connection, envelope.run_ref, envelope.deployment_execution_ref)
                if reason is None and self._stored(connection, record):
                    reason = "a record with this ref is already stored"
                if reason is None and envelope.record_ref in seen:
                    reason = "a record with this ref appears earlier in the same call"
                if reason is not None:
                    rejected.append(RejectedRecord(envelope.record_ref, reason))
                    continue
                seen.add(envelope.record_ref)
                accepted.append(record)
            store_record_documents(connection, [record.to_dict(omit_none=True) for record in accepted])
        return AppendResult(tuple(record.envelope.record_ref for record in accepted), tuple(rejected))

    @staticmethod
    def _stored(connection: sqlite3.Connection, record: AnyRecord) -> bool:
        ref = record.envelope.record_ref
        if isinstance(record, MetricRecord):
            sql = "SELECT 1 FROM explicit_metric_refs WHERE record_ref = ?"
        else:
            sql = "SELECT 1 FROM records WHERE record_ref = ?"
        return connection.execute(sql, (ref,)).fetchone() is not None

    @staticmethod
    def _missing_owner(
        connection: sqlite3.Connection, run_ref: str | None, deployment_ref: str | None
    ) -> str | None:
        if run_ref is not None:
            if connection.execute("SELECT 1 FROM runs WHERE run_ref = ?", (run_ref,)).fetchone() is None:
                return f"run {run_ref} is not in the store; put the run first"
        elif (
            deployment_ref is not None
            and connection.execute(
                "SELECT 1 FROM deployments WHERE deployment_ref = ?", (deployment_ref,)
            ).fetchone()
            is None
        ):
            return f"deployment {deployment_ref} is not in the store; put the deployment first"
        return None

    def scan(
        self,
        *,
        run: str | None = None,
        stage: str | None = None,
        key: str | None = None,
        record_type: str | None = None,
        limit: int | None = None,
    ) -> list[AnyRecord]:
        """Stored records matching every given filter (refs; `run` means its latest execution), in
        capture order."""
        with self._database.read() as connection:
            execution = None if run is None else latest_execution_id(connection, run) or "-"
            found = record_view(
                connection, execution_id=execution, stage=stage, key=key, record_type=record_type
            )
        return list(found) if limit is None else found[: int(limit)]

    def count(self, *, run: str | None = None) -> int:
        """How many records the store holds (of the latest execution of `run`, when given)."""
        with self._database.read() as connection:
            execution = None if run is None else latest_execution_id(connection, run) or "-"
            where, parameters = ("", ()) if execution is None else (" WHERE execution_id = ?", (execution,))
            (rows,) = connection.execute(f"SELECT count(*) FROM records{where}", parameters).fetchone()
            (points,) = connection.execute(
                f"SELECT total(point_count) FROM metric_series{where}", parameters
            ).fetchone()
            return int(rows) + int(points)


class RecordView(Sequence[AnyRecord]):
    """Stored records in capture order, each built (and validated) when it is read: a run of a million
    metric points is a few arrays until someone walks it."""

    __slots__ = ("_columns", "_row_at", "_rows")

    def __init__(self, rows: list[tuple[Any, ...]], columns: MetricColumns | None):
        self._rows = rows  # record rows (RECORD_COLUMNS, seq first) in seq order
        self._columns = columns
        seqs = columns.seqs if columns is not None else array("q")
        # Where each row falls among all records: its rank plus the points captured before it.
        self._row_at = [rank + bisect.bisect_left(seqs, row[0]) for rank, row in enumerate(rows)]

    def __len__(self) -> int:
        return len(self._rows) + (len(self._columns) if self._columns is not None else 0)

    def _locate(self, index: int) -> tuple[bool, int]:
        """(is a row, index into the rows or the metric columns) of record `index`."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("record index out of range")
        rows_before = bisect.bisect_left(self._row_at, index)
        if rows_before < len(self._row_at) and self._row_at[rows_before] == index:
            return True, rows_before
        return False, index - rows_before

    @overload
    def __getitem__(self, index: int) -> AnyRecord: ...
    @overload
    def __getitem__(self, index: slice) -> list[AnyRecord]: ...
    def __getitem__(self, index: int | slice) -> AnyRecord | list[AnyRecord]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        is_row, position = self._locate(index)
        if is_row:
            return record_from_row(self._rows[position])
        assert self._columns is not None
        return self._columns.record(position)

    def seq(self, index: int) -> int:
        """The capture-order number of record `index`."""
        is_row, position = self._locate(index)
        if is_row:
            return int(self._rows[position][0])
        assert self._columns is not None
        return self._columns.seqs[position]

    def __iter__(self) -> Iterator[AnyRecord]:
        return (self[index] for index in range(len(self)))

    def __repr__(self) -> str:
        return f"<RecordView of {len(self)} records>"


def record_view(
    connection: sqlite3.Connection,
    *,
    execution_id: str | None = None,
    stage: str | None = None,
    key: str | None = None,
    record_type: str | None = None,
) -> RecordView:
    """Every stored record matching the filters (a run execution, refs, a key), in capture order."""
    columns = None
    if record_type in (None, "metric"):
        series = select_series(connection, execution_id=execution_id, key=key, stage_ref=stage)
        columns = load_columns(connection, series) if series else None
    rows: list[tuple[Any, ...]] = []
    if record_type != "metric":
        where, parameters = where_equal(
            (
                ("execution_id", execution_id),
                ("stage_ref", stage),
                ("key", key),
                ("record_type", record_type),
            )
        )
        rows = connection.execute(
            f"SELECT {RECORD_COLUMNS} FROM records{where} ORDER BY seq", parameters
        ).fetchall()
    return RecordView(rows, columns)
