"""The record store: metrics, events, spans and degraded markers, in capture order."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from contexta.contract._records import DegradedRecord, MetricRecord, StructuredEventRecord, TraceSpanRecord
from contexta.errors import ValidationError
from contexta.store._database import StoreDatabase
from contexta.store._metric_chunks import MetricChunkWriter, reserve_seq
from contexta.store._metric_points import metric_records, select_series
from contexta.store._rows import RECORD_COLUMNS, AnyRecord, record_from_row, record_row_from_payload

__all__ = [
    "AppendResult",
    "RecordStore",
    "RejectedRecord",
    "delete_run_contents",
    "insert_record_rows",
    "scan_records",
    "store_record_documents",
]

_RECORD_TYPES = (MetricRecord, StructuredEventRecord, TraceSpanRecord, DegradedRecord)
_INSERT = (
    f"INSERT INTO records ({RECORD_COLUMNS}) VALUES ({', '.join('?' * len(RECORD_COLUMNS.split(', ')))})"
)
# Everything an execution of a run owns besides its metrics; re-running a run name replaces these.
_RUN_OWNED_TABLES = ("stages", "batches", "samples", "operations", "records", "artifacts", "environments")


def insert_record_rows(connection: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Insert record rows (RECORD_COLUMNS order, seq included)."""
    if rows:
        connection.executemany(_INSERT, rows)


def store_record_documents(connection: sqlite3.Connection, documents: Sequence[dict[str, Any]]) -> None:
    """Store records given as `{"envelope": ..., "payload": ...}` documents, in this order, as they are
    (refs and timestamps kept exactly); the caller has checked them."""
    if not documents:
        return
    seq_base = reserve_seq(connection, len(documents))
    metrics = MetricChunkWriter()
    rows = []
    for position, document in enumerate(documents):
        if document["envelope"]["record_type"] == "metric":
            metrics.add_record(position, document)
        else:
            rows.append(record_row_from_payload(document, seq_base + position))
    metrics.write(connection, seq_base, None)
    insert_record_rows(connection, rows)


def delete_run_contents(connection: sqlite3.Connection, run_ref: str) -> None:
    """Remove what an earlier execution of `run_ref` stored (the run row itself stays)."""
    for table in _RUN_OWNED_TABLES:
        connection.execute(f"DELETE FROM {table} WHERE run_ref = ?", (run_ref,))
    series = "SELECT series_id FROM metric_series WHERE run_ref = ?"
    connection.execute(f"DELETE FROM metric_chunks WHERE series_id IN ({series})", (run_ref,))
    connection.execute(f"DELETE FROM explicit_metric_refs WHERE series_id IN ({series})", (run_ref,))
    connection.execute("DELETE FROM metric_series WHERE run_ref = ?", (run_ref,))


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
        """Stored records matching every given filter (refs), in capture order."""
        with self._database.read() as connection:
            found = scan_records(connection, run=run, stage=stage, key=key, record_type=record_type)
        return [record for _, record in (found if limit is None else found[: int(limit)])]

    def count(self, *, run: str | None = None) -> int:
        with self._database.read() as connection:
            where, parameters = ("", ()) if run is None else (" WHERE run_ref = ?", (run,))
            (rows,) = connection.execute(f"SELECT count(*) FROM records{where}", parameters).fetchone()
            (points,) = connection.execute(
                f"SELECT total(point_count) FROM metric_series{where}", parameters
            ).fetchone()
            return int(rows) + int(points)


def scan_records(
    connection: sqlite3.Connection,
    *,
    run: str | None = None,
    stage: str | None = None,
    key: str | None = None,
    record_type: str | None = None,
) -> list[tuple[int, AnyRecord]]:
    """(seq, record) for every stored record matching the filters, in capture order."""
    found: list[tuple[int, AnyRecord]] = []
    if record_type in (None, "metric"):
        found.extend(
            metric_records(connection, select_series(connection, run_ref=run, key=key, stage_ref=stage))
        )
    if record_type != "metric":
        clauses = []
        parameters: list[Any] = []
        for column, value in (
            ("run_ref", run),
            ("stage_ref", stage),
            ("key", key),
            ("record_type", record_type),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                parameters.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = connection.execute(f"SELECT {RECORD_COLUMNS} FROM records{where} ORDER BY seq", parameters)
        found.extend((row[0], record_from_row(row)) for row in rows)
    found.sort(key=lambda pair: pair[0])
    return found
