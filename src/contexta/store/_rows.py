"""Converting between contract models / captured entries and the store's rows, in one place.

A record row keeps the columns queries filter and sort on (refs, key, value, step, times) and a
`document` with the rest. For metrics, the bulk of every store, the document is small (producer,
aggregation scope, subject, tags); other records keep their whole capture payload.
"""

from __future__ import annotations

from typing import Any

import orjson

from contexta.capture._batch import PRODUCER_REF, CapturedEntry, MetricFields
from contexta.contract._model import ContractModel
from contexta.contract._records import (
    SCHEMA_VERSION,
    DegradedRecord,
    MetricRecord,
    StructuredEventRecord,
    TraceSpanRecord,
)
from contexta.contract._serialization import model_from_dict

__all__ = [
    "RECORD_COLUMNS",
    "dumps_or_none",
    "loads_or_none",
    "metric_row",
    "record_from_row",
    "record_row",
    "record_row_from_payload",
]

RECORD_COLUMNS = (
    "seq, record_ref, record_type, run_ref, stage_ref, batch_ref, sample_ref, deployment_ref, "
    "observed_at, recorded_at, key, value, step, unit, document"
)
# The insert order of a row list (everything but seq).
INSERT_COLUMNS = RECORD_COLUMNS.removeprefix("seq, ")

_RECORD_MODELS = {
    "metric": "MetricRecord",
    "event": "StructuredEventRecord",
    "span": "TraceSpanRecord",
    "degraded": "DegradedRecord",
}
_KEY_FIELDS = {"metric": "metric_key", "event": "event_key", "span": "span_name", "degraded": "reason_code"}
_DEFAULT_MARKERS = {"completeness_marker": "complete", "degradation_marker": "none"}

AnyRecord = MetricRecord | StructuredEventRecord | TraceSpanRecord | DegradedRecord


def dumps_or_none(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def loads_or_none(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _default_subject(
    run_ref: Any, stage_ref: Any, batch_ref: Any, sample_ref: Any, deployment_ref: Any
) -> Any:
    """The subject a metric has when it was captured on its innermost context (no need to store it)."""
    return sample_ref or batch_ref or stage_ref or run_ref or deployment_ref


def metric_row(metric: MetricFields) -> list[Any]:
    """The insert row of a captured metric (INSERT_COLUMNS order).

    The document stays empty in the common case (captured by us, step aggregation, subject = the
    innermost context): a million-point series should not store a million copies of the same JSON.
    """
    (record_ref, recorded_at, observed_at, context, key, value, unit, step, aggregation_scope, tags) = metric
    (kind, subject_ref, _, _, _, run_ref, stage_ref, batch_ref, sample_ref, deployment_ref, _) = context
    document = None
    if tags is not None or aggregation_scope != "step" or kind == "operation":
        document = orjson.dumps(
            {"aggregation_scope": aggregation_scope, "subject_ref": subject_ref, "tags": tags}
        ).decode()
    return [
        record_ref,
        "metric",
        run_ref,
        stage_ref,
        batch_ref,
        sample_ref,
        deployment_ref,
        observed_at,
        recorded_at,
        key,
        value,
        step,
        unit,
        document,
    ]


def record_row_from_payload(payload: dict[str, Any]) -> list[Any]:
    """The insert row of a record given as its capture payload `{"envelope": ..., "payload": ...}`."""
    envelope = payload["envelope"]
    body = payload["payload"]
    record_type = envelope["record_type"]
    value: Any = None
    step = unit = None
    if record_type == "metric":
        value, step, unit = body["value"], body.get("step"), body.get("unit")
        document: dict[str, Any] = {}
        if envelope["producer_ref"] != PRODUCER_REF:
            document["producer_ref"] = envelope["producer_ref"]
        if body.get("aggregation_scope", "step") != "step":
            document["aggregation_scope"] = body["aggregation_scope"]
        default_subject = _default_subject(
            envelope.get("run_ref"),
            envelope.get("stage_execution_ref"),
            envelope.get("batch_execution_ref"),
            envelope.get("sample_observation_ref"),
            envelope.get("deployment_execution_ref"),
        )
        if body.get("subject_ref") != default_subject:
            document["subject_ref"] = body.get("subject_ref")
        if body.get("tags") is not None:
            document["tags"] = body["tags"]
        if body.get("value_type") not in (None, "int64" if type(value) is int else "float64"):
            document["value_type"] = body["value_type"]
        for marker, default in _DEFAULT_MARKERS.items():
            if envelope.get(marker, default) != default:
                document[marker] = envelope[marker]
        if envelope.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            document["schema_version"] = envelope["schema_version"]
        document_text = orjson.dumps(document).decode() if document else None
    else:
        if record_type == "degraded":
            value = body.get("dropped_count")
        document_text = orjson.dumps(payload).decode()
    return [
        envelope["record_ref"],
        record_type,
        envelope.get("run_ref"),
        envelope.get("stage_execution_ref"),
        envelope.get("batch_execution_ref"),
        envelope.get("sample_observation_ref"),
        envelope.get("deployment_execution_ref"),
        envelope["observed_at"],
        envelope["recorded_at"],
        body[_KEY_FIELDS[record_type]],
        value,
        step,
        unit,
        document_text,
    ]


def record_row(record: ContractModel) -> list[Any]:
    """The insert row of a contract record model."""
    return record_row_from_payload(record.to_dict(omit_none=True))


def entry_row(entry: CapturedEntry) -> list[Any]:
    """The insert row of a captured RECORD entry."""
    if entry.metric is not None:
        return metric_row(entry.metric)
    return record_row_from_payload(entry.payload)


def record_from_row(row: tuple[Any, ...]) -> AnyRecord:
    """The contract record of a row selected with RECORD_COLUMNS (validated again on the way out)."""
    (
        _seq,
        record_ref,
        record_type,
        run_ref,
        stage_ref,
        batch_ref,
        sample_ref,
        deployment_ref,
        observed_at,
        recorded_at,
        key,
        value,
        step,
        unit,
        document_text,
    ) = row
    document = orjson.loads(document_text) if document_text is not None else {}
    if record_type != "metric":
        model: Any = model_from_dict(_RECORD_MODELS[record_type], document)
        return model  # type: ignore[no-any-return]
    envelope = {
        "record_ref": record_ref,
        "record_type": "metric",
        "recorded_at": recorded_at,
        "observed_at": observed_at,
        "producer_ref": document.get("producer_ref", PRODUCER_REF),
        "run_ref": run_ref,
        "stage_execution_ref": stage_ref,
        "batch_execution_ref": batch_ref,
        "sample_observation_ref": sample_ref,
        "deployment_execution_ref": deployment_ref,
        "completeness_marker": document.get("completeness_marker", "complete"),
        "degradation_marker": document.get("degradation_marker", "none"),
        "schema_version": document.get("schema_version", SCHEMA_VERSION),
    }
    payload = {
        "metric_key": key,
        "value": value,
        "value_type": document.get("value_type", "int64" if type(value) is int else "float64"),
        "unit": unit,
        "step": step,
        "aggregation_scope": document.get("aggregation_scope", "step"),
        "subject_ref": document.get(
            "subject_ref", _default_subject(run_ref, stage_ref, batch_ref, sample_ref, deployment_ref)
        ),
        "tags": document.get("tags"),
    }
    record: Any = model_from_dict("MetricRecord", {"envelope": envelope, "payload": payload})
    return record  # type: ignore[no-any-return]
