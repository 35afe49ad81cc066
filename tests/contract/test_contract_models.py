"""Contract models validate on construction and are immutable afterwards."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from contexta.contract import (
    ArtifactManifest,
    ArtifactSource,
    BatchExecution,
    DegradedPayload,
    DegradedRecord,
    DeploymentExecution,
    MetricPayload,
    MetricRecord,
    OperationExecution,
    Project,
    RecordEnvelope,
    Run,
    SampleObservation,
    StageExecution,
    StructuredEventPayload,
    StructuredEventRecord,
    TraceSpanPayload,
    TraceSpanRecord,
    parse_ref,
    parse_timestamp,
)
from contexta.errors import ValidationError

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-01T01:00:00Z"
DIGEST = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"

# The five models with a status lifecycle (status, started_at, ended_at), each as its minimal valid kwargs.
LIFECYCLE_MODELS: dict[type[Any], dict[str, Any]] = {
    Run: {"run_ref": "run:p.r", "project_ref": "project:p", "name": "r"},
    StageExecution: {"stage_execution_ref": "stage:p.r.s", "run_ref": "run:p.r", "stage_name": "s"},
    BatchExecution: {
        "batch_execution_ref": "batch:p.r.s.b",
        "run_ref": "run:p.r",
        "stage_execution_ref": "stage:p.r.s",
        "batch_name": "b",
    },
    OperationExecution: {
        "operation_ref": "operation:p.r.s.o",
        "run_ref": "run:p.r",
        "stage_execution_ref": "stage:p.r.s",
        "operation_name": "o",
    },
    DeploymentExecution: {
        "deployment_execution_ref": "deployment:p.d",
        "project_ref": "project:p",
        "deployment_name": "d",
    },
}

# model -> (its ref field, its name field)
NAME_FIELDS: dict[type[Any], tuple[str, str]] = {
    Project: ("project_ref", "name"),
    Run: ("run_ref", "name"),
    StageExecution: ("stage_execution_ref", "stage_name"),
    BatchExecution: ("batch_execution_ref", "batch_name"),
    OperationExecution: ("operation_ref", "operation_name"),
    DeploymentExecution: ("deployment_execution_ref", "deployment_name"),
    SampleObservation: ("sample_observation_ref", "sample_name"),
}


def context_kwargs(model: type[Any]) -> dict[str, Any]:
    """Minimal valid keyword arguments for any context model."""
    if model is Project:
        return {"project_ref": "project:p", "name": "p", "created_at": T0}
    if model is SampleObservation:
        return {
            "sample_observation_ref": "sample:p.r.s.x",
            "run_ref": "run:p.r",
            "stage_execution_ref": "stage:p.r.s",
            "sample_name": "x",
            "observed_at": T0,
        }
    return {**LIFECYCLE_MODELS[model], "status": "open", "started_at": T0}


def envelope(**overrides: Any) -> RecordEnvelope:
    values: dict[str, Any] = {
        "record_ref": "record:p.r.r00001",
        "record_type": "metric",
        "recorded_at": T1,
        "observed_at": T1,
        "producer_ref": "tests",
        "run_ref": "run:p.r",
    }
    values.update(overrides)
    return RecordEnvelope(**values)


def metric(value: Any, key: str = "accuracy", value_type: str = "float64") -> MetricPayload:
    return MetricPayload(metric_key=key, value=value, value_type=value_type)


@contextmanager
def raises_code(code: str) -> Iterator[None]:
    """`pytest.raises(ValidationError)` that also checks the error's code."""
    with pytest.raises(ValidationError) as excinfo:
        yield
    assert excinfo.value.code == code, f"expected code {code!r}, got {excinfo.value!s}"


# -- context models: construction ----------------------------------------------------------------


@pytest.mark.parametrize("model", list(NAME_FIELDS), ids=lambda m: m.__name__)
def test_minimal_context_model_is_valid(model: type[Any]) -> None:
    instance = model(**context_kwargs(model))
    ref_field, name_field = NAME_FIELDS[model]
    assert getattr(instance, name_field) == parse_ref(getattr(instance, ref_field)).name


@pytest.mark.parametrize("model", list(LIFECYCLE_MODELS), ids=lambda m: m.__name__)
@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_terminal_status_with_ended_at_is_valid(model: type[Any], status: str) -> None:
    instance = model(**{**context_kwargs(model), "status": status, "ended_at": T1})
    assert instance.status == status
    assert instance.ended_at == T1


@pytest.mark.parametrize("model", list(LIFECYCLE_MODELS), ids=lambda m: m.__name__)
@pytest.mark.parametrize("status", ["running", "done", "OPEN", "", None])
def test_status_outside_the_four_values_is_rejected(model: type[Any], status: Any) -> None:
    with pytest.raises(ValidationError):
        model(**{**context_kwargs(model), "status": status, "ended_at": T1})


@pytest.mark.parametrize("model", list(LIFECYCLE_MODELS), ids=lambda m: m.__name__)
@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_terminal_status_needs_ended_at(model: type[Any], status: str) -> None:
    with raises_code("lifecycle_invalid"):
        model(**{**context_kwargs(model), "status": status})


@pytest.mark.parametrize("model", list(LIFECYCLE_MODELS), ids=lambda m: m.__name__)
def test_open_status_forbids_ended_at(model: type[Any]) -> None:
    with raises_code("lifecycle_invalid"):
        model(**{**context_kwargs(model), "status": "open", "ended_at": T1})


@pytest.mark.parametrize("model", list(LIFECYCLE_MODELS), ids=lambda m: m.__name__)
def test_ended_at_before_started_at_is_compared_as_instants(model: type[Any]) -> None:
    # As text "...00Z" sorts after "...00.5Z"; as instants it is half a second earlier.
    with raises_code("lifecycle_invalid"):
        model(
            **{
                **context_kwargs(model),
                "status": "completed",
                "started_at": "2025-01-01T00:00:00.5Z",
                "ended_at": "2025-01-01T00:00:00Z",
            }
        )
    # ...and the other way round is fine, although the text comparison would say otherwise.
    instance = model(
        **{
            **context_kwargs(model),
            "status": "completed",
            "started_at": "2025-01-01T00:00:00Z",
            "ended_at": "2025-01-01T00:00:00.5Z",
        }
    )
    assert instance.ended_at == "2025-01-01T00:00:00.5Z"


@pytest.mark.parametrize("model", list(LIFECYCLE_MODELS), ids=lambda m: m.__name__)
def test_ended_at_equal_to_started_at_is_valid(model: type[Any]) -> None:
    instance = model(**{**context_kwargs(model), "status": "completed", "started_at": T0, "ended_at": T0})
    assert instance.started_at == instance.ended_at == T0


def test_timezone_aware_datetimes_are_compared_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    started = datetime(2025, 1, 1, 1, 0, tzinfo=plus_two)  # 2024-12-31T23:00:00Z
    run = Run(**{**context_kwargs(Run), "status": "completed", "started_at": started, "ended_at": T0})
    assert isinstance(run.started_at, str)
    assert run.started_at.endswith("Z")
    assert parse_timestamp(run.started_at) == started

    # 01:00 at +02:00 is 23:00 UTC the day before: before a start at midnight UTC.
    with raises_code("lifecycle_invalid"):
        Run(
            **{
                **context_kwargs(Run),
                "status": "completed",
                "started_at": T0,
                "ended_at": datetime(2025, 1, 1, 1, 0, tzinfo=plus_two),
            }
        )


def test_utc_datetime_inputs_are_stored_as_z_strings() -> None:
    started = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    stage = StageExecution(**{**context_kwargs(StageExecution), "started_at": started})
    assert isinstance(stage.started_at, str)
    assert stage.started_at.endswith("Z")
    assert parse_timestamp(stage.started_at) == started


@pytest.mark.parametrize("model", list(NAME_FIELDS), ids=lambda m: m.__name__)
def test_naive_datetime_is_rejected(model: type[Any]) -> None:
    field = {Project: "created_at", SampleObservation: "observed_at"}.get(model, "started_at")
    with raises_code("timestamp_invalid"):
        model(**{**context_kwargs(model), field: datetime(2025, 1, 1, 0, 0)})


@pytest.mark.parametrize(
    "value",
    ["2025-01-01T00:00:00", "2025-01-01T00:00:00+00:00", "yesterday", "2025-13-01T00:00:00Z", "", 1735689600],
)
def test_timestamps_must_be_iso_8601_utc_strings_ending_in_z(value: Any) -> None:
    with raises_code("timestamp_invalid"):
        Run(**{**context_kwargs(Run), "started_at": value})


# -- context models: refs and names --------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "overrides"),
    [
        (Run, {"project_ref": "project:q"}),
        (StageExecution, {"stage_execution_ref": "stage:p.other-run.s"}),
        (StageExecution, {"run_ref": "run:q.r"}),
        (
            BatchExecution,
            {"stage_execution_ref": "stage:p.other-run.s", "batch_execution_ref": "batch:p.other-run.s.b"},
        ),
        (BatchExecution, {"batch_execution_ref": "batch:p.r.other-stage.b"}),
        (OperationExecution, {"operation_ref": "operation:p.r.other-stage.o"}),
        (SampleObservation, {"sample_observation_ref": "sample:p.r.other-stage.x"}),
        (
            SampleObservation,
            {
                "stage_execution_ref": "stage:p.other-run.s",
                "sample_observation_ref": "sample:p.other-run.s.x",
            },
        ),
        (
            SampleObservation,
            {"batch_execution_ref": "batch:p.r.other-stage.b", "sample_observation_ref": "sample:p.r.s.b.x"},
        ),
        (
            SampleObservation,
            {"batch_execution_ref": "batch:p.r.s.b", "sample_observation_ref": "sample:p.r.s.c.x"},
        ),
        (SampleObservation, {"batch_execution_ref": "batch:p.r.s.b"}),  # a stage-level ref under a batch
        (DeploymentExecution, {"deployment_execution_ref": "deployment:q.d"}),
        (DeploymentExecution, {"run_ref": "run:q.r"}),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_child_ref_must_extend_its_parent_ref(model: type[Any], overrides: dict[str, Any]) -> None:
    with raises_code("ref_parent_mismatch"):
        model(**{**context_kwargs(model), **overrides})


def test_sample_observation_under_a_batch() -> None:
    sample = SampleObservation(
        **{
            **context_kwargs(SampleObservation),
            "batch_execution_ref": "batch:p.r.s.b",
            "sample_observation_ref": "sample:p.r.s.b.x",
        }
    )
    assert sample.batch_execution_ref == "batch:p.r.s.b"


def test_deployment_linked_to_a_run_and_artifact_of_its_project() -> None:
    deployment = DeploymentExecution(
        **{
            **context_kwargs(DeploymentExecution),
            "run_ref": "run:p.r",
            "artifact_ref": "artifact:p.r.model-0123456789ab",
        }
    )
    assert deployment.run_ref == "run:p.r"


@pytest.mark.parametrize(
    ("model", "overrides"),
    [
        (Run, {"run_ref": "stage:p.r.s"}),
        (Run, {"project_ref": "run:p.r"}),
        (StageExecution, {"stage_execution_ref": "batch:p.r.s.b"}),
        (BatchExecution, {"stage_execution_ref": "run:p.r"}),
        (SampleObservation, {"sample_observation_ref": "stage:p.r.s"}),
        (DeploymentExecution, {"artifact_ref": "run:p.r"}),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_ref_of_the_wrong_kind_is_a_kind_mismatch(model: type[Any], overrides: dict[str, Any]) -> None:
    with raises_code("ref_kind_mismatch"):
        model(**{**context_kwargs(model), **overrides})


@pytest.mark.parametrize("value", ["run:P.R", "run:p", "p.r", "", None])
def test_malformed_ref_in_a_model_is_ref_invalid(value: Any) -> None:
    with raises_code("ref_invalid"):
        Run(**{**context_kwargs(Run), "run_ref": value})


@pytest.mark.parametrize("name", ["x.y", "a.b.c"])
def test_sample_name_with_a_dot_is_rejected(name: str) -> None:
    with raises_code("name_invalid"):
        SampleObservation(**{**context_kwargs(SampleObservation), "sample_name": name})


@pytest.mark.parametrize("model", list(NAME_FIELDS), ids=lambda m: m.__name__)
def test_name_must_match_the_refs_last_component(model: type[Any]) -> None:
    _, name_field = NAME_FIELDS[model]
    with raises_code("ref_name_mismatch"):
        model(**{**context_kwargs(model), name_field: "something-else"})


@pytest.mark.parametrize("model", list(NAME_FIELDS), ids=lambda m: m.__name__)
@pytest.mark.parametrize("name", ["Linear SVM", "UPPER", "a_b", "-x", ""])
def test_name_must_already_be_normalised(model: type[Any], name: str) -> None:
    _, name_field = NAME_FIELDS[model]
    with raises_code("name_invalid"):
        model(**{**context_kwargs(model), name_field: name})


@pytest.mark.parametrize(
    "model", [StageExecution, BatchExecution, DeploymentExecution], ids=lambda m: m.__name__
)
@pytest.mark.parametrize("order_index", [-1, 1.5, "0", True])
def test_order_index_must_be_a_non_negative_int(model: type[Any], order_index: Any) -> None:
    with pytest.raises(ValidationError):
        model(**{**context_kwargs(model), "order_index": order_index})
    assert model(**{**context_kwargs(model), "order_index": 0}).order_index == 0


def test_run_mappings_must_be_json_serialisable() -> None:
    run = Run(
        **{
            **context_kwargs(Run),
            "tags": {"team": "vision"},
            "config_snapshot": {"lr": 0.1, "layers": [1, 2]},
        }
    )
    assert run.config_snapshot == {"lr": 0.1, "layers": [1, 2]}
    with pytest.raises(ValidationError):
        Run(**{**context_kwargs(Run), "config_snapshot": {"optimizer": object()}})


# -- records -------------------------------------------------------------------------------------


def test_envelope_with_every_level_of_context() -> None:
    full = envelope(
        stage_execution_ref="stage:p.r.s",
        batch_execution_ref="batch:p.r.s.b",
        sample_observation_ref="sample:p.r.s.b.x",
    )
    assert full.sample_observation_ref == "sample:p.r.s.b.x"
    stage_level_sample = envelope(stage_execution_ref="stage:p.r.s", sample_observation_ref="sample:p.r.s.x")
    assert stage_level_sample.batch_execution_ref is None
    assert full.completeness_marker == "complete"
    assert full.degradation_marker == "none"


def test_envelope_owned_by_a_deployment() -> None:
    owned = envelope(record_ref="record:p.d.r1", run_ref=None, deployment_execution_ref="deployment:p.d")
    assert owned.run_ref is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"record_ref": "record:p.other-run.r1"},
        {"stage_execution_ref": "stage:p.other-run.s"},
        {"stage_execution_ref": "stage:p.r.s", "batch_execution_ref": "batch:p.r.other-stage.b"},
        {"stage_execution_ref": "stage:p.r.s", "sample_observation_ref": "sample:p.r.other-stage.x"},
        {
            "stage_execution_ref": "stage:p.r.s",
            "batch_execution_ref": "batch:p.r.s.b",
            "sample_observation_ref": "sample:p.r.s.other-batch.x",
        },
        {"record_ref": "record:p.r.r1", "run_ref": None, "deployment_execution_ref": "deployment:p.d"},
    ],
)
def test_envelope_refs_must_agree_with_their_parents(overrides: dict[str, Any]) -> None:
    with raises_code("ref_parent_mismatch"):
        envelope(**overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {"run_ref": None},
        {"batch_execution_ref": "batch:p.r.s.b"},
        {"sample_observation_ref": "sample:p.r.s.x"},
        {
            "record_ref": "record:p.d.r1",
            "run_ref": None,
            "deployment_execution_ref": "deployment:p.d",
            "stage_execution_ref": "stage:p.d.s",
        },
    ],
)
def test_envelope_without_a_needed_parent_ref_is_ref_missing(overrides: dict[str, Any]) -> None:
    with raises_code("ref_missing"):
        envelope(**overrides)


@pytest.mark.parametrize("record_type", ["gauge", "", None, "METRIC"])
def test_envelope_record_type_must_be_known(record_type: Any) -> None:
    with pytest.raises(ValidationError):
        envelope(record_type=record_type)


@pytest.mark.parametrize("value", [True, False, "0.9", "NaN", b"1", None, [0.9], {}])
def test_metric_value_must_be_a_number(value: Any) -> None:
    with raises_code("metric_value_invalid"):
        metric(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_metric_values_that_are_not_finite_are_kept(value: float) -> None:
    # A diverged loss is a fact worth keeping: a hand-written record holds it as the same float.
    kept = metric(value).value
    assert type(kept) is float
    assert math.isnan(kept) if math.isnan(value) else kept == value


def test_metric_value_accepts_plain_ints_and_floats() -> None:
    assert metric(0.97).value == 0.97
    integral = metric(3, value_type="int64")
    assert integral.value == 3
    assert type(integral.value) is int
    assert metric(-1e300).value == -1e300


def test_numpy_scalars_are_converted_to_python_numbers() -> None:
    np = pytest.importorskip("numpy")
    as_float = metric(np.float32(0.5))
    assert as_float.value == 0.5
    assert type(as_float.value) is float
    as_int = metric(np.int64(7), value_type="int64")
    assert as_int.value == 7
    assert type(as_int.value) is int
    zero_d = metric(np.array(1.25))
    assert zero_d.value == 1.25
    assert type(zero_d.value) is float
    assert type(metric(np.float64(0.1)).value) is float


@pytest.mark.parametrize("make", ["bool", "vector"])
def test_numpy_values_that_are_not_scalars_are_rejected(make: str) -> None:
    np = pytest.importorskip("numpy")
    value = {"bool": np.bool_(True), "vector": np.array([1.0, 2.0])}[make]
    with raises_code("metric_value_invalid"):
        metric(value)


def test_numpy_values_that_are_not_finite_are_kept_as_floats() -> None:
    np = pytest.importorskip("numpy")
    assert math.isnan(metric(np.float32("nan")).value)
    assert metric(np.float64("inf")).value == math.inf
    assert metric(np.array(-np.inf)).value == -math.inf


@pytest.mark.parametrize(
    "key", ["val_loss", "train/loss", "macro.f1", "accuracy", "_private", "0", "a-b", "x" * 200]
)
def test_valid_metric_keys(key: str) -> None:
    assert metric(1.0, key=key).metric_key == key


@pytest.mark.parametrize("key", ["", "-x", "/x", ".x", "a b", "a:b", "loss!", "x" * 201, None, 3])
def test_invalid_metric_keys_are_metric_key_invalid(key: Any) -> None:
    with raises_code("metric_key_invalid"):
        metric(1.0, key=key)


@pytest.mark.parametrize("step", [-1, 1.0, "1", True])
def test_metric_step_must_be_a_non_negative_int(step: Any) -> None:
    with pytest.raises(ValidationError):
        MetricPayload(metric_key="loss", value=0.1, value_type="float64", step=step)
    assert MetricPayload(metric_key="loss", value=0.1, value_type="float64", step=0).step == 0


def test_event_payload_checks_level_and_attributes() -> None:
    event = StructuredEventPayload(
        event_key="dataset.loaded",
        level="info",
        message="loaded",
        attributes={"rows": 150, "columns": ["a", "b"]},
    )
    assert event.attributes == {"rows": 150, "columns": ["a", "b"]}
    with pytest.raises(ValidationError):
        StructuredEventPayload(event_key="dataset.loaded", level="loud", message="loaded")
    with raises_code("attributes_invalid"):
        StructuredEventPayload(event_key="x", level="info", message="m", attributes={"handle": object()})
    with raises_code("attributes_invalid"):
        StructuredEventPayload(event_key="x", level="info", message="m", attributes={"score": math.nan})


def test_span_payload_end_before_start_is_rejected_as_instants() -> None:
    span = TraceSpanPayload(
        span_name="forward", started_at="2025-01-01T00:00:00Z", ended_at="2025-01-01T00:00:00.5Z"
    )
    assert span.status == "ok"
    with raises_code("lifecycle_invalid"):
        TraceSpanPayload(
            span_name="forward", started_at="2025-01-01T00:00:00.5Z", ended_at="2025-01-01T00:00:00Z"
        )


def test_degraded_payload_counts_must_be_non_negative() -> None:
    degraded = DegradedPayload(reason_code="queue_overflow", message="dropped 3 records", dropped_count=3)
    assert degraded.dropped_count == 3
    with pytest.raises(ValidationError):
        DegradedPayload(reason_code="queue_overflow", message="m", dropped_count=-1)


RECORD_CASES: list[tuple[type[Any], str, Any]] = [
    (MetricRecord, "metric", metric(0.5)),
    (StructuredEventRecord, "event", StructuredEventPayload(event_key="e", level="info", message="m")),
    (TraceSpanRecord, "span", TraceSpanPayload(span_name="s", started_at=T0, ended_at=T1)),
    (DegradedRecord, "degraded", DegradedPayload(reason_code="queue_overflow", message="m")),
]


@pytest.mark.parametrize(
    ("record_class", "record_type", "payload"), RECORD_CASES, ids=[case[0].__name__ for case in RECORD_CASES]
)
def test_record_envelope_type_must_match_the_record_class(
    record_class: type[Any], record_type: str, payload: Any
) -> None:
    record = record_class(envelope=envelope(record_type=record_type), payload=payload)
    assert record.envelope.record_type == record_type
    for other in {"metric", "event", "span", "degraded"} - {record_type}:
        with raises_code("record_type_mismatch"):
            record_class(envelope=envelope(record_type=other), payload=payload)


@pytest.mark.parametrize(
    ("record_class", "record_type", "payload"), RECORD_CASES, ids=[case[0].__name__ for case in RECORD_CASES]
)
def test_record_payload_must_be_the_matching_payload_class(
    record_class: type[Any], record_type: str, payload: Any
) -> None:
    wrong = RECORD_CASES[0][2] if record_class is not MetricRecord else RECORD_CASES[1][2]
    with pytest.raises(ValidationError):
        record_class(envelope=envelope(record_type=record_type), payload=wrong)
    with pytest.raises(ValidationError):
        record_class(envelope=envelope(record_type=record_type).to_dict(), payload=payload)


# -- artifacts -----------------------------------------------------------------------------------


def manifest(**overrides: Any) -> ArtifactManifest:
    values: dict[str, Any] = {
        "artifact_ref": "artifact:p.r.model-0123456789ab",
        "artifact_kind": "model",
        "run_ref": "run:p.r",
        "location_ref": "path:/tmp/model.pkl",
        "created_at": T0,
        "hash_value": DIGEST,
        "size_bytes": 1024,
    }
    values.update(overrides)
    return ArtifactManifest(**values)


def test_artifact_manifest_defaults_to_blake3() -> None:
    made = manifest()
    assert made.hash_algorithm == "blake3"
    assert made.hash_value == DIGEST
    assert manifest(size_bytes=0).size_bytes == 0
    assert manifest(hash_value=None, size_bytes=None).hash_value is None  # a PENDING artifact


@pytest.mark.parametrize(
    "hash_value",
    [DIGEST[:-1], DIGEST + "0", "g" * 64, "", "0x" + DIGEST[:62], 12345],
)
def test_artifact_digest_must_be_64_hex_characters(hash_value: Any) -> None:
    with pytest.raises(ValidationError):
        manifest(hash_value=hash_value)


@pytest.mark.parametrize("algorithm", ["sha256", "md5", "BLAKE3", ""])
def test_artifact_hash_algorithm_must_be_blake3(algorithm: str) -> None:
    with pytest.raises(ValidationError):
        manifest(hash_algorithm=algorithm)


@pytest.mark.parametrize("size", [-1, 1.5, "10", True])
def test_artifact_size_must_be_a_non_negative_int(size: Any) -> None:
    with pytest.raises(ValidationError):
        manifest(size_bytes=size)


def test_artifact_refs_must_agree_with_the_run() -> None:
    with raises_code("ref_parent_mismatch"):
        manifest(artifact_ref="artifact:p.other-run.model-0123456789ab")
    with raises_code("ref_parent_mismatch"):
        manifest(stage_execution_ref="stage:p.other-run.s")
    assert manifest(stage_execution_ref="stage:p.r.train").stage_execution_ref == "stage:p.r.train"


def test_artifact_source_exists_must_be_a_bool() -> None:
    assert ArtifactSource(uri="/tmp/model.pkl", exists=False).kind == "PATH"
    with pytest.raises(ValidationError):
        ArtifactSource(uri="/tmp/model.pkl", exists="yes")  # type: ignore[arg-type]


# -- immutability --------------------------------------------------------------------------------


FROZEN_CASES: list[tuple[Any, str]] = [
    *[(model(**context_kwargs(model)), NAME_FIELDS[model][1]) for model in NAME_FIELDS],
    (envelope(), "run_ref"),
    (metric(0.5), "value"),
    (MetricRecord(envelope=envelope(), payload=metric(0.5)), "payload"),
    (manifest(), "hash_value"),
]


@pytest.mark.parametrize(
    ("instance", "field"), FROZEN_CASES, ids=[type(case[0]).__name__ for case in FROZEN_CASES]
)
def test_models_are_frozen(instance: Any, field: str) -> None:
    before = getattr(instance, field)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(instance, field, "changed")
    assert getattr(instance, field) == before


def test_models_are_hashable_and_compare_by_value() -> None:
    first = Run(**context_kwargs(Run))
    second = Run(**context_kwargs(Run))
    assert first == second
    assert hash(first) == hash(second)
