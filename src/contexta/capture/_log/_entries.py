"""Captured entries: one record as the writer built it, and its capture-log line (SPEC §5).

Metrics, the bulk of every log, travel through the writer as the caller's raw tuples (see
`_batch.py`); they become `CapturedEntry` values only when a sink iterates a batch. Everything else
(events, spans, scopes, artifacts, degraded markers) is built once, as a JSON-ready document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from contexta.capture._items import ScopeContext
from contexta.contract._model import ContractModel
from contexta.contract._non_finite import encode_metric_value
from contexta.contract._records import PRODUCER_REF, SCHEMA_VERSION
from contexta.contract._refs import record_id_prefix
from contexta.contract._serialization import model_from_dict

__all__ = [
    "FAMILIES",
    "CapturedEntry",
    "MetricFields",
    "drop_none",
    "entries_from_lines",
    "entry_to_line",
    "envelope_constants",
    "record_ref_prefix",
]

FAMILIES = ("RECORD", "ARTIFACT", "CONTEXT")


class MetricFields(NamedTuple):
    """A metric as the writer keeps it: flat, so log lines and store rows are formatted straight from it."""

    record_ref: str
    recorded_at: str
    observed_at: str
    context: ScopeContext
    key: str
    value: float | int
    unit: str | None
    step: int | None
    aggregation_scope: str
    tags: dict[str, Any] | None


class CapturedEntry(NamedTuple):
    """One record as the writer built it: its family, model name, ref, capture time and document.

    A named tuple rather than a dataclass: the writer builds many thousands a second. Metrics carry
    `metric` instead of a document; `payload` builds the document on demand.
    """

    family: str  # RECORD | ARTIFACT | CONTEXT
    payload_type: str  # contract model name (MetricRecord, Run, ArtifactRegistration, ...)
    payload_ref: str
    captured_at: str
    document: dict[str, Any] | None
    metric: MetricFields | None = None

    @property
    def payload(self) -> dict[str, Any]:
        """The `payload` object of this entry's capture-log line."""
        if self.document is not None:
            return self.document
        assert self.metric is not None
        return metric_document(self.metric)

    def to_model(self) -> ContractModel | dict[str, Any]:
        """The validated contract model (an artifact registration stays a mapping of models)."""
        payload = self.payload
        if self.payload_type == "ArtifactRegistration":
            return {
                "manifest": model_from_dict("ArtifactManifest", payload["manifest"]),
                "source": model_from_dict("ArtifactSource", payload["source"]),
                "binding_status": payload["binding_status"],
            }
        return model_from_dict(self.payload_type, payload)


def drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def record_ref_prefix(context: ScopeContext, id_prefix: str) -> str:
    """`record:{project}.{run}.{execution id}-{id_prefix}`: a scope's record refs end in a number
    after it."""
    return f"record:{context.owner_ref.partition(':')[2]}.{record_id_prefix(context.execution_id, id_prefix)}"


def envelope_constants(context: ScopeContext) -> dict[str, Any]:
    """The envelope fields every record of one scope shares."""
    return drop_none(
        {
            "producer_ref": PRODUCER_REF,
            "run_ref": context.run_ref,
            "stage_execution_ref": context.stage_ref,
            "batch_execution_ref": context.batch_ref,
            "sample_observation_ref": context.sample_ref,
            "deployment_execution_ref": context.deployment_ref,
            "completeness_marker": "complete",
            "degradation_marker": "none",
            "schema_version": SCHEMA_VERSION,
        }
    )


def metric_document(metric: MetricFields) -> dict[str, Any]:
    """The `{"envelope": ..., "payload": ...}` document of a metric. A NaN or infinite value is
    written as its token ("NaN", "Infinity", "-Infinity"; see contract/_non_finite.py): JSON has no
    such numbers."""
    value = metric.value
    payload: dict[str, Any] = {
        "metric_key": metric.key,
        "value": value if value - value == 0 else encode_metric_value(value),
        "value_type": "float64" if type(value) is float else "int64",
        "aggregation_scope": metric.aggregation_scope,
        "subject_ref": metric.context.ref,
    }
    if metric.unit is not None:
        payload["unit"] = metric.unit
    if metric.step is not None:
        payload["step"] = metric.step
    if metric.tags is not None:
        payload["tags"] = metric.tags
    envelope = {
        "record_ref": metric.record_ref,
        "record_type": "metric",
        "recorded_at": metric.recorded_at,
        "observed_at": metric.observed_at,
        **envelope_constants(metric.context),
    }
    return {"envelope": envelope, "payload": payload}


def entry_to_line(entry: CapturedEntry, sink_name: str) -> dict[str, Any]:
    """The capture-log line (SPEC §5) for one entry."""
    return {
        "captured_at": entry.captured_at,
        "family": entry.family,
        "payload_type": entry.payload_type,
        "payload_ref": entry.payload_ref,
        "sink_name": sink_name,
        "payload": entry.payload,
    }


def entries_from_lines(lines: Iterable[dict[str, Any]]) -> list[CapturedEntry]:
    """Entries back from capture-log lines (outbox replay, log readers)."""
    return [
        CapturedEntry(
            line["family"], line["payload_type"], line["payload_ref"], line["captured_at"], line["payload"]
        )
        for line in lines
    ]
