"""One capture-log line as one short line for people: when, what kind, which subject, and what
(`key=value` for a metric, the message for an event, the status for a scope)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contexta.cli import _cells as cells
from contexta.cli._tables import cut, cut_left, display_width
from contexta.cli._terminal import terminal_safe
from contexta.contract import decode_metric_value

__all__ = ["LogEntry", "describe_line", "render_entry"]

_KIND_WIDTH = len("environment")
_MIN_SUBJECT_WIDTH = 16
_EARLIEST = datetime.min.replace(tzinfo=UTC)

# Context payloads: their kind, and the payload field that names them.
_SCOPES = {
    "Run": ("run", "name"),
    "StageExecution": ("stage", "stage_name"),
    "BatchExecution": ("batch", "batch_name"),
    "SampleObservation": ("sample", "sample_name"),
    "OperationExecution": ("operation", "operation_name"),
    "DeploymentExecution": ("deployment", "deployment_name"),
}


@dataclass(frozen=True, slots=True)
class LogEntry:
    """What a line is about, ready to print; `line` is the parsed line itself (for `--format json`)."""

    observed_at: str | None
    kind: str
    subject: str
    detail: str
    line: Mapping[str, Any]

    @property
    def sort_key(self) -> datetime:
        return cells.instant(self.observed_at) or _EARLIEST


def _mapping(item: Any) -> Mapping[str, Any]:
    return item if isinstance(item, Mapping) else {}


def _text(item: Any) -> str:
    return "" if item is None else cells.value(item)


def _record_entry(line: Mapping[str, Any], payload_type: str, document: Mapping[str, Any]) -> LogEntry:
    envelope = _mapping(document.get("envelope"))
    body = _mapping(document.get("payload"))
    subject = _text(body.get("subject_ref") or envelope.get("run_ref") or line.get("payload_ref"))
    observed_at = envelope.get("observed_at") or line.get("captured_at")
    if payload_type == "MetricRecord":
        kind = "metric"
        # A NaN or infinite value is a token in the log ("NaN", "Infinity"): shown as nan / inf.
        detail = f"{_text(body.get('metric_key'))}={_text(decode_metric_value(body.get('value')))}"
        if body.get("unit"):
            detail += f" {_text(body.get('unit'))}"
        if body.get("step") is not None:
            detail += f" step={_text(body.get('step'))}"
    elif payload_type == "StructuredEventRecord":
        kind = "event"
        level = body.get("level")
        prefix = "" if level in (None, "info") else f"[{_text(level)}] "
        detail = f"{prefix}{_text(body.get('event_key'))}: {_text(body.get('message'))}"
    elif payload_type == "TraceSpanRecord":
        kind = "span"
        took = cells.duration(body.get("started_at"), body.get("ended_at"))
        detail = f"{_text(body.get('span_name'))} {_text(body.get('status'))} {took}"
    elif payload_type == "DegradedRecord":
        kind = "degraded"
        dropped = body.get("dropped_count")
        detail = f"{_text(body.get('reason_code'))}: {_text(body.get('message'))}"
        if dropped:
            detail += f" ({_text(dropped)} dropped)"
    else:
        kind = payload_type or "record"
        detail = ""
    return LogEntry(observed_at, kind, subject, detail, line)


def describe_line(line: Mapping[str, Any]) -> LogEntry:
    """The entry of one parsed capture-log line; unfamiliar lines still get their type and ref."""
    payload_type = _text(line.get("payload_type"))
    document = _mapping(line.get("payload"))
    captured_at = line.get("captured_at")
    ref = _text(line.get("payload_ref"))
    if line.get("family") == "RECORD":
        return _record_entry(line, payload_type, document)
    if payload_type == "ArtifactRegistration":
        manifest = _mapping(document.get("manifest"))
        binding = document.get("binding_status")
        detail = f"{_text(manifest.get('artifact_kind'))} {cells.size(manifest.get('size_bytes'))}"
        if binding not in (None, "BOUND"):
            detail += f" {_text(binding)}"
        return LogEntry(captured_at, "artifact", _text(manifest.get("artifact_ref")) or ref, detail, line)
    if payload_type in _SCOPES:
        kind, name_field = _SCOPES[payload_type]
        detail = f"{_text(document.get(name_field))} {_text(document.get('status'))}".strip()
        return LogEntry(captured_at, kind, ref, detail, line)
    if payload_type == "EnvironmentSnapshot":
        detail = f"Python {_text(document.get('python_version'))} on {_text(document.get('platform'))}"
        return LogEntry(captured_at, "environment", ref, detail, line)
    return LogEntry(captured_at, payload_type or "line", ref, "", line)


def render_entry(entry: LogEntry, width: int) -> str:
    """`12:00:00.123 metric     stage:p.run.train  loss=0.25 step=3`, at most `width` columns: a long
    subject is cut from the left (its end says most), then the detail from the right. Captured text
    shows its control characters and line breaks escaped, counted in the width."""
    head = terminal_safe(f"{cells.clock(entry.observed_at)} {entry.kind:<{_KIND_WIDTH}} ")
    room = width - display_width(head)
    subject, detail = terminal_safe(entry.subject), terminal_safe(entry.detail)
    if not detail:
        return cut(head + subject, width).rstrip()
    if display_width(subject) + 2 + display_width(detail) > room:
        subject_room = max(room - 2 - display_width(detail), min(display_width(subject), _MIN_SUBJECT_WIDTH))
        subject = cut_left(subject, subject_room)
    return cut(f"{head}{subject}  {detail}", width).rstrip()
