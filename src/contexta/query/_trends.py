"""Trends across runs: a metric, a stage's duration, an artifact kind's size, one point per run.

Each trend walks the selected runs (`runs_for`: the latest execution of each, oldest first by start)
inside one read transaction, so a run being captured meanwhile shows as it was at one moment.
"""

from __future__ import annotations

from contexta.contract import parse_timestamp
from contexta.errors import ContextaError, ValidationError
from contexta.query._aggregations import check_aggregation
from contexta.query._fetch import fetch_artifacts, fetch_stages
from contexta.query._metric_names import unrecorded_across_runs
from contexta.query._observe import (
    check_metric_key,
    check_stage_name,
    observe,
    recorded_anywhere,
    stage_refs_named,
)
from contexta.query._reading import reading
from contexta.query._run_selection import runs_for
from contexta.query._trend_models import (
    ArtifactSize,
    ArtifactSizePoint,
    ArtifactSizeTrend,
    MetricTrend,
    MetricTrendPoint,
    SkippedRun,
    StageDurationPoint,
    StageDurationTrend,
)
from contexta.store import StoreDatabase

__all__ = ["get_artifact_size_trend", "get_metric_trend", "get_stage_duration_trend"]


def get_metric_trend(
    db: StoreDatabase,
    key: str,
    *,
    stage: str | None = None,
    project: str | None = None,
    filter: str | None = None,
    aggregation: str = "latest",
) -> MetricTrend:
    """One value of `key` per run, oldest run first: the `aggregation` (latest, min, max, mean, p50,
    p95 or count) of the run's points of `key` in the stage named `stage` (its batches and samples
    included), or in the whole run when `stage` is None.

    Runs of `project` (every project when None) that `filter` keeps; a run without such a point is
    left out and listed in `skipped` (reason `no_metric`). When no run in the store recorded the key
    (there), it is taken for a typo: `NotFoundError(metric_not_found)` names the closest keys. A run
    whose points include NaN has the value NaN for every aggregation but latest and count (see
    `_aggregations.py`).
    """
    key = check_metric_key(key)
    stage = check_stage_name(stage)
    chosen = check_aggregation(aggregation)
    points: list[MetricTrendPoint] = []
    skipped: list[SkippedRun] = []
    with reading(db) as connection:
        runs = runs_for(db, project, filter)
        for run in runs:
            execution = _execution(run.execution_id)
            stage_refs = None if stage is None else stage_refs_named(connection, execution, stage)
            found = observe(connection, execution, key, stage_refs, chosen)
            if found is None:
                skipped.append(SkippedRun(run.run_id, run.name, "no_metric"))
                continue
            value, step, count = found
            points.append(MetricTrendPoint(run.run_id, run.name, run.started_at, value, step, count))
        if runs and not points and not recorded_anywhere(connection, key, stage):
            raise unrecorded_across_runs(connection, key, stage, runs)
    return MetricTrend(key, stage, chosen, tuple(points), tuple(skipped))


def get_stage_duration_trend(
    db: StoreDatabase, stage: str, *, project: str | None = None, filter: str | None = None
) -> StageDurationTrend:
    """How long the stage named `stage` took in each run, in seconds, oldest run first.

    A run without the stage is skipped (`no_stage`), and so is one whose stage has not ended
    (`stage_open`: still running, or its process died before anything closed it). When a run has
    several stages of the name, the first in stage order counts.
    """
    name = check_stage_name(stage)
    if name is None:
        raise ValidationError("give the name of the stage whose duration to follow", code="name_invalid")
    points: list[StageDurationPoint] = []
    skipped: list[SkippedRun] = []
    with reading(db) as connection:
        for run in runs_for(db, project, filter):
            execution = _execution(run.execution_id)
            refs = set(stage_refs_named(connection, execution, name))
            matched = [record for record in fetch_stages(connection, execution) if record.stage_id in refs]
            if not matched:
                skipped.append(SkippedRun(run.run_id, run.name, "no_stage"))
                continue
            record = matched[0]
            length = _seconds_between(record.started_at, record.ended_at)
            if length is None:
                skipped.append(SkippedRun(run.run_id, run.name, "stage_open"))
                continue
            points.append(StageDurationPoint(run.run_id, run.name, run.started_at, length, record.status))
    return StageDurationTrend(name, tuple(points), tuple(skipped))


def get_artifact_size_trend(
    db: StoreDatabase, kind: str, *, project: str | None = None, filter: str | None = None
) -> ArtifactSizeTrend:
    """The total size of each run's artifacts of `kind` (and each one's size), oldest run first.

    An artifact registered before its file existed has no size: it is listed with `size_bytes` None
    and adds nothing to the total. A run with no artifact of the kind is skipped (`no_artifact`).
    """
    if not isinstance(kind, str) or not kind:
        raise ValidationError(
            f"artifact kind must be a non-empty string, got {kind!r}", code="artifact_kind_invalid"
        )
    points: list[ArtifactSizePoint] = []
    skipped: list[SkippedRun] = []
    with reading(db) as connection:
        for run in runs_for(db, project, filter):
            artifacts = [
                ArtifactSize(record.artifact_ref, record.size_bytes, record.stage_id)
                for record in fetch_artifacts(connection, _execution(run.execution_id))
                if record.kind == kind
            ]
            if not artifacts:
                skipped.append(SkippedRun(run.run_id, run.name, "no_artifact"))
                continue
            total = sum(item.size_bytes or 0 for item in artifacts)
            points.append(ArtifactSizePoint(run.run_id, run.name, run.started_at, total, tuple(artifacts)))
    return ArtifactSizeTrend(kind, tuple(points), tuple(skipped))


def _seconds_between(started_at: str, ended_at: str | None) -> float | None:
    """Seconds from start to end; None while open (or when a stored time does not read)."""
    if ended_at is None:
        return None
    try:
        return (parse_timestamp(ended_at) - parse_timestamp(started_at)).total_seconds()
    except ContextaError:
        return None


def _execution(execution_id: str | None) -> str:
    """A listed run's execution id (every run the store lists has one)."""
    assert execution_id is not None
    return execution_id
