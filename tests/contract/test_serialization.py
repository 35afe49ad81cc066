"""`to_json` / `from_json` round-trip every contract model, and refuse what is not one."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from contexta import contract
from contexta.contract import (
    ArtifactManifest,
    ArtifactSource,
    BatchExecution,
    DegradedPayload,
    DegradedRecord,
    DeploymentExecution,
    EnvironmentSnapshot,
    LineageEdge,
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
    from_json,
    model_from_dict,
    to_json,
)
from contexta.errors import ValidationError

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-01T00:00:01.250000Z"
DIGEST = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def envelope(record_type: str, **overrides: Any) -> RecordEnvelope:
    values: dict[str, Any] = {
        "record_ref": "record:iris-svm.linear-svm.r00001",
        "record_type": record_type,
        "recorded_at": T1,
        "observed_at": T0,
        "producer_ref": "contexta.tests",
        "run_ref": "run:iris-svm.linear-svm",
        "stage_execution_ref": "stage:iris-svm.linear-svm.evaluate",
        "batch_execution_ref": "batch:iris-svm.linear-svm.evaluate.holdout-split",
        "sample_observation_ref": "sample:iris-svm.linear-svm.evaluate.holdout-split.case-1",
    }
    values.update(overrides)
    return RecordEnvelope(**values)


METRIC = MetricPayload(
    metric_key="macro.f1",
    value=0.96,
    value_type="float64",
    unit="ratio",
    step=3,
    aggregation_scope="batch",
    subject_ref="sample:iris-svm.linear-svm.evaluate.case-1",
    tags={"split": "holdout"},
)
EVENT = StructuredEventPayload(
    event_key="dataset.loaded",
    level="warning",
    message="150 rows",
    attributes={"rows": 150, "nested": {"ok": True, "items": [1, 2.5, None]}},
    subject_ref="run:iris-svm.linear-svm",
)
SPAN = TraceSpanPayload(
    span_name="forward",
    started_at=T0,
    ended_at=T1,
    status="error",
    attributes={"device": "cpu"},
    subject_ref="stage:iris-svm.linear-svm.evaluate",
)
DEGRADED = DegradedPayload(
    reason_code="queue_overflow",
    message="dropped 3 records",
    dropped_count=3,
    first_observed_at=T0,
    last_observed_at=T1,
    attributes={"policy": "drop_oldest"},
)

# One valid, richly filled instance of every model named in the contract.
EVERY_MODEL: list[Any] = [
    Project(
        project_ref="project:iris-svm",
        name="iris-svm",
        created_at=T0,
        description="Iris classifier",
        tags={"team": "vision"},
    ),
    Run(
        run_ref="run:iris-svm.linear-svm",
        project_ref="project:iris-svm",
        name="linear-svm",
        status="completed",
        started_at=T0,
        ended_at=T1,
        description="baseline",
        dataset_ref="dataset:sklearn.iris",
        code_revision="abc123",
        tags={"model": "svm"},
        metadata={"host": "ci"},
        config_snapshot={"C": 1.0, "kernel": "linear", "layers": [4, 3]},
    ),
    StageExecution(
        stage_execution_ref="stage:iris-svm.linear-svm.evaluate",
        run_ref="run:iris-svm.linear-svm",
        stage_name="evaluate",
        status="failed",
        started_at=T0,
        ended_at=T1,
        order_index=1,
    ),
    BatchExecution(
        batch_execution_ref="batch:iris-svm.linear-svm.evaluate.holdout-split",
        run_ref="run:iris-svm.linear-svm",
        stage_execution_ref="stage:iris-svm.linear-svm.evaluate",
        batch_name="holdout-split",
        status="open",
        started_at=T0,
        order_index=0,
    ),
    SampleObservation(
        sample_observation_ref="sample:iris-svm.linear-svm.evaluate.holdout-split.case-1",
        run_ref="run:iris-svm.linear-svm",
        stage_execution_ref="stage:iris-svm.linear-svm.evaluate",
        sample_name="case-1",
        observed_at=T0,
        batch_execution_ref="batch:iris-svm.linear-svm.evaluate.holdout-split",
        retention_class="short",
        redaction_profile="pii",
    ),
    OperationExecution(
        operation_ref="operation:iris-svm.linear-svm.evaluate.tokenize",
        run_ref="run:iris-svm.linear-svm",
        stage_execution_ref="stage:iris-svm.linear-svm.evaluate",
        operation_name="tokenize",
        status="cancelled",
        started_at=T0,
        ended_at=T1,
    ),
    DeploymentExecution(
        deployment_execution_ref="deployment:iris-svm.prod",
        project_ref="project:iris-svm",
        deployment_name="prod",
        status="completed",
        started_at=T0,
        ended_at=T1,
        order_index=2,
        run_ref="run:iris-svm.linear-svm",
        artifact_ref="artifact:iris-svm.linear-svm.model-0123456789ab",
    ),
    envelope("metric", completeness_marker="partial", degradation_marker="queue-overflow"),
    METRIC,
    MetricRecord(envelope=envelope("metric"), payload=METRIC),
    EVENT,
    StructuredEventRecord(envelope=envelope("event"), payload=EVENT),
    SPAN,
    TraceSpanRecord(envelope=envelope("span"), payload=SPAN),
    DEGRADED,
    DegradedRecord(envelope=envelope("degraded"), payload=DEGRADED),
    ArtifactManifest(
        artifact_ref="artifact:iris-svm.linear-svm.model-0123456789ab",
        artifact_kind="model",
        run_ref="run:iris-svm.linear-svm",
        location_ref="path:/data/model.pkl",
        created_at=T1,
        hash_value=DIGEST,
        size_bytes=2048,
        stage_execution_ref="stage:iris-svm.linear-svm.evaluate",
        attributes={"format": "pickle"},
    ),
    ArtifactSource(uri="/data/model.pkl", exists=True),
    EnvironmentSnapshot(
        run_ref="run:iris-svm.linear-svm",
        captured_at=T0,
        python_version="3.11.9",
        platform="linux-x86_64",
        packages={"numpy": "2.0.0"},
        git_revision="abc123",
        attributes={"gpu": None},
    ),
    LineageEdge(
        source_ref="run:iris-svm.linear-svm",
        target_ref="artifact:iris-svm.linear-svm.model-0123456789ab",
        relation="produced",
        recorded_at=T1,
        attributes={"why": "training output"},
    ),
]

CONTRACT_MODEL_NAMES = [
    "Project",
    "Run",
    "StageExecution",
    "BatchExecution",
    "SampleObservation",
    "OperationExecution",
    "DeploymentExecution",
    "RecordEnvelope",
    "MetricPayload",
    "MetricRecord",
    "StructuredEventPayload",
    "StructuredEventRecord",
    "TraceSpanPayload",
    "TraceSpanRecord",
    "DegradedPayload",
    "DegradedRecord",
    "ArtifactManifest",
    "ArtifactSource",
    "EnvironmentSnapshot",
    "LineageEdge",
]


def test_every_contract_model_has_a_round_trip_case() -> None:
    covered = {type(instance).__name__ for instance in EVERY_MODEL}
    assert covered == set(CONTRACT_MODEL_NAMES)
    exported = {
        name
        for name in contract.__all__
        if isinstance(getattr(contract, name), type) and dataclasses.is_dataclass(getattr(contract, name))
    }
    # ParsedRef is a value returned by parse_ref, not a model that is stored or sent.
    assert exported - {"ParsedRef"} <= covered


@pytest.mark.parametrize("model", EVERY_MODEL, ids=[type(instance).__name__ for instance in EVERY_MODEL])
def test_to_json_from_json_round_trips(model: Any) -> None:
    text = to_json(model)
    assert isinstance(text, bytes)
    restored = from_json(text)
    assert type(restored) is type(model)
    assert restored == model
    assert from_json(text.decode("utf-8")) == model  # str input works as well as bytes


@pytest.mark.parametrize("model", EVERY_MODEL, ids=[type(instance).__name__ for instance in EVERY_MODEL])
def test_to_dict_and_model_from_dict_round_trip(model: Any) -> None:
    data = model.to_dict()
    assert isinstance(data, dict)
    orjson.dumps(data)  # plain JSON values all the way down
    assert model_from_dict(type(model).__name__, data) == model


@pytest.mark.parametrize("model", EVERY_MODEL, ids=[type(instance).__name__ for instance in EVERY_MODEL])
def test_json_document_names_the_model(model: Any) -> None:
    document = orjson.loads(to_json(model))
    assert document["model"] == type(model).__name__
    assert isinstance(document["data"], dict)


def test_minimal_models_round_trip_with_their_defaults() -> None:
    minimal = [
        Run(run_ref="run:p.r", project_ref="project:p", name="r", status="open", started_at=T0),
        SampleObservation(
            sample_observation_ref="sample:p.r.s.x",
            run_ref="run:p.r",
            stage_execution_ref="stage:p.r.s",
            sample_name="x",
            observed_at=T0,
        ),
        MetricPayload(metric_key="loss", value=2, value_type="int64"),
        ArtifactManifest(
            artifact_ref="artifact:p.r.model-0123456789ab",
            artifact_kind="model",
            run_ref="run:p.r",
            location_ref="path:/missing.pkl",
            created_at=T0,
        ),
    ]
    for model in minimal:
        assert from_json(to_json(model)) == model


def test_record_owned_by_a_deployment_without_a_run_round_trips() -> None:
    # A deployment's events carry no run_ref; the null must survive the trip (JSON may omit it).
    owned = RecordEnvelope(
        record_ref="record:p.d.r1",
        record_type="event",
        recorded_at=T0,
        observed_at=T0,
        producer_ref="x",
        run_ref=None,
        deployment_execution_ref="deployment:p.d",
    )
    assert from_json(to_json(owned)) == owned
    record = StructuredEventRecord(envelope=owned, payload=EVENT)
    assert from_json(to_json(record)) == record


def test_datetime_inputs_round_trip_as_the_stored_string() -> None:
    run = Run(
        run_ref="run:p.r",
        project_ref="project:p",
        name="r",
        status="completed",
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
        ended_at=datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC),
    )
    restored = from_json(to_json(run))
    assert restored == run
    assert isinstance(restored.started_at, str)


def test_metric_values_keep_their_exact_value_and_type() -> None:
    for value, value_type in (
        (0.1 + 0.2, "float64"),
        (1e-300, "float64"),
        (2**53 + 1, "int64"),
        (0, "int64"),
    ):
        restored = from_json(to_json(MetricPayload(metric_key="x", value=value, value_type=value_type)))
        assert restored.value == value
        assert type(restored.value) is type(value)


# -- the seed 004 onboarding history, built model by model -----------------------------------------


def seed_004_models() -> list[Any]:
    project = "churn-prediction"
    run_name, started_at, ended_at = "churn-v3-feb", "2025-02-21T09:00:00Z", "2025-02-21T12:00:00Z"
    run = f"run:{project}.{run_name}"
    evaluate = f"stage:{project}.{run_name}.evaluate"
    return [
        Project(
            project_ref=f"project:{project}",
            name=project,
            created_at="2025-01-01T00:00:00Z",
            description="Customer churn prediction model",
        ),
        Run(
            run_ref=run,
            project_ref=f"project:{project}",
            name=run_name,
            status="completed",
            started_at=started_at,
            ended_at=ended_at,
        ),
        StageExecution(
            stage_execution_ref=f"stage:{project}.{run_name}.train",
            run_ref=run,
            stage_name="train",
            status="completed",
            started_at=started_at,
            ended_at=f"{started_at[:10]}T10:30:00Z",
            order_index=0,
        ),
        StageExecution(
            stage_execution_ref=evaluate,
            run_ref=run,
            stage_name="evaluate",
            status="completed",
            started_at=f"{started_at[:10]}T10:30:00Z",
            ended_at=ended_at,
            order_index=1,
        ),
        MetricRecord(
            envelope=RecordEnvelope(
                record_ref=f"record:{project}.{run_name}.r00007",
                record_type="metric",
                recorded_at=ended_at,
                observed_at=ended_at,
                producer_ref="contexta.case11",
                run_ref=run,
                stage_execution_ref=evaluate,
                completeness_marker="complete",
                degradation_marker="none",
            ),
            payload=MetricPayload(metric_key="accuracy", value=0.861, value_type="float64"),
        ),
        StructuredEventRecord(
            envelope=RecordEnvelope(
                record_ref=f"record:{project}.{run_name}.r00010",
                record_type="event",
                recorded_at=started_at,
                observed_at=started_at,
                producer_ref="contexta.case11",
                run_ref=run,
                completeness_marker="complete",
                degradation_marker="none",
            ),
            payload=StructuredEventPayload(
                event_key="training.run-registered",
                level="info",
                message=f"Training run {run_name} started.",
                origin_marker="explicit_capture",
            ),
        ),
        DeploymentExecution(
            deployment_execution_ref=f"deployment:{project}.prod-deploy-v3",
            project_ref=f"project:{project}",
            deployment_name="prod-deploy-v3",
            status="completed",
            started_at="2025-02-22T15:00:00Z",
            ended_at="2025-02-22T15:12:00Z",
            run_ref=run,
            order_index=0,
        ),
    ]


@pytest.mark.parametrize("model", seed_004_models(), ids=lambda model: type(model).__name__)
def test_seed_004_onboarding_models_round_trip(model: Any) -> None:
    assert from_json(to_json(model)) == model


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"not json",
        b"{",
        "{'model': 'Run'}",
        b"[1, 2]",
        b"42",
        b"null",
        b'{"model": "Run"}',
        b'{"model": "Run", "data": [1]}',
        b"\xff\xfe",
    ],
)
def test_from_json_on_garbage_is_json_invalid(text: bytes | str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        from_json(text)
    assert excinfo.value.code == "json_invalid"


@pytest.mark.parametrize("name", ["Nope", "", "ParsedRef", "ContractModel", "run"])
def test_from_json_with_an_unknown_model_is_model_unknown(name: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        from_json(orjson.dumps({"model": name, "data": {}}))
    assert excinfo.value.code == "model_unknown"


def test_model_from_dict_with_an_unknown_model_is_model_unknown() -> None:
    with pytest.raises(ValidationError) as excinfo:
        model_from_dict("Widget", {})
    assert excinfo.value.code == "model_unknown"


@pytest.mark.parametrize("value", [{"run_ref": "run:p.r"}, "run:p.r", 3, None])
def test_to_json_refuses_what_is_not_a_contract_model(value: Any) -> None:
    with pytest.raises(ValidationError) as excinfo:
        to_json(value)
    assert excinfo.value.code == "model_unknown"


def test_from_json_validates_the_data_again() -> None:
    data = EVERY_MODEL[1].to_dict()
    with pytest.raises(ValidationError) as excinfo:
        from_json(orjson.dumps({"model": "Run", "data": {**data, "status": "open"}}))  # open with ended_at
    assert excinfo.value.code == "lifecycle_invalid"
    with pytest.raises(ValidationError) as excinfo:
        from_json(orjson.dumps({"model": "Run", "data": {**data, "project_ref": "project:other"}}))
    assert excinfo.value.code == "ref_parent_mismatch"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("MetricPayload", {"metric_key": "x", "value_type": "float64"}),
        ("Run", {"run_ref": "run:p.r"}),
        ("MetricRecord", {"payload": {"metric_key": "x", "value": 1.0, "value_type": "float64"}}),
    ],
)
def test_from_json_with_missing_fields_is_a_validation_error(name: str, data: dict[str, Any]) -> None:
    # A document that is not a valid model must fail as ValidationError, never as a bare TypeError.
    with pytest.raises(ValidationError):
        from_json(orjson.dumps({"model": name, "data": data}))


def test_from_json_rejects_a_nested_payload_of_the_wrong_record_type() -> None:
    record = EVERY_MODEL[9].to_dict()  # the MetricRecord
    record["envelope"]["record_type"] = "event"
    with pytest.raises(ValidationError) as excinfo:
        from_json(orjson.dumps({"model": "MetricRecord", "data": record}))
    assert excinfo.value.code == "record_type_mismatch"


@pytest.mark.parametrize(
    ("value", "token"), [(float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity")]
)
def test_a_metric_that_is_not_finite_round_trips_as_its_token(value: float, token: str) -> None:
    # JSON has no NaN (orjson would write null, read back as "no value"): the value is written as the
    # capture log writes it, and read back as the same float.
    record = MetricRecord(envelope("metric"), MetricPayload("loss", value, "float64", step=41))
    text = to_json(record)
    assert orjson.loads(text)["data"]["payload"]["value"] == token
    back = from_json(text)
    assert isinstance(back, MetricRecord)
    assert repr(back.payload.value) == repr(value)
    assert back.envelope == record.envelope and back.payload.step == 41

    payload = from_json(to_json(record.payload))
    assert isinstance(payload, MetricPayload)
    assert repr(payload.value) == repr(value)


def test_a_token_is_read_only_where_json_holds_a_float_metric_value() -> None:
    with pytest.raises(ValidationError):
        MetricPayload("loss", "NaN", "float64")  # built in code: a string is refused like any string
    with pytest.raises(ValidationError):
        model_from_dict("MetricPayload", {"metric_key": "n", "value": "NaN", "value_type": "int64"})
    with pytest.raises(ValidationError):
        model_from_dict("MetricPayload", {"metric_key": "n", "value": "nan", "value_type": "float64"})
