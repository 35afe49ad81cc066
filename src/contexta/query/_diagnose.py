"""Diagnosing a run: what went wrong or is unfinished, each issue with a code, a severity, the subject
it concerns, and what to do about it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contexta.query._completeness import RunFacts, completeness_notes, gather_facts, stage_names
from contexta.query._fetch import NonFiniteSeries
from contexta.query._models import SEVERITIES, DiagnosticIssue, DiagnosticsResult
from contexta.query._reading import reading
from contexta.query._resolve import find_run
from contexta.store import StoreDatabase

__all__ = ["diagnose_run", "issues_of"]


def issues_of(facts: RunFacts) -> list[DiagnosticIssue]:
    """The issues the facts of a run show, errors first (otherwise in run order)."""
    run = facts.run
    show = f"inspect the run with `contexta run show {run.run_id}`"
    issues: list[DiagnosticIssue] = []
    if run.end_reason == "interrupted":
        issues.append(
            DiagnosticIssue(
                "error",
                "interrupted",
                f"Run '{run.name}' was interrupted: its process ended (killed or crashed) without closing "
                f"it, so it was closed failed, with everything it left open, at its last recorded "
                f"activity ({run.ended_at}); records captured after the last one stored are lost. "
                f"{show[0].upper()}{show[1:]} to see how far it got, and rerun it.",
                run.run_id,
            )
        )
    elif run.status == "failed":
        issues.append(
            DiagnosticIssue(
                "error",
                "failed_run",
                f"Run '{run.name}' failed at {run.ended_at}{_because(run.end_reason, run.failure)}; {show} "
                "and rerun it once the cause is fixed.",
                run.run_id,
            )
        )
    elif run.status == "cancelled":
        issues.append(
            DiagnosticIssue(
                "warning",
                "cancelled_run",
                f"Run '{run.name}' was cancelled at {run.ended_at}{_because(run.end_reason, run.failure)}; "
                "what it would have done after that is missing.",
                run.run_id,
            )
        )
    for stage in facts.stages:
        if stage.status == "failed" and stage.end_reason != "interrupted":
            issues.append(
                DiagnosticIssue(
                    "error",
                    "failed_stage",
                    f"Stage '{stage.name}' failed at {stage.ended_at}"
                    f"{_because(stage.end_reason, stage.failure)}; {show} and rerun the stage.",
                    stage.stage_id,
                )
            )
        elif stage.status == "open" and facts.run_closed:
            issues.append(
                DiagnosticIssue(
                    "warning",
                    "incomplete_stage",
                    f"Stage '{stage.name}' is still open although the run is {run.status}: it was never "
                    "closed (a crash or a missing close()), so its results may be partial.",
                    stage.stage_id,
                )
            )
    names = stage_names(facts)
    for batch in facts.batches:
        stage_name = names.get(batch.stage_id or "", batch.stage_id)
        if batch.status == "failed" and batch.end_reason != "interrupted":
            issues.append(
                DiagnosticIssue(
                    "error",
                    "failed_batch",
                    f"Batch '{batch.name}' of stage '{stage_name}' failed at {batch.ended_at}"
                    f"{_because(batch.end_reason, batch.failure)}; {show} and rerun the batch.",
                    batch.batch_id,
                )
            )
        elif batch.status == "open" and facts.run_closed:
            issues.append(
                DiagnosticIssue(
                    "warning",
                    "incomplete_batch",
                    f"Batch '{batch.name}' of stage '{stage_name}' is still open although the run is "
                    f"{run.status}: it was never closed (a crash or a missing close()), so its metrics "
                    "may be partial.",
                    batch.batch_id,
                )
            )
    issues.extend(_sample_issues(facts, names))
    for deployment in facts.deployments:
        if deployment.status == "failed":
            issues.append(
                DiagnosticIssue(
                    "error",
                    "failed_deployment",
                    f"Deployment '{deployment.name}' of this run failed at {deployment.ended_at}"
                    f"{_because(deployment.end_reason, deployment.failure)}; check its events and redeploy "
                    "once the cause is fixed.",
                    deployment.deployment_id,
                )
            )
    for summary in facts.degraded:
        if summary.reason_code == "record_unencodable":
            effect = (
                f"{summary.dropped_count} records held a value that cannot be written (such as an "
                "object that is not JSON) and were not kept; each marker's message names the error"
            )
        elif summary.dropped_count and summary.reason_code == "capture.dropped":
            effect = (
                f"{summary.dropped_count} items were dropped; raise CaptureConfig.queue_capacity or use "
                "overflow='block' to keep them"
            )
        elif summary.dropped_count:
            effect = f"{summary.dropped_count} items were lost; each marker's message says why"
        else:
            effect = "see these records in the run snapshot for what was lost"
        issues.append(
            DiagnosticIssue(
                "warning",
                "degraded_record",
                f"{summary.record_count} degraded record(s) with reason '{summary.reason_code}': {effect}.",
                summary.first_record_ref,
            )
        )
    for event in facts.alarm_events:
        issues.append(
            DiagnosticIssue(
                "warning",
                "error_event",
                f"Event '{event.event_key}' at {event.observed_at} was captured at level {event.level}: "
                f"{event.message}",
                event.subject_ref or event.record_ref,
            )
        )
    unlisted = facts.alarm_event_count - len(facts.alarm_events)
    if unlisted > 0:
        issues.append(
            DiagnosticIssue(
                "warning",
                "error_event",
                f"{unlisted} more events were captured at level error or critical "
                f"({facts.alarm_event_count} in all); see them in the run snapshot's records.",
                run.run_id,
            )
        )
    for series in facts.non_finite_series:
        issues.append(
            DiagnosticIssue(
                "warning",
                "non_finite_metric",
                _non_finite_summary(series, names),
                series.subject_ref,
            )
        )
    for stage in facts.evaluation_stages_without_metrics():
        issues.append(
            DiagnosticIssue(
                "warning",
                "missing_terminal_metrics",
                f"Stage '{stage.name}' recorded no metrics: record its results with stage.metric(...) "
                "so this run can be compared and selected.",
                stage.stage_id,
            )
        )
    for artifact in facts.artifacts:
        if artifact.binding_status == "PENDING":
            issues.append(
                DiagnosticIssue(
                    "warning",
                    "pending_artifact",
                    f"Artifact '{artifact.kind}' was registered before its file existed "
                    f"({artifact.location}); register it again once the file is written.",
                    artifact.artifact_ref,
                )
            )
    issues.sort(key=lambda issue: -SEVERITIES.index(issue.severity))  # stable: run order within a severity
    return issues


def _because(end_reason: str | None, failure: Mapping[str, Any] | None) -> str:
    """` with <exception>` or ` (<why it ended>)` when the store knows, else nothing."""
    if failure:
        message = _short(str(failure.get("message") or ""))
        return f" with {failure.get('type')}" + (f": {message}" if message else "")
    if end_reason == "interrupted":
        return " (interrupted: its process ended without closing it)"
    if end_reason and end_reason != "exception":
        return f" ({end_reason})"
    return ""


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _sample_issues(facts: RunFacts, stage_names: dict[str, str]) -> list[DiagnosticIssue]:
    """One issue per failed or cancelled sample (the first of them), and one for those not listed:
    an evaluation's failed cases are what its reader looks for first."""
    unfinished = facts.unfinished_samples
    issues = []
    for sample in unfinished.first:
        where = stage_names.get(sample.stage_id or "", sample.stage_id)
        failed = sample.status == "failed"
        issues.append(
            DiagnosticIssue(
                "error" if failed else "warning",
                "failed_sample" if failed else "cancelled_sample",
                f"Sample '{sample.name}' of stage '{where}' {'failed' if failed else 'was cancelled'}"
                f"{_because(sample.end_reason, sample.failure)}; its metrics and events say how far it got "
                f"(ctx.list_samples({facts.run.run_id!r}) lists every sample with its status).",
                sample.sample_id,
            )
        )
    listed = {
        status: sum(sample.status == status for sample in unfinished.first)
        for status in ("failed", "cancelled")
    }
    for status, count, severity, verb in (
        ("failed", unfinished.failed, "error", "failed"),
        ("cancelled", unfinished.cancelled, "warning", "were cancelled"),
    ):
        if count > listed[status]:
            issues.append(
                DiagnosticIssue(
                    severity,
                    f"{status}_sample",
                    f"{count - listed[status]} more samples {verb} ({count} in all); list them with "
                    f"ctx.list_samples({facts.run.run_id!r}).",
                    facts.run.run_id,
                )
            )
    return issues


def _non_finite_summary(series: NonFiniteSeries, stage_names: dict[str, str]) -> str:
    """What a series with NaN or infinite values shows, e.g. "Metric 'loss' of stage 'train' has 3
    non-finite values (NaN/inf), the first at step 41: check for ..."."""
    where = (
        "the run"
        if series.stage_ref is None
        else f"stage '{stage_names.get(series.stage_ref, series.stage_ref)}'"
    )
    if series.batch_ref is not None:
        where = f"batch '{series.batch_ref.rpartition('.')[2]}' of {where}"
    if series.sample_ref is not None:
        where = f"sample '{series.sample_ref.rpartition('.')[2]}' of {where}"
    count = series.non_finite_count
    values = "1 non-finite value" if count == 1 else f"{count} non-finite values"
    first = "" if series.first_step is None else f", the first at step {series.first_step}"
    return (
        f"Metric '{series.key}' of {where} has {values} (NaN/inf){first}: check for a diverging loss "
        "or a division by zero."
    )


def diagnose_run(db: StoreDatabase, run_id: str, *, project: str | None = None) -> DiagnosticsResult:
    """The issues of a run (failed or unfinished stages, batches and deployments, lost records, missing
    results) and its completeness notes."""
    with reading(db) as connection:
        facts = gather_facts(connection, find_run(connection, run_id, project))
    return DiagnosticsResult(
        run_id=facts.run.run_id,
        issues=tuple(issues_of(facts)),
        completeness_notes=tuple(completeness_notes(facts)),
    )
