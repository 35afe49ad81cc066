"""The dashboard's JSON answers, each one function of the store and the request's parameters.

Every function here is synchronous and reads through `contexta.query` only; `_app.py` runs them in
worker threads (each thread has its own read-only SQLite connection, see `StoreDatabase`) and turns
a `ContextaError` into `{"error": {"code", "message"}}` with a 4xx status. Parameters arrive as text
and are checked here, so a bad one is a `ValidationError` naming it, never a server error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from contexta import query
from contexta._workspace_reader import Workspace
from contexta.errors import ValidationError
from contexta.query import SERIES_AXES, SeriesAxis
from contexta.query._live import get_field_names, get_run_events
from contexta.store import StoreDatabase

__all__ = [
    "DEFAULT_COLUMNS",
    "compare",
    "fields",
    "run_detail",
    "runs_page",
    "samples_page",
    "series",
    "verify",
]

DEFAULT_COLUMNS = ("run_id", "name", "status", "started_at", "duration")
MAX_PAGE = 1000
MAX_TIMELINE_SAMPLES = 2000
MAX_WIDTH = 10_000
MAX_COMPARED = 20


def plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null (the charts draw them as gaps)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: plain(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [plain(inner) for inner in value]
    return value


def _whole(params: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    text = params.get(name, "")
    if text == "":
        return default
    try:
        number = int(text)
    except ValueError:
        raise ValidationError(
            f"{name} must be a whole number, got {text!r}", code=f"{name}_invalid"
        ) from None
    if not low <= number <= high:
        raise ValidationError(f"{name} must be from {low} to {high}, got {number}", code=f"{name}_invalid")
    return number


def _number(params: Mapping[str, str], name: str) -> float | None:
    text = params.get(name, "")
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValidationError(f"{name} must be a number, got {text!r}", code=f"{name}_invalid") from None
    if not math.isfinite(number):
        raise ValidationError(f"{name} must be finite, got {text!r}", code=f"{name}_invalid")
    return number


def _flag(params: Mapping[str, str], name: str) -> bool:
    return params.get(name, "") not in ("", "0", "false")


def runs_page(db: StoreDatabase, params: Mapping[str, str]) -> dict[str, Any]:
    """`GET /api/runs`: one page of the run table (`has_more` says whether another follows)."""
    limit = _whole(params, "limit", 50, low=1, high=MAX_PAGE)
    offset = _whole(params, "offset", 0, low=0, high=10**9)
    extra = [name.strip() for name in params.get("columns", "").split(",") if name.strip()]
    columns = [*DEFAULT_COLUMNS, *(name for name in extra if name not in DEFAULT_COLUMNS)]
    table = query.get_runs_table(
        db,
        params.get("project") or None,
        filter=params.get("filter") or None,
        sort=params.get("sort") or "-started_at",
        columns=columns,
        limit=limit + 1,
        offset=offset,
        include_archived=_flag(params, "archived"),
    )
    rows = table.rows[:limit]
    return {
        "columns": table.columns,
        "rows": plain(rows),
        "offset": offset,
        "limit": limit,
        "has_more": len(table.rows) > limit,
    }


def fields(db: StoreDatabase) -> dict[str, Any]:
    """`GET /api/fields`: the `params.` and `metrics.` columns the run table can show."""
    names = get_field_names(db)
    return {"plain": list(DEFAULT_COLUMNS), "params": list(names.params), "metrics": list(names.metrics)}


def run_detail(db: StoreDatabase, workspace: Workspace, run_id: str) -> dict[str, Any]:
    """`GET /api/runs/{run_id}`: everything the run view shows, except chart points and samples."""
    run = query.get_run(db, run_id)
    run_id = run.run_id
    environment = query.get_environment(db, run_id)
    samples = query.list_samples(db, run_id)
    events, event_count = get_run_events(db, run_id)
    diagnostics = query.diagnose_run(db, run_id)
    artifacts = query.list_artifacts(db, run_id)
    detail: dict[str, Any] = plain(
        {
            "run": run.to_dict(),
            "params": run.config_snapshot or {},
            "environment": None if environment is None else environment.to_dict(),
            "stages": [stage.to_dict() for stage in query.list_stages(db, run_id)],
            "batches": [batch.to_dict() for batch in query.list_batches(db, run_id)],
            "samples": [sample.to_dict() for sample in samples[:MAX_TIMELINE_SAMPLES]],
            "sample_count": len(samples),
            "metrics": [summary.to_dict() for summary in query.get_metric_summaries(db, run_id)],
            "events": [event.to_dict() for event in events],
            "event_count": event_count,
            "artifacts": [artifact.to_dict() for artifact in artifacts],
            "diagnostics": diagnostics.to_dict(),
            "record_counts": query.get_record_counts(db, run_id),
            "workspace": str(workspace.workspace),
        }
    )
    return detail


def series(db: StoreDatabase, run_id: str, params: Mapping[str, str]) -> dict[str, Any]:
    """`GET /api/runs/{run_id}/series`: one metric downsampled to about `width` pixels."""
    key = params.get("key", "")
    if not key:
        raise ValidationError("give the metric key: ?key=loss", code="metric_key_invalid")
    axis: SeriesAxis = "time" if params.get("x") == "time" else "step"
    if params.get("x", "step") not in SERIES_AXES:
        raise ValidationError(f"x must be step or time, got {params['x']!r}", code="series_axis_invalid")
    width = _whole(params, "width", 1500, low=10, high=MAX_WIDTH)
    low, high = _number(params, "x0"), _number(params, "x1")
    if (low is None) != (high is None) or (low is not None and high is not None and low > high):
        raise ValidationError("give both x0 and x1, with x0 <= x1", code="x_range_invalid")
    x_range = None if low is None or high is None else (low, high)
    # Per bucket its min and max exactly, NaN gaps and the ends, from chunk summaries (store schema 6).
    view = query.get_series_view(
        db, run_id, key, stage=params.get("stage") or None, x=axis, width=width, x_range=x_range
    )
    return {
        "run_id": view.run_id,
        "stage": view.stage,
        "metric_key": view.metric_key,
        "x": view.x,
        "total_points": view.total_points,
        "downsampled": view.downsampled,
        "xs": plain(list(view.xs)),
        "ys": plain(list(view.ys)),
        "last_seq": view.last_seq,
    }


def samples_page(db: StoreDatabase, run_id: str, params: Mapping[str, str]) -> dict[str, Any]:
    """`GET /api/runs/{run_id}/samples`: one page of the sample table, failed only when asked,
    sorted by any column (`-metrics.latency` largest first)."""
    limit = _whole(params, "limit", 100, low=1, high=MAX_PAGE)
    offset = _whole(params, "offset", 0, low=0, high=10**9)
    table = query.get_sample_table(
        db, run_id, params.get("stage") or None, failed_only=_flag(params, "failed")
    )
    if params.get("sort"):
        table = table.sorted_by(params["sort"])
    rows = table.rows[offset : offset + limit]
    return {
        "run_id": table.run_id,
        "stage": table.stage_name,
        "metric_keys": list(table.metric_keys),
        "total": len(table.rows),
        "failed_count": table.failed_count,
        "offset": offset,
        "limit": limit,
        "rows": [plain(row.to_dict()) for row in rows],
    }


def compare(db: StoreDatabase, params: Mapping[str, str]) -> dict[str, Any]:
    """`GET /api/compare?runs=a,b`: each metric's latest value per run and the deltas from the
    first run, the params and environment fields that differ, and the series the runs share (to
    overlay, fetched from `/series` per run)."""
    # A run named twice is one run: comparing it with itself says nothing.
    run_ids = list(dict.fromkeys(run.strip() for run in params.get("runs", "").split(",") if run.strip()))
    if not 2 <= len(run_ids) <= MAX_COMPARED:
        raise ValidationError(
            f"compare 2 to {MAX_COMPARED} different runs: ?runs=a,b, got {len(run_ids)}",
            code="compare_runs_invalid",
        )
    comparison = query.compare_multiple_runs(db, run_ids)
    metrics = []
    for metric in comparison.metrics:
        first = metric.values[0]
        deltas = [None if first is None or value is None else plain(value - first) for value in metric.values]
        metrics.append({**plain(metric.to_dict()), "deltas": deltas})
    overlay: dict[tuple[str | None, str], list[str]] = {}
    for run_id in comparison.run_ids:
        for summary in query.get_metric_summaries(db, run_id):
            if summary.point_count > 1:
                overlay.setdefault((summary.stage_name, summary.metric_key), []).append(run_id)
    return {
        "run_ids": list(comparison.run_ids),
        "metrics": metrics,
        "params": [plain(field.to_dict()) for field in comparison.argument_differences],
        "environment": [plain(field.to_dict()) for field in comparison.environment_differences],
        "series": [
            {"stage": stage, "key": key, "run_ids": runs}
            for (stage, key), runs in overlay.items()
            if len(runs) >= 2
        ],
    }


def verify(workspace: Workspace, body: Any) -> dict[str, Any]:
    """`POST /api/artifacts/verify {"artifact_ref"}`: re-hash the artifact now."""
    reference = body.get("artifact_ref") if isinstance(body, dict) else None
    if not isinstance(reference, str) or not reference:
        raise ValidationError('send {"artifact_ref": "artifact:..."}', code="artifact_ref_invalid")
    result: dict[str, Any] = plain(workspace.verify_artifact(reference).to_dict())
    return result
