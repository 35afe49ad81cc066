"""What a test reads back: scopes, metric points, events and artifacts, built from captured entries.

They are read from what every sink receives (`CapturedEntry`: its family, payload type and the
document of its capture-log line, or its validated contract model), so a test sees exactly what a
real workspace would have been given, and nothing here depends on how the writer builds entries.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contexta.capture import CapturedEntry
from contexta.contract import (
    ArtifactManifest,
    ArtifactSource,
    MetricRecord,
    RecordEnvelope,
    StructuredEventRecord,
)

__all__ = [
    "CapturedArtifact",
    "CapturedEvent",
    "CapturedMetric",
    "CapturedPoint",
    "CapturedScope",
    "Snapshot",
    "last_component",
    "read_entries",
]

# The payload type of each scope's opening and closing documents, and the kind a test names it by.
_SCOPE_KINDS = {
    "Run": "run",
    "StageExecution": "stage",
    "BatchExecution": "batch",
    "SampleObservation": "sample",
    "OperationExecution": "operation",
    "DeploymentExecution": "deployment",
}
# Where each kind's document names the scope it belongs to.
_PARENT_FIELDS = {
    "stage": ("run_ref",),
    "batch": ("stage_execution_ref",),
    "sample": ("batch_execution_ref", "stage_execution_ref"),
    "operation": ("stage_execution_ref",),
    "deployment": ("run_ref",),
}
_NAME_FIELDS = {
    "run": "name",
    "stage": "stage_name",
    "batch": "batch_name",
    "sample": "sample_name",
    "operation": "operation_name",
    "deployment": "deployment_name",
}


@dataclass(frozen=True, slots=True)
class CapturedScope:
    """A run, stage, batch, sample, operation or deployment as its last captured document left it.

    `status` is `open`, `completed`, `failed` or `cancelled`; a scope that did not end normally says
    why in `end_reason` (`exception`, `keyboard_interrupt`, `cancelled`, `contexta_closed`, ...)
    and, when an exception ended it, `failure` holds its `type`, `message` and `traceback`.
    `document` is the whole capture-log document (tags, config snapshot, dataset ref of a run, ...).
    """

    kind: str
    ref: str
    name: str
    status: str
    started_at: str
    ended_at: str | None
    end_reason: str | None
    failure: Mapping[str, Any] | None
    run_ref: str | None
    parent_ref: str | None
    document: Mapping[str, Any]

    def describe(self) -> str:
        """`sample 'case 3' (sample:p.r.evaluate.case-3-…) failed: exception, ValueError: bad case`."""
        text = f"{self.kind} {self.name!r} ({self.ref}) "
        text += "is still open" if self.status == "open" else f"ended {self.status}"
        if self.end_reason is not None:
            text += f": {self.end_reason}"
        if self.failure:
            text += f", {self.failure.get('type')}: {self.failure.get('message')}"
        return text


@dataclass(frozen=True, slots=True)
class CapturedPoint:
    """One metric value, where it was captured (`subject_ref` is the scope it was recorded on)."""

    key: str
    value: float | int
    step: int | None
    unit: str | None
    observed_at: str
    subject_ref: str | None
    run_ref: str | None
    stage_ref: str | None
    batch_ref: str | None
    sample_ref: str | None


@dataclass(frozen=True, slots=True)
class CapturedMetric(Sequence[CapturedPoint]):
    """One metric key's points, in capture order (a sequence of `CapturedPoint`)."""

    key: str
    points: tuple[CapturedPoint, ...]

    @property
    def values(self) -> list[float | int]:
        return [point.value for point in self.points]

    @property
    def steps(self) -> list[int | None]:
        return [point.step for point in self.points]

    @property
    def last(self) -> float | int:
        """The value captured last."""
        return self.points[-1].value

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> CapturedPoint:  # type: ignore[override]
        return self.points[index]

    def __iter__(self) -> Iterator[CapturedPoint]:
        return iter(self.points)


@dataclass(frozen=True, slots=True)
class CapturedEvent:
    """One event: its key, level, message and attributes (after secret redaction), and its scope."""

    key: str
    level: str
    message: str
    attributes: Mapping[str, Any]
    observed_at: str
    subject_ref: str | None
    run_ref: str | None


@dataclass(frozen=True, slots=True)
class CapturedArtifact:
    """A registered file: its kind, ref, path, BLAKE3 digest and size (`bound` is False for a file
    registered with `allow_missing=True` that did not exist)."""

    kind: str
    ref: str
    path: Path
    hash_value: str | None
    size_bytes: int | None
    attributes: Mapping[str, Any]
    run_ref: str
    stage_ref: str | None
    bound: bool
    manifest: ArtifactManifest


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything read from one list of entries, in capture order."""

    scopes: tuple[CapturedScope, ...]
    points: tuple[CapturedPoint, ...]
    events: tuple[CapturedEvent, ...]
    artifacts: tuple[CapturedArtifact, ...]
    records: tuple[Any, ...]
    names: Mapping[str, frozenset[str]]  # every name each scope ref was opened with

    def named(self, wanted: str, ref: str | None) -> bool:
        """Whether `wanted` names the scope `ref`: its ref, its name as typed, or its ref's last part."""
        if ref is None:
            return False
        return wanted in (ref, last_component(ref)) or wanted in self.names.get(ref, ())


def last_component(ref: str) -> str:
    """`train` for `stage:p.r.train`, `r` for `run:p.r`."""
    return ref.partition(":")[2].rpartition(".")[2]


def read_entries(entries: Sequence[CapturedEntry]) -> Snapshot:
    """The scopes (each execution once, as it was left), points, events, artifacts and records."""
    scopes: dict[tuple[str, str], CapturedScope] = {}
    points: list[CapturedPoint] = []
    events: list[CapturedEvent] = []
    artifacts: list[CapturedArtifact] = []
    records: list[Any] = []
    for entry in entries:
        if entry.family == "CONTEXT":
            scope = _scope(entry)
            if scope is not None:
                # A scope's opening and closing share its start: together they name one execution.
                scopes[(scope.ref, scope.started_at)] = scope
        elif entry.family == "ARTIFACT":
            artifacts.append(_artifact(entry.to_model()))
        elif entry.family == "RECORD":
            record = entry.to_model()
            records.append(record)
            if isinstance(record, MetricRecord):
                points.append(_point(record))
            elif isinstance(record, StructuredEventRecord):
                events.append(_event(record))
    names: dict[str, set[str]] = {}
    for scope in scopes.values():
        names.setdefault(scope.ref, set()).add(scope.name)
    return Snapshot(
        scopes=tuple(scopes.values()),
        points=tuple(points),
        events=tuple(events),
        artifacts=tuple(artifacts),
        records=tuple(records),
        names={ref: frozenset(found) for ref, found in names.items()},
    )


def _scope(entry: CapturedEntry) -> CapturedScope | None:
    kind = _SCOPE_KINDS.get(entry.payload_type)
    if kind is None:
        return None  # an environment snapshot
    document = entry.payload
    name = document.get("display_name") or document.get(_NAME_FIELDS[kind])
    parent = next((document[field] for field in _PARENT_FIELDS.get(kind, ()) if document.get(field)), None)
    return CapturedScope(
        kind=kind,
        ref=entry.payload_ref,
        name=name or last_component(entry.payload_ref),
        status=document["status"],
        started_at=document.get("started_at") or document["observed_at"],
        ended_at=document.get("ended_at"),
        end_reason=document.get("end_reason"),
        failure=document.get("failure"),
        run_ref=entry.payload_ref if kind == "run" else document.get("run_ref"),
        parent_ref=parent,
        document=document,
    )


def _point(record: MetricRecord) -> CapturedPoint:
    envelope: RecordEnvelope = record.envelope
    payload = record.payload
    return CapturedPoint(
        key=payload.metric_key,
        value=payload.value,
        step=payload.step,
        unit=payload.unit,
        observed_at=envelope.observed_at,
        subject_ref=payload.subject_ref,
        run_ref=envelope.run_ref,
        stage_ref=envelope.stage_execution_ref,
        batch_ref=envelope.batch_execution_ref,
        sample_ref=envelope.sample_observation_ref,
    )


def _event(record: StructuredEventRecord) -> CapturedEvent:
    payload = record.payload
    return CapturedEvent(
        key=payload.event_key,
        level=payload.level,
        message=payload.message,
        attributes=payload.attributes or {},
        observed_at=record.envelope.observed_at,
        subject_ref=payload.subject_ref,
        run_ref=record.envelope.run_ref,
    )


def _artifact(registration: Any) -> CapturedArtifact:
    manifest: ArtifactManifest = registration["manifest"]
    source: ArtifactSource = registration["source"]
    return CapturedArtifact(
        kind=manifest.artifact_kind,
        ref=manifest.artifact_ref,
        path=Path(source.uri),
        hash_value=manifest.hash_value,
        size_bytes=manifest.size_bytes,
        attributes=manifest.attributes or {},
        run_ref=manifest.run_ref,
        stage_ref=manifest.stage_execution_ref,
        bound=registration["binding_status"] == "BOUND",
        manifest=manifest,
    )
