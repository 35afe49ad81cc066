"""The store sink: live capture written into the canonical store, one transaction per batch."""

from __future__ import annotations

import os
import socket
import sqlite3
from typing import Any

from contexta.capture._batch import CaptureBatch
from contexta.store._database import StoreDatabase
from contexta.store._records import insert_record_rows
from contexta.store._rows import entry_row
from contexta.store._tables import TABLE_FOR_MODEL, TABLES

__all__ = ["StoreSink"]

# Everything an execution of a run owns; re-running a run name replaces these.
_RUN_OWNED_TABLES = ("stages", "batches", "samples", "operations", "records", "artifacts", "environments")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StoreSink:
    """Makes captured runs queryable the moment their batch commits.

    Runs, stages, batches, samples, operations and deployments are upserted as they open and close;
    records go in with one bulk statement per batch (a record ref already stored is skipped, so a
    replayed batch lands once); artifact manifests go to the artifact index.
    """

    def __init__(self, database: StoreDatabase, *, name: str = "canonical-store"):
        self.name = name
        self.database = database
        self._host = socket.gethostname()

    def write(self, batch: CaptureBatch) -> None:
        rows: list[list[Any]] = []
        with self.database.transaction() as connection:
            if batch.batch_id is not None and not self._first_delivery(connection, batch.batch_id):
                return
            for entry in batch:
                family = entry.family
                if family == "RECORD":
                    rows.append(entry_row(entry))
                elif family == "CONTEXT":
                    if entry.payload_type == "Run":
                        # A replaced run deletes its old records: insert what came before it first.
                        insert_record_rows(connection, rows)
                        rows = []
                        self._put_run(connection, entry.payload)
                    else:
                        self._put_context(connection, entry.payload_type, entry.payload)
                elif family == "ARTIFACT":
                    payload = entry.payload
                    TABLES["artifacts"].upsert(
                        connection,
                        payload["manifest"],
                        binding_status=payload["binding_status"],
                        source_exists=int(bool(payload["source"].get("exists"))),
                    )
            insert_record_rows(connection, rows)

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
                and _process_alive(owner_pid)
            ):
                return  # another live process is capturing this run (a rank, a worker): join it
            for table in _RUN_OWNED_TABLES:
                connection.execute(f"DELETE FROM {table} WHERE run_ref = ?", (run_ref,))
        TABLES["runs"].upsert(connection, document, owner_pid=os.getpid(), owner_host=self._host)

    def flush(self) -> None:
        """Each batch is committed when written; nothing is held back."""

    def close(self) -> None:
        """The database belongs to the Contexta, which closes it after the writer stops."""
