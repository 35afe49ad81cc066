"""The store sink: live capture written into the canonical store, one transaction per batch."""

from __future__ import annotations

import os
import socket
import sqlite3
from typing import Any

from contexta.capture._batch import CaptureBatch
from contexta.store._database import StoreDatabase
from contexta.store._metric_chunks import MetricChunkWriter, SeriesCache, reserve_seq
from contexta.store._records import delete_run_contents, insert_record_rows
from contexta.store._recovery import process_alive
from contexta.store._rows import record_row_from_payload
from contexta.store._tables import TABLE_FOR_MODEL, TABLES

__all__ = ["StoreSink"]


class StoreSink:
    """Makes captured runs queryable the moment their batch commits.

    Runs, stages, batches, samples, operations and deployments are upserted as they open and close;
    metrics go into columnar chunks (one per series per batch), other records into rows; artifact
    manifests go to the artifact index. Each batch reserves its range of capture-order numbers, so a
    point's place is its batch's first number plus its position in the batch.
    """

    # Write a batch only once the capture log has it, so after a crash the store never holds records
    # the log lacks (the log is what `repair` rebuilds the store from).
    after_capture_log = True

    def __init__(self, database: StoreDatabase, *, name: str = "canonical-store"):
        self.name = name
        self.database = database
        self._host = socket.gethostname()
        self._series = SeriesCache()

    def write(self, batch: CaptureBatch) -> None:
        try:
            self._write(batch)
        except BaseException:
            self._series.clear()  # rolled back: ids it learned in this batch may name nothing
            raise

    def _write(self, batch: CaptureBatch) -> None:
        items = batch.items
        with self.database.transaction() as connection:
            self._series.use(connection)
            if batch.batch_id is not None and not self._first_delivery(connection, batch.batch_id):
                return
            seq_base = reserve_seq(connection, len(items))
            metrics = MetricChunkWriter(self._series)
            rows: list[list[Any]] = []
            written = 0  # items before this position are already in `metrics` or `rows`

            def store_pending(stop: int) -> None:
                nonlocal rows, written
                metrics.add_captured(items, written, stop)
                metrics.write(connection, seq_base, batch.numbering)
                insert_record_rows(connection, rows)
                rows, written = [], stop

            for position, item in enumerate(items):
                if type(item) is tuple:
                    continue  # a raw metric: packed with its neighbours by `store_pending`
                family = item.family
                if family == "RECORD":
                    if item.payload_type == "MetricRecord":
                        metrics.add_record(position, item.payload)
                    else:
                        rows.append(record_row_from_payload(item.payload, seq_base + position))
                elif family == "CONTEXT":
                    if item.payload_type == "Run":
                        # A replaced run deletes its old records: store what came before it first.
                        store_pending(position)
                        self._put_run(connection, item.payload)
                    else:
                        self._put_context(connection, item.payload_type, item.payload)
                elif family == "ARTIFACT":
                    payload = item.payload
                    TABLES["artifacts"].upsert(
                        connection,
                        payload["manifest"],
                        binding_status=payload["binding_status"],
                        source_exists=int(bool(payload["source"].get("exists"))),
                    )
            store_pending(len(items))

    @staticmethod
    def _first_delivery(connection: sqlite3.Connection, batch_id: str) -> bool:
        """Mark a replayed batch delivered; False if this store already has it."""
        cursor = connection.execute(
            "INSERT OR IGNORE INTO delivered_batches (batch_id, delivered_at) "
            "VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            (batch_id,),
        )
        return cursor.rowcount == 1

    def _ensure_project(self, connection: sqlite3.Connection, project_ref: str, created_at: str) -> None:
        connection.execute(
            "INSERT OR IGNORE INTO projects (project_ref, name, created_at) VALUES (?, ?, ?)",
            (project_ref, project_ref.partition(":")[2], created_at),
        )

    def _put_context(
        self, connection: sqlite3.Connection, payload_type: str, document: dict[str, Any]
    ) -> None:
        if payload_type == "DeploymentExecution":
            self._ensure_project(connection, document["project_ref"], document["started_at"])
        table = TABLE_FOR_MODEL.get(payload_type)
        if table is not None:
            table.upsert(connection, document)

    def _put_run(self, connection: sqlite3.Connection, document: dict[str, Any]) -> None:
        run_ref = document["run_ref"]
        # Between a run's open and close no other process deletes its series (a live owner is joined,
        # not replaced), but across runs one may have: a run resumed here after another process ran
        # the name again must not reuse ids remembered from before.
        self._series.clear()
        self._ensure_project(connection, document["project_ref"], document["started_at"])
        if document["status"] != "open":
            TABLES["runs"].upsert(connection, document)
            return
        existing = connection.execute(
            "SELECT status, owner_pid, owner_host FROM runs WHERE run_ref = ?", (run_ref,)
        ).fetchone()
        if existing is not None and not document.get("resumed"):
            status, owner_pid, owner_host = existing
            if (
                status == "open"
                and owner_pid is not None
                and owner_pid != os.getpid()
                and owner_host == self._host
                and process_alive(owner_pid)
            ):
                return  # another live process is capturing this run (a rank, a worker): join it
            delete_run_contents(connection, run_ref)
        TABLES["runs"].upsert(
            connection, document, owner_pid=os.getpid(), owner_host=self._host, end_reason=None
        )

    def flush(self) -> None:
        """Each batch is committed when written; nothing is held back."""

    def close(self) -> None:
        """The database belongs to the Contexta, which closes it after the writer stops."""
