"""Read models of trends across runs: one point per run, oldest run first, and the runs left out.

A trend never drops a run silently: a run that has nothing to plot (it lacks the metric, the stage is
still open, it registered no artifact of the kind) is listed in `skipped` with the reason, so "5
points" next to "12 runs" can be explained. `table_columns()` gives one row per point as ordered
columns, the shape tables, data frames and Arrow arrays are built from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contexta.query._frames import Tabular
from contexta.query._models import ReadModel

__all__ = [
    "ArtifactSize",
    "ArtifactSizePoint",
    "ArtifactSizeTrend",
    "MetricTrend",
    "MetricTrendPoint",
    "SkippedRun",
    "StageDurationPoint",
    "StageDurationTrend",
]


@dataclass(frozen=True, slots=True)
class SkippedRun(ReadModel):
    """A run a trend has no point for, and why: `no_metric` (the metric was not captured there, or
    the run has no such stage), `no_stage`, `stage_open` (still running, or never closed) or
    `no_artifact` (none of the kind)."""

    run_id: str
    run_name: str
    reason: str


def _skipped_counts(skipped: tuple[SkippedRun, ...]) -> dict[str, int]:
    return dict(Counter(run.reason for run in skipped))


@dataclass(frozen=True, slots=True)
class MetricTrendPoint(ReadModel):
    """One run's value of the metric: its `aggregation` over the run's points (of the stage, when the
    trend names one). `step` is the step of the point the value is (for latest, min and max; None for
    the others, or a point captured without a step); `point_count` how many points were aggregated."""

    run_id: str
    run_name: str
    started_at: str
    value: float | int
    step: int | None
    point_count: int


def _columns(points: Sequence[object], measured: tuple[str, ...]) -> dict[str, list[Any]]:
    """A trend's table: which run (id, name, start), then the `measured` attributes of each point."""
    return {
        name: [getattr(point, name) for point in points]
        for name in ("run_id", "run_name", "started_at", *measured)
    }


@dataclass(frozen=True, slots=True)
class MetricTrend(ReadModel, Tabular):
    """A metric's value per run, oldest run first (`stage_name` None: every stage and the run)."""

    metric_key: str
    stage_name: str | None
    aggregation: str
    points: tuple[MetricTrendPoint, ...]
    skipped: tuple[SkippedRun, ...]

    @property
    def values(self) -> list[float | int]:
        return [point.value for point in self.points]

    @property
    def skipped_counts(self) -> dict[str, int]:
        """reason -> how many runs were left out for it."""
        return _skipped_counts(self.skipped)

    def table_columns(self) -> dict[str, list[Any]]:
        """Column name -> values, one row per point, in the order the columns read."""
        return _columns(self.points, ("value", "step", "point_count"))


@dataclass(frozen=True, slots=True)
class StageDurationPoint(ReadModel):
    """How long one run's stage took, from its start to its end, in seconds; `stage_status` says how
    it ended (a failed stage's duration is the time until it failed)."""

    run_id: str
    run_name: str
    started_at: str
    duration_s: float
    stage_status: str


@dataclass(frozen=True, slots=True)
class StageDurationTrend(ReadModel, Tabular):
    """A stage's duration per run, oldest run first."""

    stage_name: str
    points: tuple[StageDurationPoint, ...]
    skipped: tuple[SkippedRun, ...]

    @property
    def values(self) -> list[float]:
        return [point.duration_s for point in self.points]

    @property
    def skipped_counts(self) -> dict[str, int]:
        """reason -> how many runs were left out for it."""
        return _skipped_counts(self.skipped)

    def table_columns(self) -> dict[str, list[Any]]:
        """Column name -> values, one row per point, in the order the columns read."""
        return _columns(self.points, ("duration_s", "stage_status"))


@dataclass(frozen=True, slots=True)
class ArtifactSize(ReadModel):
    """One registered artifact's size; None when it was registered before its file existed."""

    artifact_ref: str
    size_bytes: int | None
    stage_id: str | None


@dataclass(frozen=True, slots=True)
class ArtifactSizePoint(ReadModel):
    """A run's artifacts of the kind: their total size (of those with a known size) and each one."""

    run_id: str
    run_name: str
    started_at: str
    total_size_bytes: int
    artifacts: tuple[ArtifactSize, ...]

    @property
    def artifact_count(self) -> int:
        return len(self.artifacts)


@dataclass(frozen=True, slots=True)
class ArtifactSizeTrend(ReadModel, Tabular):
    """An artifact kind's total size per run, oldest run first."""

    kind: str
    points: tuple[ArtifactSizePoint, ...]
    skipped: tuple[SkippedRun, ...]

    @property
    def values(self) -> list[int]:
        return [point.total_size_bytes for point in self.points]

    @property
    def skipped_counts(self) -> dict[str, int]:
        """reason -> how many runs were left out for it."""
        return _skipped_counts(self.skipped)

    def table_columns(self) -> dict[str, list[Any]]:
        """Column name -> values, one row per point, in the order the columns read; the last two hold
        one list per run (each artifact's ref and size, in creation order)."""
        return {
            **_columns(self.points, ("total_size_bytes", "artifact_count")),
            "artifact_refs": [[item.artifact_ref for item in point.artifacts] for point in self.points],
            "artifact_sizes_bytes": [[item.size_bytes for item in point.artifacts] for point in self.points],
        }
