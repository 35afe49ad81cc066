"""Writing imported runs into a workspace: the capture log first, then the store, batch by batch.

The store is derived from the capture log (`contexta repair` rebuilds it from there), so an imported
run is written exactly as a captured one would be: capture-log lines of the SPEC §5 shape, carrying
the source's own timestamps (each point's `observed_at` and `recorded_at`, the run's start and end;
`captured_at` is the import's time, when the line entered this log),
appended by the workspace's `LocalJsonlSink` and then committed by a `StoreSink`, one transaction
per batch, as `contexta sync` replays a log. Nothing goes through the live capture facade, which
stamps the current time.

Idempotency. A run's execution id and every record ref derive from the source's run id, and the
run's metadata keeps `import.fingerprint`, a digest of everything read from the source run:
- stored with the same fingerprint and complete: skipped, nothing written (the second import of an
  unchanged source writes nothing, to the log or the store);
- stored with the same fingerprint but not complete (an import cut short): written again, each
  batch under a batch id the store records in the same transaction, so the batches it already has
  are skipped in the log and the store alike;
- stored with another fingerprint (the source changed since, e.g. a run that went on logging):
  reported as a conflict and left alone; `contexta delete RUN --yes` and importing again replaces it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import blake3
import orjson

from contexta._imports._model import ImportedRun, derived_component, execution_id_for, run_component
from contexta.capture import CaptureBatch, CapturedEntry, LocalJsonlSink, StoreSink, hash_file
from contexta.config import UnifiedConfig
from contexta.contract import (
    artifact_ref,
    encode_metric_value,
    model_from_dict,
    project_ref,
    run_ref,
    utc_now,
)
from contexta.errors import ValidationError
from contexta.store import StoreDatabase, journal_path, open_store_database, read_journal

__all__ = ["IMPORT_BATCH", "ImportReport", "ImportTarget", "check_project", "derived_project", "format_ns"]

IMPORT_BATCH = 8_192  # capture-log lines per batch (and per store transaction)
_PRODUCER = "contexta.import"
_SCHEMA_VERSION = "1.0"


def format_ns(epoch_ns: int) -> str:
    """A contract timestamp (`2026-01-02T03:04:05.123456Z`, microseconds) for epoch nanoseconds."""
    seconds, remainder = divmod(epoch_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{remainder // 1000:06d}Z"


@dataclass(slots=True)
class ImportReport:
    """What one import did."""

    source: str
    imported_runs: list[str] = field(default_factory=list)  # run refs written now
    skipped_runs: list[str] = field(default_factory=list)  # already imported, unchanged
    conflicting_runs: list[str] = field(default_factory=list)  # imported before, source changed since
    points: int = 0  # metric points written now
    artifacts: int = 0  # artifact files registered now
    torn_records: int = 0  # TensorBoard: a torn last record, skipped (as TensorBoard does)
    renamed_keys: dict[str, str] = field(default_factory=dict)  # source key -> stored key

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "imported_runs": self.imported_runs,
            "skipped_runs": self.skipped_runs,
            "conflicting_runs": self.conflicting_runs,
            "points": self.points,
            "artifacts": self.artifacts,
            "torn_records": self.torn_records,
            "renamed_keys": self.renamed_keys,
        }


Progress = Callable[[int], None]  # called with the number of metric points written so far


class ImportTarget:
    """The workspace imported runs are written into (its capture log and its store)."""

    def __init__(self, config: UnifiedConfig):
        layout = config.workspace
        layout.capture_dir.mkdir(parents=True, exist_ok=True)
        layout.store_file.parent.mkdir(parents=True, exist_ok=True)
        self.database: StoreDatabase = open_store_database(layout.store_file, config.store.url)
        with self.database.read():  # create or migrate the store now; a foreign file fails here
            pass
        capture = config.capture
        self._log = LocalJsonlSink(
            layout.capture_dir,
            durability=capture.durability,
            log_process=False,
            segment_bytes=capture.segment_bytes,
            segment_age_s=capture.segment_age_s,
            min_free_bytes=capture.min_free_bytes,
        )
        self._store = StoreSink(self.database, name="import", warn_open_elsewhere=False)
        self._deleted = _deleted_executions(self.database)

    def close(self) -> None:
        self._log.flush()
        self._log.close()
        self.database.close_all()

    def __enter__(self) -> ImportTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stored_import(self, execution_id: str) -> dict[str, Any] | None:
        """The stored run's `metadata.import` (with its `run_ref` beside it), or None when the store
        does not hold `execution_id`."""
        with self.database.read() as connection:
            row = connection.execute(
                "SELECT metadata, run_ref FROM runs WHERE execution_id = ?", (execution_id,)
            ).fetchone()
        if row is None:
            return None
        metadata = orjson.loads(row[0]) if row[0] else {}
        found = metadata.get("import") if isinstance(metadata, dict) else None
        return {**(found if isinstance(found, dict) else {}), "run_ref": row[1]}

    def _run_ref(self, run: ImportedRun, stored: dict[str, Any] | None) -> str:
        """The run's ref: the one it was stored under; else `run:<project>.<name>`, unless the store
        has a run of that ref already (captured, or imported from elsewhere: `--project` naming a
        project in use, two log directories' `version_0`), which it must not join as a hidden
        execution; then its name and a digest of its source id."""
        if stored is not None:
            return str(stored["run_ref"])
        ref = run_ref(run.project, run_component(run.ref_name))
        with self.database.read() as connection:
            taken = connection.execute("SELECT 1 FROM runs WHERE run_ref = ? LIMIT 1", (ref,)).fetchone()
        if taken is None:
            return ref
        return run_ref(
            run.project, derived_component(run.ref_name, digest_of=f"{run.source}|{run.source_id}")
        )

    def _delivered(self, batch_id: str) -> bool:
        with self.database.read() as connection:
            row = connection.execute(
                "SELECT 1 FROM delivered_batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
        return row is not None

    def _imported_before(self, execution_id: str) -> bool:
        """True when this store took batches of an import of `execution_id` (which it no longer holds,
        when asked: a PostgreSQL store keeps no run journal, its delivered batches say so)."""
        with self.database.read() as connection:
            row = connection.execute(
                "SELECT 1 FROM delivered_batches WHERE batch_id LIKE ? LIMIT 1", (f"import:{execution_id}:%",)
            ).fetchone()
        return row is not None

    def write_run(self, run: ImportedRun, report: ImportReport, progress: Progress | None = None) -> None:
        """Write one source run (or skip it, see the module docstring); `report` is updated."""
        digests = [hash_file(artifact.path) for artifact in run.artifacts]
        fingerprint = run.fingerprint([digest.hash_value for digest in digests])
        generation = 0
        execution_id = execution_id_for(run.source, run.source_id)
        stored = self._stored_import(execution_id)
        while execution_id in self._deleted or (stored is None and self._imported_before(execution_id)):
            generation += 1  # deleted since an earlier import: imported anew, see `_deleted_executions`
            execution_id = execution_id_for(run.source, run.source_id, generation)
            stored = self._stored_import(execution_id)
        ref = self._run_ref(run, stored)
        if stored is not None and stored.get("fingerprint") != fingerprint:
            report.conflicting_runs.append(ref)
            return
        if stored is not None and stored.get("complete"):
            report.skipped_runs.append(ref)
            return
        for source_key, key in run.renamed_keys.items():
            report.renamed_keys[source_key] = key
        run_document = _run_document(run, ref, execution_id, fingerprint)
        model_from_dict("Run", run_document)  # refuses, clearly, what the store would not take
        lines = _lines(run, ref, execution_id, run_document, digests)
        written = 0
        for number, entries in enumerate(_batches(lines, IMPORT_BATCH)):
            batch_id = f"import:{execution_id}:{fingerprint}:{number}"
            points = sum(1 for entry in entries if entry.payload_type == "MetricRecord")
            if not self._delivered(batch_id):
                batch = CaptureBatch(entries, batch_id=batch_id)
                self._log.write(batch)
                self._store.write(batch)
            written += points
            if progress is not None:
                progress(points)
        self._log.flush()
        report.imported_runs.append(ref)
        report.points += written
        report.artifacts += len(digests)


def _deleted_executions(database: StoreDatabase) -> set[str]:
    """The executions `contexta delete` removed from this store (its run journal says which). An
    imported run deleted so is written under a new execution when imported again: under the old one,
    the store would skip its batches as delivered, and a repair would delete it again."""
    store_file: Path | None = database.path
    if store_file is None:  # PostgreSQL: no journal (see `_imported_before`)
        return set()
    return {
        execution
        for change in read_journal(journal_path(store_file))
        if change.action == "delete"
        for execution in change.executions
    }


def _run_document(run: ImportedRun, ref: str, execution_id: str, fingerprint: str) -> dict[str, Any]:
    metadata = {
        **run.metadata,
        "import": {"source": run.source, "source_id": run.source_id, "fingerprint": fingerprint},
    }
    if run.renamed_keys:
        metadata["import"]["renamed_keys"] = dict(run.renamed_keys)
    document: dict[str, Any] = {
        "run_ref": ref,
        "execution_id": execution_id,
        "project_ref": project_ref(run.project),
        "name": ref.rpartition(".")[2],
        "display_name": run.display_name,
        "status": run.status,
        "started_at": format_ns(run.started_ns),
        "ended_at": format_ns(max(run.ended_ns, run.started_ns)),
        "tags": run.tags or None,
        "metadata": metadata,
        "config_snapshot": run.params or None,
        "project_name": run.project,
    }
    return {key: value for key, value in document.items() if value is not None}


def _batches(lines: Iterator[CapturedEntry], size: int) -> Iterator[list[CapturedEntry]]:
    pending: list[CapturedEntry] = []
    for entry in lines:
        pending.append(entry)
        if len(pending) >= size:
            yield pending
            pending = []
    if pending:
        yield pending


def _lines(
    run: ImportedRun,
    ref: str,
    execution_id: str,
    run_document: dict[str, Any],
    digests: list[Any],
) -> Iterator[CapturedEntry]:
    """The run's capture-log entries, in order: the run opening (marked incomplete, so an import cut
    short is found and finished by the next one), its metric points, its artifacts, its ending."""
    opening = {key: value for key, value in run_document.items() if key != "ended_at"}
    opening["status"] = "open"
    opening["metadata"] = {**run_document["metadata"], "import": {**run_document["metadata"]["import"]}}
    run_document["metadata"]["import"]["complete"] = True
    # `captured_at` is when a line entered this capture log: now. The source's times are in the
    # records (`observed_at`, `recorded_at`) and the run (`started_at`, `ended_at`); a historic
    # `captured_at` would make the log seal a segment per batch (its age is its first line's) and
    # look old to anything that ages the log.
    now = utc_now()
    yield CapturedEntry("CONTEXT", "Run", ref, now, opening)
    record_prefix = f"record:{ref.partition(':')[2]}.{execution_id}-{_id_prefix(run)}-"
    envelope_constants = {
        "record_type": "metric",
        "producer_ref": _PRODUCER,
        "run_ref": ref,
        "completeness_marker": "complete",
        "degradation_marker": "none",
        "schema_version": _SCHEMA_VERSION,
    }
    number = 0
    for key, history in run.metrics.items():
        for time_ns, step, value in zip(history.times_ns, history.steps, history.values, strict=True):
            at = format_ns(time_ns)
            record = f"{record_prefix}{number}"
            number += 1
            document = {
                "envelope": {
                    "record_ref": record,
                    "recorded_at": at,
                    "observed_at": at,
                    **envelope_constants,
                },
                "payload": {
                    "metric_key": key,
                    "value": value if value - value == 0 else encode_metric_value(value),
                    "value_type": "float64",
                    "aggregation_scope": "step",
                    "subject_ref": ref,
                    "step": step,
                },
            }
            yield CapturedEntry("RECORD", "MetricRecord", record, now, document)
    for artifact, digest in zip(run.artifacts, digests, strict=True):
        suffix = blake3.blake3(f"{ref}|{artifact.relative}".encode()).hexdigest()[:12]
        reference = artifact_ref(ref, "file", suffix)
        location = str(artifact.path.resolve())
        manifest = {
            "artifact_ref": reference,
            "artifact_kind": "file",
            "run_ref": ref,
            "location_ref": f"path:{location}",
            "created_at": format_ns(_mtime_ns(artifact.path, run.ended_ns)),
            "hash_algorithm": "blake3",
            "hash_value": digest.hash_value,
            "size_bytes": digest.size_bytes,
            "attributes": {"source": run.source, "path": artifact.relative},
            "execution_id": execution_id,
        }
        model_from_dict("ArtifactManifest", {k: v for k, v in manifest.items() if k != "execution_id"})
        registration = {
            "binding_status": "BOUND",
            "manifest": manifest,
            "source": {"uri": location, "exists": True, "kind": "PATH"},
        }
        yield CapturedEntry("ARTIFACT", "ArtifactRegistration", reference, now, registration)
    yield CapturedEntry("CONTEXT", "Run", ref, now, run_document)


def _id_prefix(run: ImportedRun) -> str:
    """The 8 hex digits between a record id's execution and its number (a live process's random
    prefix, here derived from the source run, so the refs are the same on every import)."""
    return blake3.blake3(f"{run.source}|{run.source_id}".encode()).hexdigest()[:8]


def _mtime_ns(path: os.PathLike[str], default: int) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return default


def derived_project(name: str) -> str:
    """The project of runs whose source names it (an MLflow experiment, a TensorBoard log directory):
    the name normalised when it makes a project name; else, rather than stop the import, a stable
    name derived from it (`derived_component`), e.g. `project-<digest>` for `实验`. The source's own
    name stays in each run's metadata; `--project` chooses another."""
    from contexta.contract import normalize_name

    try:
        return normalize_name(name, "project")
    except ValidationError:
        return derived_component(name, empty="project")


def check_project(project: str) -> str:
    """A project name the refs accept, or `ValidationError` saying what to pass instead."""
    from contexta.contract import normalize_name

    try:
        return normalize_name(project, "project")
    except ValidationError as error:
        raise ValidationError(
            f"{error.message}; pass --project NAME to choose the project the runs go to",
            code=error.code,
            details=error.details,
        ) from None
