"""Read models: what the investigation queries hand back, frozen and cheap to build.

These are views of the store, not contract models: ids are full refs, names are the subject's own
name, and JSON columns come back as plain mappings. `to_dict()` gives JSON-ready mappings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from contexta.contract._model import ContractModel
from contexta.contract._records import DegradedRecord, MetricRecord, StructuredEventRecord, TraceSpanRecord
from contexta.errors import ValidationError
from contexta.query._frames import ColumnType, Tabular
from contexta.query._point_columns import POINT_COLUMN_TYPES, point_columns
from contexta.store import MetricColumns

if TYPE_CHECKING:
    from contexta.query._sample_stats import SampleAggregate

__all__ = [
    "SEVERITIES",
    "AnyRecord",
    "ArtifactChange",
    "ArtifactRecord",
    "BatchRecord",
    "BestRun",
    "DeploymentRecord",
    "DiagnosticIssue",
    "DiagnosticsResult",
    "EnvironmentRecord",
    "FieldAcrossRuns",
    "FieldDifference",
    "LatestMetric",
    "MetricAcrossRuns",
    "MetricDelta",
    "MetricPoint",
    "MetricPoints",
    "MetricSeries",
    "MetricSummary",
    "MultiRunComparison",
    "ProjectRecord",
    "RunComparison",
    "RunNote",
    "RunRecord",
    "RunSnapshot",
    "RunsTable",
    "SampleMetricAcrossRuns",
    "SampleMetricDelta",
    "SampleRecord",
    "StageRecord",
]

AnyRecord = MetricRecord | StructuredEventRecord | TraceSpanRecord | DegradedRecord

# Diagnostic severities, least to most severe.
SEVERITIES = ("info", "warning", "error")


def _plain(value: Any) -> Any:
    if isinstance(value, ReadModel | ContractModel):
        return value.to_dict()
    if isinstance(value, tuple | list | MetricPoints) or (
        isinstance(value, Sequence) and not isinstance(value, str | bytes)
    ):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


class ReadModel:
    """Mixin for the frozen read dataclasses: `to_dict()` with nested models and tuples made plain."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping of every field (nested models become mappings, tuples lists)."""
        return {
            field.name: _plain(getattr(self, field.name))
            for field in dataclasses.fields(self)  # type: ignore[arg-type]
        }


@dataclass(frozen=True, slots=True)
class ProjectRecord(ReadModel):
    project_id: str
    name: str
    created_at: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RunNote(ReadModel):
    """A note added to a run after capture (`ctx.add_run_note`), with when it was added."""

    text: str
    added_at: str


@dataclass(frozen=True, slots=True)
class RunRecord(ReadModel):
    """One execution of a run. `run_id` names it in every query: the run ref for the latest
    execution, `run:p.r@n` for an earlier one (the n-th stored); `name` is the name as typed."""

    run_id: str
    project_name: str
    name: str
    status: str
    started_at: str
    ended_at: str | None = None
    tags: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    dataset_ref: str | None = None
    code_revision: str | None = None
    config_snapshot: dict[str, Any] | None = None
    # Why it ended: "interrupted" (its process died and a later Contexta closed it), "exception",
    # "keyboard_interrupt", "signal:SIGTERM", ...; None for a normal end.
    end_reason: str | None = None
    failure: dict[str, Any] | None = None  # {"type", "message", "traceback"} of what ended it
    execution_id: str | None = None
    execution_number: int = 1  # the order it was stored in among the run's executions, from 1
    latest: bool = True  # whether the run ref names it
    # Decided after capture (ctx.archive_run, ctx.add_run_note): hidden from default listings, and
    # what people wrote about it, oldest first.
    archived: bool = False
    notes: tuple[RunNote, ...] = ()

    @property
    def run_ref(self) -> str:
        """The run's ref (shared by all its executions)."""
        return self.run_id.partition("@")[0]


@dataclass(frozen=True, slots=True)
class StageRecord(ReadModel):
    stage_id: str
    name: str
    status: str
    started_at: str
    ended_at: str | None = None
    order: int | None = None
    end_reason: str | None = None
    failure: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class BatchRecord(ReadModel):
    batch_id: str
    name: str
    status: str
    started_at: str
    ended_at: str | None = None
    order: int | None = None
    stage_id: str | None = None
    end_reason: str | None = None
    failure: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SampleRecord(ReadModel):
    sample_id: str
    name: str
    observed_at: str
    retention_class: str | None = None
    redaction_profile: str | None = None
    stage_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    ended_at: str | None = None
    end_reason: str | None = None
    failure: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DeploymentRecord(ReadModel):
    deployment_id: str
    name: str
    status: str
    run_id: str | None = None
    artifact_ref: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    end_reason: str | None = None
    failure: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ArtifactRecord(ReadModel):
    artifact_ref: str
    kind: str
    run_id: str
    stage_id: str | None
    location: str
    hash_algorithm: str
    hash_value: str | None
    size_bytes: int | None
    created_at: str
    binding_status: str


@dataclass(frozen=True, slots=True)
class MetricPoint(ReadModel):
    step: int | None
    value: float | int
    observed_at: str
    stage_id: str | None = None
    batch_id: str | None = None
    sample_id: str | None = None


class MetricPoints(Sequence[MetricPoint]):
    """A series' points as a read-only sequence over its columns: each `MetricPoint` is built when it
    is read, so a million-point series costs a few lists until someone walks it."""

    __slots__ = ("_columns", "_scopes", "_stage_names")

    def __init__(self, columns: MetricColumns | None = None, stage_names: Mapping[str, str] | None = None):
        self._columns = columns
        self._stage_names = dict(stage_names or {})  # stage ref -> name as typed, for tables
        # Per series row: the (stage, batch, sample) refs every point of it shares.
        self._scopes = (
            []
            if columns is None
            else [(row.stage_ref, row.batch_ref, row.sample_ref) for row in columns.series_rows]
        )

    def __len__(self) -> int:
        return 0 if self._columns is None else len(self._columns)

    @overload
    def __getitem__(self, index: int) -> MetricPoint: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[MetricPoint, ...]: ...
    def __getitem__(self, index: int | slice) -> MetricPoint | tuple[MetricPoint, ...]:
        if isinstance(index, slice):
            return tuple(self._point(position) for position in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("metric point index out of range")
        return self._point(index)

    def _point(self, index: int) -> MetricPoint:
        columns = self._columns
        assert columns is not None
        stage, batch, sample = self._scopes[columns.series[index]]
        return MetricPoint(
            columns.step(index), columns.values[index], columns.observed_at(index), stage, batch, sample
        )

    def __iter__(self) -> Iterator[MetricPoint]:
        return (self._point(index) for index in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"<MetricPoints of {len(self)}>"

    @property
    def steps(self) -> list[int | None]:
        """Every point's step, without building the points."""
        return [] if self._columns is None else self._columns.step_list()

    @property
    def values(self) -> list[float | int]:
        """Every point's value, without building the points."""
        return [] if self._columns is None else list(self._columns.values)

    def point_columns(self, run_id: str) -> dict[str, Sequence[Any]]:
        """The points as table columns (see `MetricSeries.table_columns`), straight from the arrays."""
        return point_columns(run_id, self._columns, self._stage_names)


@dataclass(frozen=True, slots=True)
class MetricSeries(ReadModel, Tabular):
    """One metric key's points in one run, in capture order; as a table (`to_arrow()`,
    `to_pandas()`, `write(...)`), one row per point (see `POINT_COLUMN_TYPES`)."""

    run_id: str
    metric_key: str
    points: MetricPoints

    def table_columns(self) -> dict[str, Sequence[Any]]:
        return self.points.point_columns(self.run_id)

    def column_types(self) -> Mapping[str, ColumnType]:
        return POINT_COLUMN_TYPES

    def _repr_html_(self) -> str:
        """Jupyter's rendering: the series as a line chart, then its first points."""
        from contexta.reports import notebook_series_html

        return notebook_series_html(self.metric_key, [self])

    @property
    def values(self) -> tuple[float | int, ...]:
        return tuple(self.points.values)

    @property
    def steps(self) -> tuple[int | None, ...]:
        return tuple(self.points.steps)

    @property
    def latest(self) -> MetricPoint | None:
        """The last point captured, or None for an empty series."""
        return self.points[-1] if self.points else None


@dataclass(frozen=True, slots=True)
class LatestMetric(ReadModel):
    """A metric key's value captured last in one place of a run, and how many points it has there.

    Grouped per stage (`get_latest_metrics(...)`), the place is a stage with everything captured
    inside it (its batches and samples too), or the run itself (`stage_id` None), and `batch_id` /
    `sample_id` are None; grouped per scope (`per="scope"`), it is the one scope the points were
    captured on: the run, a stage, a batch or a sample.
    """

    metric_key: str
    value: float | int  # NaN and the infinities included
    point_count: int
    stage_id: str | None
    stage_name: str | None  # the stage's name as typed (its ref's last component if not stored)
    batch_id: str | None = None
    sample_id: str | None = None


@dataclass(frozen=True, slots=True)
class EnvironmentRecord(ReadModel):
    python_version: str
    platform: str
    packages: dict[str, Any] | None
    git_revision: str | None
    captured_at: str


@dataclass(frozen=True, slots=True)
class RunSnapshot(ReadModel):
    """Everything the store holds about one run, with notes on what is missing and why."""

    run: RunRecord
    stages: tuple[StageRecord, ...]
    batches: tuple[BatchRecord, ...]
    samples: tuple[SampleRecord, ...]
    deployments: tuple[DeploymentRecord, ...]
    artifacts: tuple[ArtifactRecord, ...]
    records: Sequence[AnyRecord]  # built one at a time when read: a run may hold millions
    completeness_notes: tuple[str, ...]
    environment: EnvironmentRecord | None = None
    record_counts: dict[str, int] | None = None  # record type (metric, event, span, degraded) -> count


@dataclass(frozen=True, slots=True)
class DiagnosticIssue(ReadModel):
    severity: str
    code: str
    summary: str
    subject_ref: str


@dataclass(frozen=True, slots=True)
class DiagnosticsResult(ReadModel):
    run_id: str
    issues: tuple[DiagnosticIssue, ...]
    completeness_notes: tuple[str, ...]

    @property
    def max_severity(self) -> str | None:
        """The most severe issue's severity (`error` > `warning` > `info`), or None when clean."""
        if not self.issues:
            return None
        return max((issue.severity for issue in self.issues), key=SEVERITIES.index)

    def has_issues_at_least(self, severity: str) -> bool:
        """True when some issue is at least as severe as `severity` (the CLI's `--fail-on`)."""
        if severity not in SEVERITIES:
            raise ValidationError(
                f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}", code="severity_invalid"
            )
        threshold = SEVERITIES.index(severity)
        return any(SEVERITIES.index(issue.severity) >= threshold for issue in self.issues)


@dataclass(frozen=True, slots=True)
class MetricDelta(ReadModel):
    """One metric's latest value in two runs (None where a run lacks it) and right minus left."""

    stage_name: str | None  # None: captured on the run itself
    metric_key: str
    left: float | int | None
    right: float | int | None
    delta: float | int | None


@dataclass(frozen=True, slots=True)
class ArtifactChange(ReadModel):
    """An artifact kind's registration in two runs, matched in creation order."""

    kind: str
    change: str  # added | removed | changed | unchanged
    left_ref: str | None
    right_ref: str | None
    left_digest: str | None
    right_digest: str | None
    left_size_bytes: int | None
    right_size_bytes: int | None


@dataclass(frozen=True, slots=True)
class FieldDifference(ReadModel):
    """A run argument or environment field whose value differs (None where a run lacks it); nested
    mappings are compared field by field under dotted names (`config_snapshot.lr`, `packages.numpy`)."""

    field: str
    left: Any
    right: Any


@dataclass(frozen=True, slots=True)
class RunComparison(ReadModel):
    """What changed from the left run to the right one."""

    left_run_id: str
    right_run_id: str
    metric_deltas: tuple[MetricDelta, ...]
    artifact_changes: tuple[ArtifactChange, ...]
    argument_differences: tuple[FieldDifference, ...]
    environment_differences: tuple[FieldDifference, ...]
    # Metrics recorded inside samples, summarised per (stage, key) rather than by their latest sample.
    sample_metrics: tuple[SampleMetricDelta, ...] = ()

    def metric_delta(self, metric_key: str, stage_name: str | None = None) -> MetricDelta | None:
        """The delta of `metric_key` (in `stage_name`, or the first stage that has it), or None."""
        for delta in self.metric_deltas:
            if delta.metric_key == metric_key and (stage_name is None or delta.stage_name == stage_name):
                return delta
        return None


@dataclass(frozen=True, slots=True)
class MetricAcrossRuns(ReadModel):
    """One metric's latest value in each compared run, in the order of `run_ids`."""

    stage_name: str | None
    metric_key: str
    values: tuple[float | int | None, ...]


@dataclass(frozen=True, slots=True)
class FieldAcrossRuns(ReadModel):
    """A run argument or environment field that is not the same in every compared run."""

    field: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class MultiRunComparison(ReadModel):
    """Several runs side by side: every metric's latest value per run, and what differs between them."""

    run_ids: tuple[str, ...]
    metrics: tuple[MetricAcrossRuns, ...]
    argument_differences: tuple[FieldAcrossRuns, ...]
    environment_differences: tuple[FieldAcrossRuns, ...]
    sample_metrics: tuple[SampleMetricAcrossRuns, ...] = ()  # per-sample metrics, summarised


@dataclass(frozen=True, slots=True)
class SampleMetricDelta(ReadModel):
    """A per-sample metric of one stage in two runs: each run's `SampleAggregate` (None where a run
    lacks it), and right minus left of the mean (the share's change, for a 0/1 metric) and of p95."""

    stage_name: str
    metric_key: str
    left: SampleAggregate | None
    right: SampleAggregate | None
    mean_delta: float | None
    p95_delta: float | None


@dataclass(frozen=True, slots=True)
class SampleMetricAcrossRuns(ReadModel):
    """A per-sample metric of one stage in each compared run (None where a run lacks it)."""

    stage_name: str
    metric_key: str
    aggregates: tuple[SampleAggregate | None, ...]


@dataclass(frozen=True, slots=True)
class BestRun(ReadModel):
    """The run `find_best_run` chose, the value that won, and how it was judged: `aggregate` is
    `latest` (the value captured last outside samples) or the statistic of the per-sample values
    (`mean`, `p95`, ...); `direction` says whether `higher_is_better` was `given` or `inferred` from
    the key. `run_count` runs were considered, `candidate_count` of them had a finite value."""

    run_id: str
    metric_key: str
    stage_name: str | None
    value: float | int
    aggregate: str
    higher_is_better: bool
    direction: str
    run_count: int
    candidate_count: int


@dataclass(frozen=True, slots=True)
class MetricSummary(ReadModel):
    """One metric key in one place of a run: a stage (its batches included), or the run itself
    (`stage_id` None). The points captured outside samples are counted, with the latest and the
    finite min and max (`non_finite_count` of them were NaN or infinite); the values recorded inside
    the stage's samples are summarised as `samples` (None when no sample recorded the key)."""

    stage_id: str | None
    stage_name: str | None
    metric_key: str
    point_count: int
    latest: float | int | None
    min: float | int | None
    max: float | int | None
    non_finite_count: int
    samples: SampleAggregate | None = None


@dataclass(frozen=True, slots=True)
class RunsTable(ReadModel, Tabular):
    """Runs as a table, one row per run in the order asked, one column per field named (`columns`,
    as written: `name`, `params.lr`, `metrics.evaluate:accuracy`, `min(metrics.loss)`, ...).

    Values are as stored: numbers, text, a param's own JSON value; `started_at` the stored instant,
    `duration` seconds; None where a run has no value. `table_columns()` gives the same cells column
    by column, the shape data-frame libraries take.
    """

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def table_columns(self) -> dict[str, list[Any]]:
        """Column name -> its values, one per run, in row order (columns in the order asked)."""
        if not self.rows:
            return {name: [] for name in self.columns}
        return {
            name: list(values)
            for name, values in zip(self.columns, zip(*self.rows, strict=True), strict=True)
        }
