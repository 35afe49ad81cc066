"""The store's write API for live capture: scopes, records, metric columns and artifact manifests,
one transaction per batch.

The capture side (its store sink) turns its batches into calls of `IngestBatch`;
this module knows nothing of how capture queues or encodes them.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contexta._liveness import owners_alive
from contexta.contract._refs import new_execution_id
from contexta.contract._timestamps import instant_key
from contexta.errors import CaptureWarning, StoreError
from contexta.store._chunk_codec import load_compressor
from contexta.store._database import RECREATED, RECREATED_ELSEWHERE, StoreDatabase
from contexta.store._executions import ExecutionResolver, latest_execution_id
from contexta.store._metric_chunks import ChunkNaming, SeriesIdentity, SeriesIds, SeriesPoints
from contexta.store._records import RecordRows
from contexta.store._recovery import owner_alive
from contexta.store._rows import dumps_or_none
from contexta.store._tables import TABLE_FOR_MODEL, TABLES

__all__ = ["IngestBatch", "StoreIngest"]

_RUN_COLUMNS = (
    "execution_id, run_ref, project_ref, name, display_name, status, started_at, ended_at, description, "
    "dataset_ref, "
    "code_revision, tags, metadata, config_snapshot, owner_pid, owner_host, owner_lock, started_key, "
    "end_reason, failure"
)
# A captured run row: inserted when an execution opens; a resumed execution reopens (the arguments
# its resume gave replace the earlier ones, the others stay) and takes a new owner; a close sets the
# ending. The start never moves: it is when the execution began. Two guards (the last parameters):
# an opening that is not a resume never reopens an execution that ended (a batch replayed from the
# outbox after the close), and a close leaves an execution open while another process still
# captures into it (it was resumed there).
_RUN_WIDTH = len(_RUN_COLUMNS.split(", "))
_KEEP = f"?{_RUN_WIDTH + 1}"  # the guard: keep the stored status and ending
_PUT_RUN = (
    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * _RUN_WIDTH)}) "
    "ON CONFLICT (execution_id) DO UPDATE SET "
    f"status = CASE WHEN {_KEEP} THEN status ELSE excluded.status END, "
    f"ended_at = CASE WHEN {_KEEP} THEN ended_at ELSE excluded.ended_at END, "
    f"end_reason = CASE WHEN {_KEEP} THEN end_reason ELSE excluded.end_reason END, "
    f"failure = CASE WHEN {_KEEP} THEN failure ELSE excluded.failure END, "
    # A name typed now for an execution stored without one (by a previous version) is kept.
    "display_name = coalesce(display_name, excluded.display_name), "
    "description = coalesce(excluded.description, description), "
    "dataset_ref = coalesce(excluded.dataset_ref, dataset_ref), "
    "code_revision = coalesce(excluded.code_revision, code_revision), "
    # Tags edited after capture (`tag_edits`, see _schema.py) stay applied over the captured ones.
    "tags = CASE WHEN excluded.tags IS NULL THEN tags WHEN tag_edits IS NULL THEN excluded.tags "
    "ELSE json_patch(excluded.tags, tag_edits) END, metadata = coalesce(excluded.metadata, metadata), "
    "config_snapshot = coalesce(excluded.config_snapshot, config_snapshot), "
    f"owner_pid = CASE WHEN excluded.status = 'open' AND NOT {_KEEP} THEN excluded.owner_pid "
    "ELSE owner_pid END, "
    f"owner_host = CASE WHEN excluded.status = 'open' AND NOT {_KEEP} THEN excluded.owner_host "
    "ELSE owner_host END, "
    f"owner_lock = CASE WHEN excluded.status = 'open' AND NOT {_KEEP} THEN excluded.owner_lock "
    "ELSE owner_lock END"
)


class IngestBatch:
    """One batch of captured history, written in one transaction (see `StoreIngest.write`): the
    calls name each item by its position in the batch, which is its place in capture order."""

    def __init__(self, ingest: StoreIngest, connection: sqlite3.Connection, count: int):
        self._ingest = ingest
        self._connection = connection
        self._execution_of = ExecutionResolver(connection, ingest.aliases)
        self._records = RecordRows(connection, count, self._execution_of, ingest.series_ids)
        self.scopes: list[tuple[str, dict[str, Any]]] = []  # scope documents opened or closed
        # How the points added through `series` are named; the capture side sets it.
        self.naming: ChunkNaming | None = None

    def put_scope(self, payload_type: str, document: dict[str, Any]) -> None:
        """A run, stage, batch, sample, operation or deployment document (`payload_type` is its
        contract model's name), as it opened, closed or changed."""
        if "status" in document:
            self.scopes.append((payload_type, document))
        if payload_type == "Run":
            self._ingest.put_run(self._connection, document)
            self._execution_of.forget()
        else:
            self._ingest.put_context(self._connection, payload_type, document, self._execution_of)

    def put_record(self, position: int, document: dict[str, Any]) -> None:
        """A record given as its document (`{"envelope": ..., "payload": ...}`), kept exactly."""
        self._records.add(position, document)

    def series(self, identity: SeriesIdentity) -> SeriesPoints:
        """The columns captured points of one series are appended to (see `ChunkNaming`)."""
        return self._records.metrics.series(identity)

    def put_artifact(self, manifest: dict[str, Any], *, binding_status: str, source_exists: bool) -> None:
        """An artifact manifest document, as registered."""
        execution = self._execution_of(
            manifest["run_ref"], manifest.get("execution_id"), manifest.get("created_at")
        )
        TABLES["artifacts"].upsert(
            self._connection,
            {**manifest, "execution_id": execution},
            binding_status=binding_status,
            source_exists=int(source_exists),
        )

    def finish(self) -> None:
        """Write the records and metric points added (scopes and artifacts are written as put)."""
        self._records.write(self._connection, self.naming)


class StoreIngest:
    """Makes captured history queryable the moment its batch commits.

    Runs, stages, batches, samples, operations and deployments are upserted as they open and close,
    each within its run's execution (see `_schema.py`); metrics go into columnar chunks (one per series
    per batch), other records into rows; artifact manifests go to the artifact index. Each batch
    reserves its range of capture-order numbers, so a point's place is its batch's first number plus
    its position in the batch.

    The store file may be deleted, renamed away or replaced while a run captures (a cleanup script,
    `rm -r .contexta/metadata`, a restored backup, `contexta repair`). Before and after each batch
    this checks that the path still names the file it writes; when it does not, it follows the
    path (`StoreDatabase.follow_moved_file`): a deleted store is created anew, another usable store
    put in its place is written into, and either way the scopes this process has open are written
    there again first, so the runs being captured are listed with what they capture from then on,
    and a `CaptureWarning` says what happened and that `contexta repair` brings back the rest from
    the capture log. A file there that is not a usable store fails the batch (the caller parks it).
    A batch that committed into a file moved during its commit is written again, so a batch counted
    as written is in the store the path names.
    """

    def __init__(
        self,
        database: StoreDatabase,
        *,
        live_dir: Path | None = None,
        warn_open_elsewhere: bool = True,
    ):
        self.database = database
        self._host = _hostname()
        self._live_dir = live_dir  # where capturing processes hold their owner locks
        self._warn_open_elsewhere = warn_open_elsewhere  # off when replaying history (repair)
        self.series_ids = SeriesIds()
        load_compressor()  # here, not at the first batch (see `_chunk_codec.py`)
        self._warned: set[str] = set()
        # Execution ids a replayed log uses for executions this store holds under other ids.
        self.aliases: dict[str, str] = {}
        # The last document of each scope this process has open, to write again into a store file
        # created (or put) in place of the one it was writing: (payload type, ref, execution) -> it.
        self._open_scopes: dict[tuple[str, str, str | None], dict[str, Any]] = {}
        self._rewrite_open_scopes = False
        self._pid = os.getpid()

    # Batches written again because the store file moved while they committed, before giving up.
    _MAX_FOLLOWS = 3

    def write(self, count: int, fill: Callable[[IngestBatch], None], *, batch_id: str | None = None) -> None:
        """Write a batch of `count` items in one transaction: `fill` puts them into the `IngestBatch`
        it is given (and is called again if the store file moved meanwhile). `batch_id` names a batch
        replayed from the outbox, so each of them is stored once."""
        if self._pid != os.getpid():  # a forked child: the scopes it has open are its own
            self._pid = os.getpid()
            self._open_scopes = {}
            self._rewrite_open_scopes = False
        try:
            for _ in range(self._MAX_FOLLOWS):
                self._follow_the_file()
                opened_or_closed = self._write(count, fill, batch_id)
                if not self.database.file_moved():
                    self._remember_open_scopes(opened_or_closed)
                    return
            raise StoreError(
                f"the store file {self.database.path} kept moving while a batch was written",
                code="store_file_moving",
            )
        except BaseException:
            self.series_ids.clear()  # rolled back: ids it learned in this batch may name nothing
            raise

    def _follow_the_file(self) -> None:
        """Before a batch: if the store file was deleted or replaced, write into the one there now."""
        if not self.database.file_moved():
            return
        self.series_ids.clear()  # series ids of the file that is gone
        self._rewrite_open_scopes = True  # also once a file that cannot be used now is fixed
        outcome = self.database.follow_moved_file()
        path = self.database.path
        if outcome in (RECREATED, RECREATED_ELSEWHERE):
            creator = (
                "a new store was created there"
                if outcome == RECREATED
                else "another process created a new store there"
            )
            text = (
                f"the store file {path} was deleted while this process captured into it; {creator}, "
                "holding the runs this process has open and what it captures from now on"
            )
        else:
            text = (
                f"the store file {path} was replaced by another store while this process captured; this "
                "process now writes into that one (the runs it has open are written there again)"
            )
        warnings.warn(
            f"contexta: {text}. What the store held before is in the capture log: `contexta repair` "
            "rebuilds the store from it, once no process captures into the workspace.",
            CaptureWarning,
            stacklevel=2,
        )

    def _remember_open_scopes(self, documents: list[tuple[str, dict[str, Any]]]) -> None:
        for payload_type, document in documents:
            key = (payload_type, _scope_ref(document), document.get("execution_id"))
            if document.get("status") == "open":
                self._open_scopes.pop(key, None)  # a reopening (resume) moves to the end
                self._open_scopes[key] = document
            else:
                self._open_scopes.pop(key, None)

    def _write_open_scopes(self, connection: sqlite3.Connection) -> None:
        """Into a store created or put in place of the moved one: the scopes this process has open,
        runs first, so what the batch holds belongs to runs the store lists."""
        documents = sorted(self._open_scopes.items(), key=lambda item: item[0][0] != "Run")
        execution_of = ExecutionResolver(connection)
        for (payload_type, _, _), document in documents:
            if payload_type == "Run":
                self.put_run(connection, {**document, "resumed": True})  # no "open elsewhere" warning
                execution_of.forget()
            else:
                self.put_context(connection, payload_type, document, execution_of)

    def _write(
        self, count: int, fill: Callable[[IngestBatch], None], batch_id: str | None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Write one batch in one transaction; returns the scope documents it held, opened or closed."""
        with self.database.transaction() as connection:
            self.series_ids.use(connection)
            if self._rewrite_open_scopes:
                self._write_open_scopes(connection)
            if batch_id is not None and not self._first_delivery(connection, batch_id):
                self._rewrite_open_scopes = False
                return []
            batch = IngestBatch(self, connection, count)
            fill(batch)
            batch.finish()
        self._rewrite_open_scopes = False
        return batch.scopes

    @staticmethod
    def _first_delivery(connection: sqlite3.Connection, batch_id: str) -> bool:
        """Mark a replayed batch delivered; False if this store already has it."""
        cursor = connection.execute(
            "INSERT OR IGNORE INTO delivered_batches (batch_id, delivered_at) "
            "VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            (batch_id,),
        )
        return cursor.rowcount == 1

    @staticmethod
    def _ensure_project(
        connection: sqlite3.Connection, project_ref: str, created_at: str, display_name: str | None = None
    ) -> None:
        connection.execute(
            # A name typed now for a project stored without one (by a previous version) is kept.
            "INSERT INTO projects (project_ref, name, display_name, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (project_ref) DO UPDATE SET "
            "display_name = coalesce(display_name, excluded.display_name)",
            (project_ref, project_ref.partition(":")[2], display_name, created_at),
        )

    def put_context(
        self,
        connection: sqlite3.Connection,
        payload_type: str,
        document: dict[str, Any],
        execution_of: ExecutionResolver,
    ) -> None:
        table = TABLE_FOR_MODEL.get(payload_type)
        if table is None:
            return
        if payload_type == "DeploymentExecution":
            self._ensure_project(connection, document["project_ref"], document["started_at"])
            if document.get("run_ref") is not None:
                execution = execution_of(
                    document["run_ref"], document.get("run_execution_id"), document.get("started_at")
                )
                document = {**document, "run_execution_id": execution}
        elif "execution_id" in table.key and document.get("execution_id") in self.aliases:
            document = {**document, "execution_id": self.aliases[document["execution_id"]]}
        elif "execution_id" in table.key and document.get("execution_id") is None:
            at = document.get("started_at") or document.get("observed_at") or document.get("captured_at")
            document = {**document, "execution_id": execution_of(document.get("run_ref"), None, at)}
        table.upsert(connection, document)

    def put_run(self, connection: sqlite3.Connection, document: dict[str, Any]) -> None:
        self._ensure_project(
            connection, document["project_ref"], document["started_at"], document.get("project_name")
        )
        run_ref, resumed = document["run_ref"], bool(document.get("resumed"))
        execution_id = self._execution_of_run_document(connection, document)
        opening = document["status"] == "open"
        if opening and not resumed and self._warn_open_elsewhere:
            self._warn_if_open_elsewhere(connection, run_ref, execution_id)
        if opening:
            stored = connection.execute(
                "SELECT status FROM runs WHERE execution_id = ?", (execution_id,)
            ).fetchone()
            keep = stored is not None and stored[0] != "open" and not resumed
        else:
            keep = self._captured_elsewhere(execution_id)
        connection.execute(
            _PUT_RUN,
            (
                execution_id,
                document["run_ref"],
                document["project_ref"],
                document["name"],
                document.get("display_name"),
                document["status"],
                document["started_at"],
                document.get("ended_at"),
                document.get("description"),
                document.get("dataset_ref"),
                document.get("code_revision"),
                dumps_or_none(document.get("tags")),
                dumps_or_none(document.get("metadata")),
                dumps_or_none(document.get("config_snapshot")),
                document.get("owner_pid"),
                document.get("owner_host"),
                int(bool(document.get("owner_lock"))),
                instant_key(document["started_at"]),
                document.get("end_reason"),
                dumps_or_none(document.get("failure")),
                bool(keep),  # a boolean, as PostgreSQL wants for CASE WHEN
            ),
        )

    def _execution_of_run_document(self, connection: sqlite3.Connection, document: dict[str, Any]) -> str:
        """The execution a run document is of. A document from a log written before executions names
        none: each opening (but a resume) starts a new execution, the rest belongs to the latest. A
        resume naming an execution this store does not hold (one a migrated store knew by the id it
        gave it) joins the latest execution of its run, and its id is kept as an alias of that one."""
        run_ref, claimed = document["run_ref"], document.get("execution_id")
        if claimed is not None:
            claimed = self.aliases.get(claimed, claimed)
        if claimed is not None and not document.get("resumed"):
            return str(claimed)
        if (
            claimed is not None
            and connection.execute("SELECT 1 FROM runs WHERE execution_id = ?", (claimed,)).fetchone()
        ):
            return str(claimed)
        latest = latest_execution_id(connection, run_ref)
        if latest is None or (document["status"] == "open" and not document.get("resumed")):
            return str(claimed) if claimed is not None else new_execution_id()
        if claimed is not None:
            self.aliases[claimed] = latest
        return latest

    def _captured_elsewhere(self, execution_id: str) -> bool:
        """True while another process still holds an owner lock of the execution (it resumed it):
        this process's close must not end it under that process."""
        if self._live_dir is None:
            return False
        return owners_alive(self._live_dir, execution_id, exclude_pid=os.getpid()) is True

    def _warn_if_open_elsewhere(
        self, connection: sqlite3.Connection, run_ref: str, execution_id: str
    ) -> None:
        """Another execution of the same name is still being captured: say so, naming its process.
        (This one is kept apart from it; the warning is so two jobs that collide are noticed.)"""
        others = connection.execute(
            "SELECT execution_id, owner_pid, owner_host, started_at FROM runs "
            "WHERE run_ref = ? AND status = 'open' AND execution_id != ?",
            (run_ref, execution_id),
        ).fetchall()
        for other_id, pid, host, started_at in others:
            if other_id in self._warned or (pid == os.getpid() and host == self._host):
                continue  # warned already, or open in this process (which warned when it opened)
            if owner_alive(self._live_dir, other_id, pid, host, self._host) is False:
                continue
            self._warned.add(other_id)
            warnings.warn(
                f"contexta: {run_ref} is also being captured by process {pid} on host {host} (its "
                f"execution {other_id} started {started_at}); this process records its own execution "
                f"{execution_id}, and the two are never mixed. Give concurrent jobs different names, or "
                "open with resume=True to add to the other one.",
                CaptureWarning,
                stacklevel=2,
            )


def _scope_ref(document: dict[str, Any]) -> str:
    """The ref of the scope a context document describes (its first field ending in `_ref` that
    names it: run_ref for a run, stage_execution_ref for a stage, ...)."""
    for field in (
        "sample_observation_ref",
        "batch_execution_ref",
        "operation_ref",
        "stage_execution_ref",
        "deployment_execution_ref",
        "run_ref",
    ):
        value = document.get(field)
        if value is not None:
            return str(value)
    return ""


def _hostname() -> str:
    # socket imported here: a few milliseconds every `import contexta` would pay for one call.
    import socket

    return socket.gethostname()
