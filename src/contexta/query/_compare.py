"""Comparing runs: what changed in their metrics, artifacts, arguments and environment.

Metrics are compared by their latest value per (stage name, key), so a stage is matched across runs
by its name, not its ref (refs differ between runs by construction). Metrics recorded inside samples
are compared as samples instead (count, mean, percentiles, share: `SampleAggregate`), never by the
value of whichever sample ran last. Artifacts are matched by kind in creation order and compared by
BLAKE3 digest and size.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from contexta.errors import ValidationError
from contexta.query._completeness import EVALUATION_STAGE_NAMES, RunFacts, gather_facts, stage_names
from contexta.query._metric_names import missing_metric_error, recorded_keys
from contexta.query._metrics import latest_metrics
from contexta.query._models import (
    ArtifactChange,
    ArtifactRecord,
    FieldAcrossRuns,
    FieldDifference,
    MetricAcrossRuns,
    MetricDelta,
    MultiRunComparison,
    RunComparison,
    SampleMetricAcrossRuns,
    SampleMetricDelta,
)
from contexta.query._reading import reading
from contexta.query._resolve import check_run_ids, find_run, find_runs
from contexta.query._sample_metrics import sample_aggregates
from contexta.query._sample_stats import SampleAggregate, SampleAggregateName
from contexta.store import StoreDatabase

__all__ = [
    "compare_multiple_runs",
    "compare_runs",
    "metric_slots_in_order",
    "named_metric_values",
    "named_sample_aggregates",
]

MetricSlot = tuple[str | None, str]  # (stage name or None for run-level, metric key)


def named_metric_values(connection: sqlite3.Connection, facts: RunFacts) -> dict[MetricSlot, float | int]:
    """The run's latest metric values keyed by stage *name*, in the order they were first captured
    (points captured inside samples left out: see `named_sample_aggregates`)."""
    names = stage_names(facts)
    return {
        (metric.stage_name, metric.metric_key): metric.value
        for metric in latest_metrics(connection, facts.execution_id, names, include_samples=False)
    }


def named_sample_aggregates(
    connection: sqlite3.Connection, facts: RunFacts
) -> dict[tuple[str, str], SampleAggregate]:
    """The run's per-sample metrics summarised, keyed by (stage *name*, key), in the order first
    captured (the first stage of a name wins, as for latest values)."""
    found: dict[tuple[str, str], SampleAggregate] = {}
    for aggregate in sample_aggregates(connection, facts.execution_id, stage_names(facts)):
        found.setdefault((aggregate.stage_name, aggregate.metric_key), aggregate)
    return found


def _sample_delta(
    slot: tuple[str, str], left: SampleAggregate | None, right: SampleAggregate | None
) -> SampleMetricDelta:
    def change(name: SampleAggregateName) -> float | None:
        old = None if left is None else left.value(name)
        new = None if right is None else right.value(name)
        return None if old is None or new is None else float(new) - float(old)

    return SampleMetricDelta(slot[0], slot[1], left, right, change("mean"), change("p95"))


def metric_slots_in_order(per_run: Iterable[Mapping[MetricSlot, Any]]) -> list[MetricSlot]:
    """Every slot of any run: evaluation stages first, then other stages, then run-level metrics; within
    a group in the order first seen."""
    first_seen: dict[MetricSlot, int] = {}
    for values in per_run:
        for slot in values:
            first_seen.setdefault(slot, len(first_seen))

    def group(slot: MetricSlot) -> tuple[int, int]:
        stage_name = slot[0]
        rank = 2 if stage_name is None else 0 if stage_name in EVALUATION_STAGE_NAMES else 1
        return (rank, first_seen[slot])

    return sorted(first_seen, key=group)


def _sample_slots(per_run: list[dict[tuple[str, str], SampleAggregate]]) -> list[tuple[str, str]]:
    """Every (stage name, key) of any run's per-sample metrics: evaluation stages first, then in the
    order first seen."""
    slots = metric_slots_in_order([dict.fromkeys(slots) for slots in per_run])
    return [(stage, key) for stage, key in slots if stage is not None]


def _delta(left: float | int | None, right: float | int | None) -> float | int | None:
    return None if left is None or right is None else right - left


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, into)
    else:
        into[prefix] = value


def _argument_fields(facts: RunFacts) -> dict[str, Any]:
    run = facts.run
    fields: dict[str, Any] = {"dataset_ref": run.dataset_ref, "code_revision": run.code_revision}
    for name in ("tags", "metadata", "config_snapshot"):
        _flatten(name, getattr(run, name), fields)
    return {name: value for name, value in fields.items() if value is not None}


def _environment_fields(facts: RunFacts) -> dict[str, Any]:
    environment = facts.environment
    if environment is None:
        return {}
    fields: dict[str, Any] = {
        "python_version": environment.python_version,
        "platform": environment.platform,
        "git_revision": environment.git_revision,
    }
    for package, version in (environment.packages or {}).items():
        fields[f"packages.{package}"] = version
    return {name: value for name, value in fields.items() if value is not None}


def _differing(per_run: list[dict[str, Any]]) -> list[tuple[str, tuple[Any, ...]]]:
    """(field, value per run) for every field whose value is not the same in every run."""
    names = list(dict.fromkeys(name for fields in per_run for name in fields))
    rows = []
    for name in names:
        values = tuple(fields.get(name) for fields in per_run)
        if any(value != values[0] for value in values[1:]):
            rows.append((name, values))
    return rows


def _artifact_changes(
    left: Iterable[ArtifactRecord], right: Iterable[ArtifactRecord]
) -> list[ArtifactChange]:
    by_kind: dict[str, tuple[list[ArtifactRecord], list[ArtifactRecord]]] = {}
    for side, artifacts in enumerate((left, right)):
        for artifact in artifacts:
            by_kind.setdefault(artifact.kind, ([], []))[side].append(artifact)
    changes = []
    for kind, (lefts, rights) in by_kind.items():
        for index in range(max(len(lefts), len(rights))):
            old = lefts[index] if index < len(lefts) else None
            new = rights[index] if index < len(rights) else None
            if old is None:
                change = "added"
            elif new is None:
                change = "removed"
            elif (old.hash_value, old.size_bytes) != (new.hash_value, new.size_bytes):
                change = "changed"
            else:
                change = "unchanged"
            changes.append(
                ArtifactChange(
                    kind,
                    change,
                    None if old is None else old.artifact_ref,
                    None if new is None else new.artifact_ref,
                    None if old is None else old.hash_value,
                    None if new is None else new.hash_value,
                    None if old is None else old.size_bytes,
                    None if new is None else new.size_bytes,
                )
            )
    return changes


Values = dict[MetricSlot, float | int]
Aggregates = dict[tuple[str, str], SampleAggregate]


def _named_metrics(
    connection: sqlite3.Connection, facts: list[RunFacts], metric_keys: Iterable[str] | None
) -> tuple[list[Values], list[Aggregates]]:
    """Each run's latest values and sample aggregates, of the keys `metric_keys` only when given: a key
    none of the runs recorded raises `NotFoundError(metric_not_found)` naming the closest."""
    values = [named_metric_values(connection, run_facts) for run_facts in facts]
    aggregates = [named_sample_aggregates(connection, run_facts) for run_facts in facts]
    if metric_keys is None:
        return values, aggregates
    if isinstance(metric_keys, str):
        raise ValidationError(
            f"metric_keys must be a collection of keys, got the string {metric_keys!r}; wrap it in a list",
            code="metric_keys_invalid",
        )
    wanted = set(metric_keys)
    recorded = recorded_keys(connection, [run_facts.execution_id for run_facts in facts])
    for key in wanted:
        if key not in recorded:
            among = "either run" if len(facts) == 2 else f"any of the {len(facts)} runs"
            names = {ref: name for run_facts in facts for ref, name in stage_names(run_facts).items()}
            raise missing_metric_error(key, among, recorded, names)
    return (
        [{slot: value for slot, value in run.items() if slot[1] in wanted} for run in values],
        [{slot: found for slot, found in run.items() if slot[1] in wanted} for run in aggregates],
    )


def compare_runs(
    db: StoreDatabase,
    left: str,
    right: str,
    *,
    project: str | None = None,
    metric_keys: Iterable[str] | None = None,
) -> RunComparison:
    """What changed from run `left` to run `right` (full refs or bare names); with `metric_keys`, the
    metrics of those keys only (`NotFoundError(metric_not_found)` for a key neither run recorded,
    naming the closest)."""
    with reading(db) as connection:
        facts = [gather_facts(connection, find_run(connection, run, project)) for run in (left, right)]
        values, aggregates = _named_metrics(connection, facts, metric_keys)
    left_values, right_values = values
    deltas = [
        MetricDelta(
            stage_name,
            key,
            left_values.get((stage_name, key)),
            right_values.get((stage_name, key)),
            _delta(left_values.get((stage_name, key)), right_values.get((stage_name, key))),
        )
        for stage_name, key in metric_slots_in_order(values)
    ]
    arguments = _differing([_argument_fields(run_facts) for run_facts in facts])
    environments = _differing([_environment_fields(run_facts) for run_facts in facts])
    return RunComparison(
        left_run_id=facts[0].run.run_id,
        right_run_id=facts[1].run.run_id,
        metric_deltas=tuple(deltas),
        artifact_changes=tuple(_artifact_changes(facts[0].artifacts, facts[1].artifacts)),
        argument_differences=tuple(FieldDifference(name, old, new) for name, (old, new) in arguments),
        environment_differences=tuple(FieldDifference(name, old, new) for name, (old, new) in environments),
        sample_metrics=tuple(
            _sample_delta(slot, aggregates[0].get(slot), aggregates[1].get(slot))
            for slot in _sample_slots(aggregates)
        ),
    )


def compare_multiple_runs(
    db: StoreDatabase,
    run_ids: Iterable[str],
    *,
    project: str | None = None,
    metric_keys: Iterable[str] | None = None,
) -> MultiRunComparison:
    """Several runs side by side, in the order given (duplicates dropped); with `metric_keys`, the
    metrics of those keys only (`NotFoundError` for a key no run recorded, naming the closest)."""
    check_run_ids(run_ids)
    with reading(db) as connection:
        runs = find_runs(connection, run_ids, project, needed_for="to compare")
        facts = [gather_facts(connection, run) for run in runs]
        values, aggregates = _named_metrics(connection, facts, metric_keys)
    metrics = tuple(
        MetricAcrossRuns(stage_name, key, tuple(run_values.get((stage_name, key)) for run_values in values))
        for stage_name, key in metric_slots_in_order(values)
    )
    return MultiRunComparison(
        run_ids=tuple(run.run_id for run in runs),
        metrics=metrics,
        argument_differences=tuple(
            FieldAcrossRuns(name, row) for name, row in _differing([_argument_fields(f) for f in facts])
        ),
        environment_differences=tuple(
            FieldAcrossRuns(name, row) for name, row in _differing([_environment_fields(f) for f in facts])
        ),
        sample_metrics=tuple(
            SampleMetricAcrossRuns(
                slot[0], slot[1], tuple(run_aggregates.get(slot) for run_aggregates in aggregates)
            )
            for slot in _sample_slots(aggregates)
        ),
    )
