"""The record store: metrics, events, spans and degraded markers, in capture order."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from contexta.contract._records import DegradedRecord, MetricRecord, StructuredEventRecord, TraceSpanRecord
from contexta.errors import ValidationError
from contexta.store._database import StoreDatabase
from contexta.store._rows import INSERT_COLUMNS, RECORD_COLUMNS, AnyRecord, record_from_row, record_row

__all__ = ["AppendResult", "RecordStore", "RejectedRecord", "insert_record_rows"]

_RECORD_TYPES = (MetricRecord, StructuredEventRecord, TraceSpanRecord, DegradedRecord)
_COLUMN_COUNT = len(INSERT_COLUMNS.split(", "))
# One statement per batch: sqlite3 releases the GIL once for all its rows (not once per row or per
# few thousand rows), and the parsing and inserting happen in C while the training loop keeps running.
_BULK_INSERT = (
    f"INSERT INTO records ({INSERT_COLUMNS}) SELECT "
    + ", ".join(f"value ->> {index}" for index in range(_COLUMN_COUNT))
    + " FROM json_each(?)"
)


def insert_record_rows(connection: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> int:
    """Insert rows (INSERT_COLUMNS order); returns how many were inserted."""
    if not rows:
        return 0
    before = connection.total_changes
    connection.execute(_BULK_INSERT, (orjson.dumps(rows),))
    return connection.total_changes - before


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
        accepted: list[str] = []
        rejected: list[RejectedRecord] = []
        rows: list[list[Any]] = []
        seen: set[tuple[str | None, str]] = set()
        with self._database.transaction() as connection:
            for record in records:
                if not isinstance(record, _RECORD_TYPES):
                    raise ValidationError(
                        f"append takes metric, event, span or degraded records; got {type(record).__name__}",
                        code="record_type_invalid",
                    )
                envelope = record.envelope
                reason = self._missing_owner(connection, envelope.run_ref, envelope.deployment_execution_ref)
                if (
                    reason is None
                    and connection.execute(
                        "SELECT 1 FROM records WHERE record_ref = ?", (envelope.record_ref,)
                    ).fetchone()
                ):
                    reason = "a record with this ref is already stored"
                if reason is None and (envelope.run_ref, envelope.record_ref) in seen:
                    reason = "a record with this ref appears earlier in the same call"
                if reason is not None:
                    rejected.append(RejectedRecord(envelope.record_ref, reason))
                    continue
                seen.add((envelope.run_ref, envelope.record_ref))
                rows.append(record_row(record))
                accepted.append(envelope.record_ref)
            insert_record_rows(connection, rows)
        return AppendResult(tuple(accepted), tuple(rejected))

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
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = ""
        if limit is not None:
            tail = " LIMIT ?"
            parameters.append(int(limit))
        with self._database.read() as connection:
            rows = connection.execute(
                f"SELECT {RECORD_COLUMNS} FROM records {where} ORDER BY seq{tail}", parameters
            )
            return [record_from_row(row) for row in rows]

    def count(self, *, run: str | None = None) -> int:
        with self._database.read() as connection:
            if run is None:
                return int(connection.execute("SELECT count(*) FROM records").fetchone()[0])
            return int(
                connection.execute("SELECT count(*) FROM records WHERE run_ref = ?", (run,)).fetchone()[0]
            )
