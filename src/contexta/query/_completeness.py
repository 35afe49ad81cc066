"""What the store knows about a run's gaps: the facts snapshots and diagnostics both judge, and the
sentences that explain what is missing and why."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from contexta.query._fetch import (
    AlarmEvent,
    DegradedSummary,
    NonFiniteSeries,
    UnfinishedSamples,
    fetch_alarm_events,
    fetch_artifacts,
    fetch_batches,
    fetch_degraded_summary,
    fetch_deployments,
    fetch_environment,
    fetch_metric_stage_refs,
    fetch_non_finite_series,
    fetch_runs,
    fetch_stages,
    fetch_unfinished_samples,
)
from contexta.query._models import (
    ArtifactRecord,
    BatchRecord,
    DeploymentRecord,
    EnvironmentRecord,
    RunRecord,
    StageRecord,
)
from contexta.query._resolve import RunTarget

__all__ = ["EVALUATION_STAGE_NAMES", "RunFacts", "completeness_notes", "gather_facts", "stage_names"]

# Stages whose metrics are a run's results: a run that evaluated and measured nothing is missing them.
EVALUATION_STAGE_NAMES = frozenset({"evaluate", "evaluation", "eval"})
NO_UNFINISHED_SAMPLES = UnfinishedSamples(0, 0, ())


@dataclass(frozen=True, slots=True)
class RunFacts:
    """One run's context rows plus summaries of its records (cheap: no record is built)."""

    run: RunRecord
    stages: tuple[StageRecord, ...]
    batches: tuple[BatchRecord, ...]
    deployments: tuple[DeploymentRecord, ...]
    artifacts: tuple[ArtifactRecord, ...]
    environment: EnvironmentRecord | None
    metric_count: int
    stages_with_metrics: frozenset[str]
    degraded: tuple[DegradedSummary, ...]
    alarm_events: tuple[AlarmEvent, ...] = ()
    alarm_event_count: int = 0  # all of them; `alarm_events` holds the first few
    unfinished_samples: UnfinishedSamples = NO_UNFINISHED_SAMPLES
    non_finite_series: tuple[NonFiniteSeries, ...] = ()

    @property
    def run_closed(self) -> bool:
        return self.run.status != "open"

    @property
    def execution_id(self) -> str:
        """The execution these facts are of."""
        assert self.run.execution_id is not None
        return self.run.execution_id

    def evaluation_stages_without_metrics(self) -> list[StageRecord]:
        return [
            stage
            for stage in self.stages
            if stage.name in EVALUATION_STAGE_NAMES and stage.stage_id not in self.stages_with_metrics
        ]


def gather_facts(connection: sqlite3.Connection, run: RunTarget) -> RunFacts:
    """The facts of a run execution that exists (callers resolve it first)."""
    execution = run.execution_id
    (record,) = fetch_runs(connection, execution_ids=[execution])
    metric_count, stages_with_metrics = fetch_metric_stage_refs(connection, execution)
    alarm_events, alarm_event_count = fetch_alarm_events(connection, execution)
    return RunFacts(
        run=record,
        stages=tuple(fetch_stages(connection, execution)),
        batches=tuple(fetch_batches(connection, execution)),
        deployments=tuple(fetch_deployments(connection, execution_id=execution)),
        artifacts=tuple(fetch_artifacts(connection, execution)),
        environment=fetch_environment(connection, execution),
        metric_count=metric_count,
        stages_with_metrics=stages_with_metrics,
        degraded=tuple(fetch_degraded_summary(connection, execution)),
        alarm_events=tuple(alarm_events),
        alarm_event_count=alarm_event_count,
        unfinished_samples=fetch_unfinished_samples(connection, execution),
        non_finite_series=tuple(fetch_non_finite_series(connection, execution)),
    )


def stage_names(facts: RunFacts) -> dict[str, str]:
    """stage ref -> stage name, for sentences about batches."""
    return {stage.stage_id: stage.name for stage in facts.stages}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def completeness_notes(facts: RunFacts) -> list[str]:
    """Sentences saying what is missing from the run and why, most fundamental first."""
    notes: list[str] = []
    run = facts.run
    if run.status == "open":
        notes.append(
            f"Run {run.run_id} is still open: it is running, or its process ended without closing it, "
            "so records captured later (or lost in a crash) are not here."
        )
    elif run.status in ("failed", "cancelled"):
        notes.append(
            f"Run {run.run_id} ended {run.status} at {run.ended_at}; what would have come after is missing."
        )
    while_closed = f", although run {run.run_id} is {run.status}" if facts.run_closed else ""
    for stage in facts.stages:
        if stage.status == "open":
            notes.append(f"Stage '{stage.name}' is still open{while_closed}; its results may be partial.")
    names = stage_names(facts)
    for batch in facts.batches:
        if batch.status == "open":
            stage_name = names.get(batch.stage_id or "", batch.stage_id)
            notes.append(
                f"Batch '{batch.name}' of stage '{stage_name}' is still open{while_closed}; "
                "its metrics may be partial."
            )
    silent_evaluations = facts.evaluation_stages_without_metrics()
    for stage in silent_evaluations:
        notes.append(f"Stage '{stage.name}' recorded no metrics, so the run has no evaluation results.")
    if facts.metric_count == 0 and not silent_evaluations:
        notes.append(f"No metrics were recorded for run {run.run_id}.")
    for summary in facts.degraded:
        dropped = f", {_plural(summary.dropped_count, 'item')} dropped" if summary.dropped_count else ""
        notes.append(
            f"{_plural(summary.record_count, 'degraded record')} with reason '{summary.reason_code}'"
            f"{dropped}: capture lost or damaged some data for this run."
        )
    for artifact in facts.artifacts:
        if artifact.binding_status == "PENDING":
            notes.append(
                f"Artifact {artifact.artifact_ref} is registered as PENDING: its file ({artifact.location}) "
                "was missing when it was registered, so it has no size or digest."
            )
    if facts.environment is None:
        notes.append(
            "No environment snapshot (Python version, platform, packages, git revision) was recorded "
            "for this run."
        )
    return notes
