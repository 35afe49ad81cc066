"""Turning queued items into a batch of records, in the writer thread.

The writer builds each record once as a plain JSON-ready document (the `payload` of a capture-log
line); every sink then takes the representation it needs from the shared `CaptureBatch`: log lines
(encoded once per sink name), or validated contract models, built only if some sink asks for them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import orjson

from contexta.capture import _items as kinds
from contexta.capture._items import ScopeContext
from contexta.contract._model import ContractModel
from contexta.contract._records import SCHEMA_VERSION
from contexta.contract._serialization import model_from_dict
from contexta.contract._timestamps import format_ns

__all__ = ["FAMILIES", "CaptureBatch", "CapturedEntry", "EntryBuilder", "entry_to_line"]

FAMILIES = ("RECORD", "ARTIFACT", "CONTEXT")
PRODUCER_REF = "contexta.capture"


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

    A named tuple rather than a dataclass: the writer builds hundreds of thousands a second. Metrics,
    the bulk of every log, carry `metric` instead of a document; `payload` builds it on demand.
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
        return _metric_document(self.metric)

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


def _envelope_constants(context: ScopeContext) -> dict[str, Any]:
    return _drop_none(
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


def _metric_document(metric: MetricFields) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "metric_key": metric.key,
        "value": metric.value,
        "value_type": "float64" if type(metric.value) is float else "int64",
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
        **_envelope_constants(metric.context),
    }
    return {"envelope": envelope, "payload": payload}


# Per scope: the envelope's constant fields as a JSON fragment, reused by every metric line of the scope.
_fragment_cache: dict[int, tuple[ScopeContext, str]] = {}


def _envelope_fragment(context: ScopeContext) -> str:
    cached = _fragment_cache.get(id(context))
    if cached is not None and cached[0] is context:
        return cached[1]
    if len(_fragment_cache) > 4096:
        _fragment_cache.clear()
    fragment = orjson.dumps(_envelope_constants(context)).decode()[1:-1]
    _fragment_cache[id(context)] = (context, fragment)
    return fragment


def _metric_line(metric: MetricFields, sink_name_json: str) -> str:
    """The capture-log line of a metric, formatted directly.

    Equivalent to `orjson.dumps(entry_to_line(...))` (a test holds them equal) at a fraction of the
    cost: keys and refs are validated to need no JSON escaping, values are finite numbers whose repr
    is valid JSON, and only the free-text unit and tags go through the encoder.
    """
    (ref, recorded_at, observed_at, context, key, value, unit, step, aggregation_scope, tags) = metric
    extras = ""
    if unit is not None:
        extras += ',"unit":' + orjson.dumps(unit).decode()
    if step is not None:
        extras += f',"step":{step}'
    if tags is not None:
        extras += ',"tags":' + orjson.dumps(tags).decode()
    return (
        f'{{"captured_at":"{recorded_at}","family":"RECORD","payload_type":"MetricRecord",'
        f'"payload_ref":"{ref}","sink_name":{sink_name_json},"payload":{{"envelope":{{"record_ref":"{ref}",'
        f'"record_type":"metric","recorded_at":"{recorded_at}","observed_at":"{observed_at}",'
        f'{_envelope_fragment(context)}}},"payload":{{"metric_key":"{key}","value":{value!r},'
        f'"value_type":"{"float64" if type(value) is float else "int64"}",'
        f'"aggregation_scope":"{aggregation_scope}","subject_ref":"{context.ref}"{extras}}}}}}}\n'
    )


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


class CaptureBatch(Sequence[CapturedEntry]):
    """The entries of one writer cycle, shared read-only by every sink."""

    __slots__ = ("_encoded", "_entries", "_models", "batch_id")

    def __init__(self, entries: Iterable[CapturedEntry], *, batch_id: str | None = None):
        # batch_id is set on batches replayed from the outbox, so a sink can store each of them once.
        self.batch_id = batch_id
        self._entries = tuple(entries)
        self._encoded: dict[tuple[str, str], bytes] = {}
        self._models: list[ContractModel | dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> CapturedEntry:  # type: ignore[override]
        return self._entries[index]

    def __iter__(self) -> Iterator[CapturedEntry]:
        return iter(self._entries)

    def family(self, family: str) -> list[CapturedEntry]:
        return [entry for entry in self._entries if entry.family == family]

    def encoded(self, family: str, sink_name: str) -> bytes:
        """The newline-terminated log lines of one family, encoded once per sink name."""
        key = (family, sink_name)
        data = self._encoded.get(key)
        if data is None:
            dumps = orjson.dumps
            newline = orjson.OPT_APPEND_NEWLINE
            sink_name_json = dumps(sink_name).decode()
            parts = []
            for entry in self._entries:
                if entry.family != family:
                    continue
                if entry.metric is not None:
                    parts.append(_metric_line(entry.metric, sink_name_json).encode())
                else:
                    parts.append(dumps(entry_to_line(entry, sink_name), option=newline))
            data = b"".join(parts)
            self._encoded[key] = data
        return data

    def models(self) -> list[ContractModel | dict[str, Any]]:
        """Every entry as its validated contract model, built on first use."""
        if self._models is None:
            self._models = [entry.to_model() for entry in self._entries]
        return self._models


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


class EntryBuilder:
    """Writer-side conversion of queued tuples into entries: record ids, timestamps and documents."""

    def __init__(self) -> None:
        self.reset_ids()

    def reset_ids(self) -> None:
        """A fresh id prefix, so a forked child never reuses its parent's record refs."""
        self._prefix = f"{os.urandom(4).hex()}-"
        self._sequence = 0
        self._recorded_at = format_ns(time.time_ns())
        self._scope_cache: dict[int, tuple[ScopeContext, str, dict[str, Any]]] = {}

    def build(self, queued: Iterable[tuple[Any, ...]], entries: list[CapturedEntry]) -> None:
        """Append the entries for `queued` to `entries` (a METRICS item yields one entry per key)."""
        now = format_ns
        self._recorded_at = now(time.time_ns())
        for item in queued:
            kind = item[0]
            if kind == kinds.METRIC:
                entries.append(
                    self._metric(item[1], item[2], item[3], item[4], item[5], item[6], item[7], item[8])
                )
            elif kind == kinds.METRICS:
                _, t_ns, context, pairs, unit, step = item
                for key, value in pairs:
                    entries.append(self._metric(t_ns, context, key, value, unit, step, "step", None))
            elif kind == kinds.EVENT:
                entries.append(self._event(item))
            elif kind == kinds.SPAN:
                entries.append(self._span(item))
            elif kind == kinds.SCOPE:
                entries.append(self._scope(item))
            elif kind == kinds.ENVIRONMENT:
                _, t_ns, context, fields = item
                document = {"run_ref": context.run_ref, "captured_at": now(t_ns), **fields}
                entries.append(
                    CapturedEntry("CONTEXT", "EnvironmentSnapshot", context.run_ref, now(t_ns), document)
                )
            elif kind == kinds.ARTIFACT:
                _, t_ns, context, manifest, source, binding_status = item
                entries.append(
                    CapturedEntry(
                        "ARTIFACT",
                        "ArtifactRegistration",
                        manifest.artifact_ref,
                        now(t_ns),
                        {
                            "binding_status": binding_status,
                            "manifest": manifest.to_dict(omit_none=True),
                            "source": source.to_dict(),
                        },
                    )
                )

    def _scope_parts(self, context: ScopeContext) -> tuple[str, dict[str, Any]]:
        """The record-ref prefix and the constant envelope fields of one scope, built once per scope."""
        cached = self._scope_cache.get(id(context))
        if cached is not None and cached[0] is context:
            return cached[1], cached[2]
        if len(self._scope_cache) > 4096:
            self._scope_cache.clear()
        prefix = f"record:{context.owner_ref.partition(':')[2]}.{self._prefix}"
        constant = _envelope_constants(context)
        self._scope_cache[id(context)] = (context, prefix, constant)
        return prefix, constant

    def _envelope(self, record_type: str, t_ns: int, context: ScopeContext) -> dict[str, Any]:
        prefix, constant = self._scope_parts(context)
        self._sequence += 1
        return {
            "record_ref": f"{prefix}{self._sequence:x}",
            "record_type": record_type,
            "recorded_at": self._recorded_at,
            "observed_at": format_ns(t_ns),
            **constant,
        }

    def _metric(
        self,
        t_ns: int,
        context: ScopeContext,
        key: str,
        value: float | int,
        unit: str | None,
        step: int | None,
        aggregation_scope: str,
        tags: dict[str, Any] | None,
    ) -> CapturedEntry:
        prefix, _ = self._scope_parts(context)
        self._sequence += 1
        ref = f"{prefix}{self._sequence:x}"
        recorded_at = self._recorded_at
        return CapturedEntry(
            "RECORD",
            "MetricRecord",
            ref,
            recorded_at,
            None,
            MetricFields(
                ref, recorded_at, format_ns(t_ns), context, key, value, unit, step, aggregation_scope, tags
            ),
        )

    def _event(self, item: tuple[Any, ...]) -> CapturedEntry:
        _, t_ns, context, key, message, level, attributes = item
        envelope = self._envelope("event", t_ns, context)
        payload = _drop_none(
            {
                "event_key": key,
                "level": level,
                "message": message,
                "attributes": attributes,
                "origin_marker": "explicit_capture",
                "subject_ref": context.ref,
            }
        )
        return CapturedEntry(
            "RECORD",
            "StructuredEventRecord",
            envelope["record_ref"],
            envelope["recorded_at"],
            {"envelope": envelope, "payload": payload},
        )

    def _span(self, item: tuple[Any, ...]) -> CapturedEntry:
        _, t_ns, context, name, started_at, ended_at, status, attributes = item
        envelope = self._envelope("span", t_ns, context)
        payload = _drop_none(
            {
                "span_name": name,
                "started_at": started_at,
                "ended_at": ended_at,
                "status": status,
                "attributes": attributes,
                "subject_ref": context.ref,
            }
        )
        return CapturedEntry(
            "RECORD",
            "TraceSpanRecord",
            envelope["record_ref"],
            envelope["recorded_at"],
            {"envelope": envelope, "payload": payload},
        )

    def degraded(
        self,
        context: ScopeContext,
        reason_code: str,
        message: str,
        dropped_count: int,
        first_ns: int,
        last_ns: int,
        attributes: dict[str, Any] | None = None,
    ) -> CapturedEntry:
        """A degraded marker: how many records of `context`'s owner were lost, why, and when."""
        envelope = self._envelope("degraded", last_ns, context)
        envelope["completeness_marker"] = "partial"
        envelope["degradation_marker"] = "degraded"
        payload = _drop_none(
            {
                "reason_code": reason_code,
                "message": message,
                "dropped_count": dropped_count,
                "first_observed_at": format_ns(first_ns),
                "last_observed_at": format_ns(last_ns),
                "attributes": attributes,
                "subject_ref": context.owner_ref,
            }
        )
        return CapturedEntry(
            "RECORD",
            "DegradedRecord",
            envelope["record_ref"],
            envelope["recorded_at"],
            {"envelope": envelope, "payload": payload},
        )

    def _scope(self, item: tuple[Any, ...]) -> CapturedEntry:
        _, t_ns, context, status, started_ns, ended_ns, details = item
        started = format_ns(started_ns)
        ended = format_ns(ended_ns) if ended_ns is not None else None
        name = context.name
        document: dict[str, Any]
        if context.kind == "run":
            payload_type = "Run"
            document = {
                "run_ref": context.ref,
                "project_ref": f"project:{context.project}",
                "name": name,
                "status": status,
                "started_at": started,
                "ended_at": ended,
                **details,
            }
        elif context.kind == "stage":
            payload_type = "StageExecution"
            document = {
                "stage_execution_ref": context.ref,
                "run_ref": context.run_ref,
                "stage_name": name,
                "status": status,
                "started_at": started,
                "ended_at": ended,
                **details,
            }
        elif context.kind == "batch":
            payload_type = "BatchExecution"
            document = {
                "batch_execution_ref": context.ref,
                "run_ref": context.run_ref,
                "stage_execution_ref": context.stage_ref,
                "batch_name": name,
                "status": status,
                "started_at": started,
                "ended_at": ended,
                **details,
            }
        elif context.kind == "sample":
            payload_type = "SampleObservation"
            document = {
                "sample_observation_ref": context.ref,
                "run_ref": context.run_ref,
                "stage_execution_ref": context.stage_ref,
                "batch_execution_ref": context.batch_ref,
                "sample_name": name,
                "observed_at": started,
                "status": status,
                "ended_at": ended,
                **details,
            }
        elif context.kind == "operation":
            payload_type = "OperationExecution"
            document = {
                "operation_ref": context.ref,
                "run_ref": context.run_ref,
                "stage_execution_ref": context.stage_ref,
                "operation_name": name,
                "status": status,
                "started_at": started,
                "ended_at": ended,
            }
        else:
            payload_type = "DeploymentExecution"
            document = {
                "deployment_execution_ref": context.ref,
                "project_ref": f"project:{context.project}",
                "deployment_name": name,
                "status": status,
                "started_at": started,
                "ended_at": ended,
                "run_ref": context.run_ref,
                **details,
            }
        return CapturedEntry("CONTEXT", payload_type, context.ref, format_ns(t_ns), _drop_none(document))


def entries_from_lines(lines: Iterable[dict[str, Any]]) -> list[CapturedEntry]:
    """Entries back from capture-log lines (outbox replay, log readers)."""
    return [
        CapturedEntry(
            line["family"], line["payload_type"], line["payload_ref"], line["captured_at"], line["payload"]
        )
        for line in lines
    ]
