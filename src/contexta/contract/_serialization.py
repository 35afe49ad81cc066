"""orjson (de)serialisation of contract models, tagged with the model name so any model round-trips."""

from __future__ import annotations

from typing import Any

import orjson

from contexta.contract._artifacts import ArtifactManifest, ArtifactSource
from contexta.contract._context import (
    BatchExecution,
    DeploymentExecution,
    OperationExecution,
    Project,
    Run,
    SampleObservation,
    StageExecution,
)
from contexta.contract._environment import EnvironmentSnapshot, LineageEdge
from contexta.contract._model import ContractModel
from contexta.contract._non_finite import encode_metric_value
from contexta.contract._records import (
    DegradedPayload,
    DegradedRecord,
    MetricPayload,
    MetricRecord,
    RecordEnvelope,
    StructuredEventPayload,
    StructuredEventRecord,
    TraceSpanPayload,
    TraceSpanRecord,
)
from contexta.errors import ValidationError

__all__ = ["MODELS", "from_json", "model_from_dict", "to_json"]

MODELS: dict[str, type[ContractModel]] = {
    model.__name__: model
    for model in (
        Project,
        Run,
        StageExecution,
        BatchExecution,
        SampleObservation,
        OperationExecution,
        DeploymentExecution,
        RecordEnvelope,
        MetricPayload,
        MetricRecord,
        StructuredEventPayload,
        StructuredEventRecord,
        TraceSpanPayload,
        TraceSpanRecord,
        DegradedPayload,
        DegradedRecord,
        ArtifactManifest,
        ArtifactSource,
        EnvironmentSnapshot,
        LineageEdge,
    )
}


def to_json(model: ContractModel) -> bytes:
    """`{"model": <name>, "data": {...}}` as UTF-8 JSON bytes. A metric's NaN or infinite value is
    written as its token, as in the capture log (orjson would write null); `from_json` reads it back."""
    if not isinstance(model, ContractModel):
        raise ValidationError(
            f"to_json takes a contract model, got {type(model).__name__}", code="model_unknown"
        )
    data = model.to_dict(omit_none=True)
    if isinstance(model, MetricRecord):
        data["payload"]["value"] = encode_metric_value(model.payload.value)
    elif isinstance(model, MetricPayload):
        data["value"] = encode_metric_value(model.value)
    return orjson.dumps({"model": type(model).__name__, "data": data})


def model_from_dict(name: str, data: dict[str, Any]) -> ContractModel:
    """Rebuild the model called `name` from its `to_dict()` form (validating it again)."""
    model = MODELS.get(name)
    if model is None:
        raise ValidationError(f"unknown contract model {name!r}", code="model_unknown")
    return model.from_dict(data)


def from_json(text: str | bytes) -> ContractModel:
    """The model `to_json` wrote; a `ValidationError` if the text is not one."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ValidationError(f"not JSON: {error}", code="json_invalid") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise ValidationError("expected {'model': name, 'data': {...}}", code="json_invalid")
    return model_from_dict(str(document.get("model")), document["data"])
