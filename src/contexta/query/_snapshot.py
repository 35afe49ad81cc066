"""A run's snapshot: everything the store holds about it, read in one consistent view."""

from __future__ import annotations

from contexta.query._completeness import completeness_notes, gather_facts
from contexta.query._fetch import fetch_record_counts, fetch_records, fetch_samples
from contexta.query._models import RunSnapshot
from contexta.query._reading import reading
from contexta.query._resolve import find_run
from contexta.store import StoreDatabase

__all__ = ["get_run_snapshot"]


def get_run_snapshot(db: StoreDatabase, run_id: str, *, project: str | None = None) -> RunSnapshot:
    """The run with its stages, batches, samples, deployments, artifacts, records (capture order),
    environment, and notes on what is missing and why."""
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        facts = gather_facts(connection, run)
        samples = fetch_samples(connection, run.execution_id)
        records = fetch_records(connection, run.execution_id)
        counts = fetch_record_counts(connection, run.execution_id)
    return RunSnapshot(
        run=facts.run,
        stages=facts.stages,
        batches=facts.batches,
        samples=tuple(samples),
        deployments=facts.deployments,
        artifacts=facts.artifacts,
        records=records,
        completeness_notes=tuple(completeness_notes(facts)),
        environment=facts.environment,
        record_counts=counts,
    )
