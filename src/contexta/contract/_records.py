"""Record models: what happened inside a context (metrics, events, spans, and degraded markers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from contexta.contract._checks import (
    check_child_ref,
    check_choice,
    check_component,
    check_metric_key,
    check_optional_ref,
    check_ref,
    check_step,
    check_text,
    check_timestamp,
    json_attributes,
    metric_number,
)
from contexta.contract._model import ContractModel
from contexta.contract._non_finite import decode_metric_value
from contexta.contract._refs import ParsedRef, parse_ref
from contexta.contract._timestamps import parse_timestamp
from contexta.errors import ValidationError

__all__ = [
    "AGGREGATION_SCOPES",
    "EVENT_LEVELS",
    "PRODUCER_REF",
    "SCHEMA_VERSION",
    "DegradedPayload",
    "DegradedRecord",
    "MetricPayload",
    "MetricRecord",
    "RecordEnvelope",
    "StructuredEventPayload",
    "StructuredEventRecord",
    "TraceSpanPayload",
    "TraceSpanRecord",
]

SCHEMA_VERSION = "1.0"
# Who wrote a record, when its envelope names nobody else: live capture (the capture log, the store).
PRODUCER_REF = "contexta.capture"
RECORD_TYPES = ("metric", "event", "span", "degraded")
EVENT_LEVELS = ("debug", "info", "warning", "error", "critical")
SPAN_STATUSES = ("ok", "error", "cancelled")
AGGREGATION_SCOPES = ("point", "step", "batch", "epoch", "sample", "stage", "run", "window", "dataset")
VALUE_TYPES = ("float64", "int64")


def _set(model: object, name: str, value: Any) -> None:
    object.__setattr__(model, name, value)


@dataclass(frozen=True, slots=True)
class RecordEnvelope(ContractModel):
    """Who recorded what, when, and exactly where in the run tree."""

    record_ref: str
    record_type: str
    recorded_at: str
    observed_at: str
    producer_ref: str
    run_ref: str | None = None
    stage_execution_ref: str | None = None
    batch_execution_ref: str | None = None
    sample_observation_ref: str | None = None
    deployment_execution_ref: str | None = None
    completeness_marker: str = "complete"
    degradation_marker: str = "none"
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        record = check_ref(self.record_ref, "record", "record_ref")
        check_choice(self.record_type, RECORD_TYPES, "record_type")
        _set(self, "recorded_at", check_timestamp(self.recorded_at, "recorded_at"))
        _set(self, "observed_at", check_timestamp(self.observed_at, "observed_at"))
        check_text(self.producer_ref, "producer_ref", optional=False)
        run = check_optional_ref(self.run_ref, "run", "run_ref")
        deployment = check_optional_ref(
            self.deployment_execution_ref, "deployment", "deployment_execution_ref"
        )
        owner: ParsedRef | None = run or deployment
        if owner is None:
            raise ValidationError(
                "a record needs a run_ref (or a deployment_execution_ref)", code="ref_missing"
            )
        if record.components[:2] != owner.components:
            raise ValidationError(
                f"record_ref {record.ref!r} does not belong to {owner.ref!r}", code="ref_parent_mismatch"
            )
        stage = check_optional_ref(self.stage_execution_ref, "stage", "stage_execution_ref")
        batch = check_optional_ref(self.batch_execution_ref, "batch", "batch_execution_ref")
        sample = check_optional_ref(self.sample_observation_ref, "sample", "sample_observation_ref")
        if stage is not None:
            if run is None:
                raise ValidationError("stage_execution_ref needs run_ref", code="ref_missing")
            check_child_ref(stage, run, "stage_execution_ref", "run_ref")
        if (batch is not None or sample is not None) and stage is None:
            raise ValidationError("batch and sample refs need stage_execution_ref", code="ref_missing")
        if batch is not None and stage is not None:
            check_child_ref(batch, stage, "batch_execution_ref", "stage_execution_ref")
        if sample is not None:
            owner_ref = batch if batch is not None and len(sample.components) == 5 else stage
            assert owner_ref is not None
            check_child_ref(sample, owner_ref, "sample_observation_ref", "its stage or batch")
        check_component(self.completeness_marker, "completeness_marker")
        check_component(self.degradation_marker, "degradation_marker")
        check_text(self.schema_version, "schema_version", optional=False)


@dataclass(frozen=True, slots=True)
class MetricPayload(ContractModel):
    metric_key: str
    value: float | int
    value_type: str
    unit: str | None = None
    step: int | None = None
    aggregation_scope: str = "step"
    subject_ref: str | None = None
    tags: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_metric_key(self.metric_key)
        # NaN and infinities are values a diverging job really produced: kept, and read back as such.
        _set(self, "value", metric_number(self.value, self.metric_key, allow_non_finite=True))
        check_choice(self.value_type, VALUE_TYPES, "value_type")
        check_text(self.unit, "unit")
        check_step(self.step)
        check_choice(self.aggregation_scope, AGGREGATION_SCOPES, "aggregation_scope")
        if self.subject_ref is not None:
            parse_ref(self.subject_ref)
        _set(self, "tags", json_attributes(self.tags, "tags"))

    @classmethod
    def _decoded(cls, values: dict[str, Any]) -> dict[str, Any]:
        """In JSON (the capture log, `to_json`) a non-finite value is written as its token ("NaN",
        "Infinity", "-Infinity"): read back as the float. Only from JSON: a model built in code
        with a string value is refused like any string."""
        value = values.get("value")
        if type(value) is str and values.get("value_type") == "float64":
            values["value"] = decode_metric_value(value)
        return values


@dataclass(frozen=True, slots=True)
class StructuredEventPayload(ContractModel):
    event_key: str
    level: str
    message: str
    attributes: dict[str, Any] | None = None
    origin_marker: str = "explicit_capture"
    subject_ref: str | None = None

    def __post_init__(self) -> None:
        check_metric_key(self.event_key)
        check_choice(self.level, EVENT_LEVELS, "level")
        check_text(self.message, "message", optional=False)
        _set(self, "attributes", json_attributes(self.attributes))
        check_text(self.origin_marker, "origin_marker", optional=False)
        if self.subject_ref is not None:
            parse_ref(self.subject_ref)


@dataclass(frozen=True, slots=True)
class TraceSpanPayload(ContractModel):
    span_name: str
    started_at: str
    ended_at: str
    status: str = "ok"
    attributes: dict[str, Any] | None = None
    subject_ref: str | None = None

    def __post_init__(self) -> None:
        check_metric_key(self.span_name)
        _set(self, "started_at", check_timestamp(self.started_at, "started_at"))
        _set(self, "ended_at", check_timestamp(self.ended_at, "ended_at"))
        if parse_timestamp(self.ended_at) < parse_timestamp(self.started_at):
            raise ValidationError(f"span {self.span_name!r} ends before it starts", code="lifecycle_invalid")
        check_choice(self.status, SPAN_STATUSES, "status")
        _set(self, "attributes", json_attributes(self.attributes))
        if self.subject_ref is not None:
            parse_ref(self.subject_ref)


@dataclass(frozen=True, slots=True)
class DegradedPayload(ContractModel):
    """What was lost or damaged, how much, and when: the loss is recorded, never silent."""

    reason_code: str
    message: str
    dropped_count: int = 0
    first_observed_at: str | None = None
    last_observed_at: str | None = None
    attributes: dict[str, Any] | None = None
    subject_ref: str | None = None

    def __post_init__(self) -> None:
        check_metric_key(self.reason_code)
        check_text(self.message, "message", optional=False)
        if type(self.dropped_count) is not int or self.dropped_count < 0:
            raise ValidationError("dropped_count must be a non-negative int", code="field_invalid")
        for field in ("first_observed_at", "last_observed_at"):
            if getattr(self, field) is not None:
                _set(self, field, check_timestamp(getattr(self, field), field))
        _set(self, "attributes", json_attributes(self.attributes))


class _Record(ContractModel):
    """An envelope and a payload; the record class fixes the record type and the payload model."""

    __slots__ = ()
    record_type: ClassVar[str]
    envelope: RecordEnvelope
    payload: Any

    def __post_init__(self) -> None:
        if not isinstance(self.envelope, RecordEnvelope):
            raise ValidationError("envelope must be a RecordEnvelope", code="field_invalid")
        if self.envelope.record_type != self.record_type:
            raise ValidationError(
                f"a {type(self).__name__} needs record_type {self.record_type!r}, "
                f"not {self.envelope.record_type!r}",
                code="record_type_mismatch",
            )
        payload_model = self.nested_models["payload"]
        if not isinstance(self.payload, payload_model):
            raise ValidationError(f"payload must be a {payload_model.__name__}", code="field_invalid")


@dataclass(frozen=True, slots=True)
class MetricRecord(_Record):
    record_type: ClassVar[str] = "metric"
    nested_models: ClassVar[dict[str, type[ContractModel]]] = {
        "envelope": RecordEnvelope,
        "payload": MetricPayload,
    }
    envelope: RecordEnvelope
    payload: MetricPayload


@dataclass(frozen=True, slots=True)
class StructuredEventRecord(_Record):
    record_type: ClassVar[str] = "event"
    nested_models: ClassVar[dict[str, type[ContractModel]]] = {
        "envelope": RecordEnvelope,
        "payload": StructuredEventPayload,
    }
    envelope: RecordEnvelope
    payload: StructuredEventPayload


@dataclass(frozen=True, slots=True)
class TraceSpanRecord(_Record):
    record_type: ClassVar[str] = "span"
    nested_models: ClassVar[dict[str, type[ContractModel]]] = {
        "envelope": RecordEnvelope,
        "payload": TraceSpanPayload,
    }
    envelope: RecordEnvelope
    payload: TraceSpanPayload


@dataclass(frozen=True, slots=True)
class DegradedRecord(_Record):
    record_type: ClassVar[str] = "degraded"
    nested_models: ClassVar[dict[str, type[ContractModel]]] = {
        "envelope": RecordEnvelope,
        "payload": DegradedPayload,
    }
    envelope: RecordEnvelope
    payload: DegradedPayload
