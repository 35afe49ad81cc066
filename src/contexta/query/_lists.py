"""Listing what the store holds: projects, runs and what happened inside a run, oldest first.

Every function takes the store first; ids accept a full ref or a bare name (see `_resolve`), and
`project` (where taken) is the project a bare run name is looked up in first.
"""

from __future__ import annotations

from collections.abc import Sequence

from contexta.contract._checks import STATUSES
from contexta.errors import ValidationError
from contexta.query._fetch import (
    fetch_artifacts,
    fetch_batches,
    fetch_deployments,
    fetch_environment,
    fetch_metric_points,
    fetch_projects,
    fetch_record_counts,
    fetch_runs,
    fetch_samples,
    fetch_stages,
)
from contexta.query._filter_parse import RunFilter, SortKey
from contexta.query._metric_names import missing_metric_error, recorded_keys
from contexta.query._metrics import MetricGrouping, check_grouping, latest_metrics
from contexta.query._models import (
    ArtifactRecord,
    BatchRecord,
    DeploymentRecord,
    EnvironmentRecord,
    LatestMetric,
    MetricSeries,
    ProjectRecord,
    RunRecord,
    RunsTable,
    SampleRecord,
    StageRecord,
)
from contexta.query._reading import reading
from contexta.query._resolve import find_batch_ref, find_run, find_stage_ref, project_filter_ref
from contexta.query._run_search import check_page, search_runs, search_runs_table
from contexta.store import StoreDatabase

__all__ = [
    "get_environment",
    "get_latest_metrics",
    "get_metric_series",
    "get_record_counts",
    "get_run",
    "get_runs_table",
    "list_artifacts",
    "list_batches",
    "list_deployments",
    "list_projects",
    "list_runs",
    "list_samples",
    "list_stages",
]


def list_projects(db: StoreDatabase) -> list[ProjectRecord]:
    """Every project put in the store, oldest first."""
    with reading(db) as connection:
        return fetch_projects(connection)


def list_runs(
    db: StoreDatabase,
    project: str | None = None,
    *,
    status: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
    filter: str | RunFilter | None = None,  # the name users know from the CLI
    sort: str | Sequence[str | SortKey] | None = None,
    all_executions: bool = False,
    include_archived: bool = False,
) -> list[RunRecord]:
    """Runs (of one project, by name or ref, or of all), oldest first by start time: the latest
    execution of each, or with `all_executions` every execution (an earlier one's `run_id` is
    `run:p.r@n`). Archived executions are left out unless `include_archived` (every query that
    names a run still finds one).

    `status` keeps runs in that state; `filter` keeps the runs an expression holds for
    (`metrics.accuracy > 0.9 and tags.team = nlp`; see `parse_run_filter`). Without `sort`, `limit`
    keeps the most recent `limit` runs, still oldest first, after skipping the `offset` most recent.
    `sort` orders by fields (`-metrics.accuracy,name`: `-` puts the largest first; runs without the
    value go last), and `offset` / `limit` then page through that order. A project with no runs gives
    an empty list; a malformed filter or sort raises `ValidationError` pointing at the fault.
    """
    if status is not None and status not in STATUSES:
        raise ValidationError(
            f"status must be one of {', '.join(STATUSES)}, got {status!r}",
            code="status_invalid",
            details={"status": status},
        )
    if filter is not None or sort is not None or offset is not None:
        return search_runs(
            db,
            project,
            status=status,
            limit=limit,
            offset=offset,
            filter=filter,
            sort=sort,
            all_executions=bool(all_executions),
            include_archived=bool(include_archived),
        )
    check_page(limit, offset)
    with reading(db) as connection:
        project_ref = None if project is None else project_filter_ref(project, connection)
        runs = fetch_runs(
            connection,
            project_ref=project_ref,
            status=status,
            all_executions=bool(all_executions),
            include_archived=bool(include_archived),
        )
    return runs[-limit:] if limit is not None else runs


def get_runs_table(
    db: StoreDatabase,
    project: str | None = None,
    *,
    filter: str | RunFilter | None = None,  # as list_runs
    sort: str | Sequence[str | SortKey] | None = None,
    columns: str | Sequence[str] | None = None,
    limit: int | None = None,
    offset: int | None = None,
    include_archived: bool = False,
) -> RunsTable:
    """The runs `list_runs(project, filter=..., sort=..., limit=..., offset=...)` gives (latest
    executions), as a table of `columns`: fields as a filter names them (`name,status,params.lr,
    metrics.accuracy,duration`, comma-separated or a list), by default run_id, name, status,
    started_at and duration; archived runs only with `include_archived`.
    `ValidationError(columns_invalid)` points at a column that is no field.
    """
    return search_runs_table(
        db,
        project,
        filter=filter,
        sort=sort,
        columns=columns,
        limit=limit,
        offset=offset,
        include_archived=include_archived,
    )


def get_run(db: StoreDatabase, run_id: str, *, project: str | None = None) -> RunRecord:
    """The run execution `run_id` names (a full ref, a bare name, `...@n`), as `list_runs` lists it;
    `NotFoundError(run_not_found)` when there is none."""
    with reading(db) as connection:
        (run,) = fetch_runs(connection, execution_ids=[find_run(connection, run_id, project).execution_id])
    return run


def list_stages(db: StoreDatabase, run_id: str, *, project: str | None = None) -> list[StageRecord]:
    """A run's stages in order (order_index, then start time)."""
    with reading(db) as connection:
        return fetch_stages(connection, find_run(connection, run_id, project).execution_id)


def list_batches(
    db: StoreDatabase, run_id: str, stage_id: str | None = None, *, project: str | None = None
) -> list[BatchRecord]:
    """A run's batches, or one stage's: by stage order, then order_index, then start time."""
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        stage_ref = None if stage_id is None else find_stage_ref(connection, run, stage_id)
        return fetch_batches(connection, run.execution_id, stage_ref)


def list_samples(
    db: StoreDatabase,
    run_id: str,
    stage_id: str | None = None,
    batch_id: str | None = None,
    *,
    project: str | None = None,
) -> list[SampleRecord]:
    """A run's samples (optionally of one stage and/or one batch) in the order they were observed."""
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        stage_ref = None if stage_id is None else find_stage_ref(connection, run, stage_id)
        batch_ref = None if batch_id is None else find_batch_ref(connection, run, batch_id, stage_ref)
        return fetch_samples(connection, run.execution_id, stage_ref, batch_ref)


def list_deployments(
    db: StoreDatabase,
    project: str | None = None,
    run_id: str | None = None,
    *,
    run_project: str | None = None,
) -> list[DeploymentRecord]:
    """Deployments (of a project, of a run's execution, or all), oldest first by start time; a bare
    run name is looked up in `project`, else `run_project`, first."""
    with reading(db) as connection:
        project_ref = None if project is None else project_filter_ref(project, connection)
        execution = (
            None if run_id is None else find_run(connection, run_id, project or run_project).execution_id
        )
        return fetch_deployments(connection, project_ref=project_ref, execution_id=execution)


def list_artifacts(db: StoreDatabase, run_id: str, *, project: str | None = None) -> list[ArtifactRecord]:
    """A run's registered artifacts in the order they were created."""
    with reading(db) as connection:
        return fetch_artifacts(connection, find_run(connection, run_id, project).execution_id)


def get_metric_series(
    db: StoreDatabase,
    run_id: str,
    key: str,
    stage: str | None = None,
    *,
    project: str | None = None,
    run_level: bool = False,
) -> MetricSeries:
    """One metric's points in a run (optionally within one stage, its batches and samples included)
    in capture order; with `run_level`, only the points captured on the run itself, outside every
    stage. `NotFoundError(metric_not_found)` when the run never recorded `key` there, naming the
    closest keys it did record, or the stages that recorded `key`."""
    if not isinstance(key, str) or not key:
        raise ValidationError(
            f"metric key must be a non-empty string, got {key!r}", code="metric_key_invalid"
        )
    if run_level and stage is not None:
        raise ValidationError(
            "give a stage or run_level=True, not both: run-level points are those outside every stage",
            code="metric_scope_invalid",
        )
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        stage_ref = None if stage is None else find_stage_ref(connection, run, stage)
        points = fetch_metric_points(connection, run.execution_id, key, stage_ref, run_level=run_level)
        if not points:
            stages = {record.stage_id: record.name for record in fetch_stages(connection, run.execution_id)}
            where = f"run {run.run_id!r}"
            if stage_ref is not None:
                where = f"stage {stages.get(stage_ref, stage)!r} of {where}"
            elif run_level:
                where = f"{where} itself (outside its stages)"
            raise missing_metric_error(key, where, recorded_keys(connection, [run.execution_id]), stages)
    return MetricSeries(run_id=run.run_id, metric_key=key, points=points)


def get_latest_metrics(
    db: StoreDatabase, run_id: str, *, per: MetricGrouping = "stage", project: str | None = None
) -> list[LatestMetric]:
    """Each metric's latest value in a run, with its point count, in the order first captured:
    per stage (everything captured inside a stage counts for it; `stage_id` None is the run itself),
    the values comparisons and selection use; or `per="scope"`, per run, stage, batch or sample the
    points were captured on. Read from the series' summaries, so a long series costs nothing."""
    grouping = check_grouping(per)
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        names = {stage.stage_id: stage.name for stage in fetch_stages(connection, run.execution_id)}
        return latest_metrics(connection, run.execution_id, names, grouping)


def get_record_counts(db: StoreDatabase, run_id: str, *, project: str | None = None) -> dict[str, int]:
    """How many records of each type (`metric`, `event`, `span`, `degraded`) the run holds, metric
    points included, without reading them; a type it has none of is left out."""
    with reading(db) as connection:
        return fetch_record_counts(connection, find_run(connection, run_id, project).execution_id)


def get_environment(
    db: StoreDatabase, run_id: str, *, project: str | None = None
) -> EnvironmentRecord | None:
    """What the run ran on (Python, platform, packages, git revision), or None when not captured."""
    with reading(db) as connection:
        return fetch_environment(connection, find_run(connection, run_id, project).execution_id)
