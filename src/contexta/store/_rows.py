"""Rows of the `records` table (events, spans, degraded markers) and the JSON columns of all tables.

A record row keeps the columns queries filter and sort on (refs, key, times) and its whole capture
payload as `document`. Metrics are not rows: see `_metric_chunks.py`.
"""

from __future__ import annotations

from typing import Any

import orjson

from contexta.contract._records import DegradedRecord, MetricRecord, StructuredEventRecord, TraceSpanRecord
from contexta.contract._refs import execution_of_record_ref
from contexta.contract._serialization import model_from_dict

__all__ = [
    "RECORD_COLUMNS",
    "AnyRecord",
    "dumps_or_none",
    "loads_or_none",
    "record_from_row",
    "record_row_from_payload",
]

# The insert (and select) order of a row.
RECORD_COLUMNS = (
    "seq, record_ref, record_type, run_ref, stage_ref, batch_ref, sample_ref, deployment_ref, "
    "observed_at, recorded_at, key, value, step, unit, execution_id, document"
)

_RECORD_MODELS = {"event": "StructuredEventRecord", "span": "TraceSpanRecord", "degraded": "DegradedRecord"}
_KEY_FIELDS = {"event": "event_key", "span": "span_name", "degraded": "reason_code"}

AnyRecord = MetricRecord | StructuredEventRecord | TraceSpanRecord | DegradedRecord


def dumps_or_none(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def loads_or_none(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def record_row_from_payload(payload: dict[str, Any], seq: int) -> list[Any]:
    """The row (RECORD_COLUMNS order) of a non-metric record given as its capture payload; its
    execution (the second last column) is the one its ref names, or None when it names none."""
    envelope = payload["envelope"]
    body = payload["payload"]
    record_type = envelope["record_type"]
    return [
        seq,
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
        body.get("dropped_count") if record_type == "degraded" else None,
        None,
        None,
        execution_of_record_ref(envelope["record_ref"]),  # what the ref claims; the caller checks it
        orjson.dumps(payload).decode(),
    ]


def record_from_row(row: tuple[Any, ...]) -> AnyRecord:
    """The contract record of a row selected with RECORD_COLUMNS (validated again on the way out)."""
    record: Any = model_from_dict(_RECORD_MODELS[row[2]], orjson.loads(row[-1]))
    return record  # type: ignore[no-any-return]
