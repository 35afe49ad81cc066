"""The span side of the OpenTelemetry sink: contexta scopes and records as spans and span events.

A scope's open record starts a span (with the scope's own start time) under its parent's span, and
its close record ends it (with the scope's end time and status), whichever writer batches the two
arrive in: open spans are kept here, by ref, until their end. Records of an open scope (events,
artifact registrations, loss markers, metrics sent as events) become events of its span, and
`scope.span(...)` records become child spans. Only imported once the SDK is known to be installed.

Open spans are kept by (ref, execution): two executions of one run name open at once (contexta
records them apart, and warns) are two traces, never one span superseding the other; a record goes
to the span of its own execution (named by its record ref, or a metric's context), else to the latest
open one of its ref.

Robust to what a sink may be given: a close record whose open was never seen (a batch replayed from
the outbox) still makes the whole span, since close records carry the start time too; a record whose
scope is not open goes to its nearest open ancestor, or, with none, to a zero-length span of its own.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, Status, StatusCode, Tracer

from contexta.integrations._otel_values import (
    AttributeValue,
    attribute_value,
    flat_attributes,
    record_execution,
    time_ns,
)

__all__ = ["SCOPE_TYPES", "SpanBook"]


@dataclass(frozen=True, slots=True)
class _ScopeType:
    kind: str
    ref_field: str
    name_field: str
    start_field: str
    parent_fields: tuple[str, ...]  # the first present one names the parent scope


SCOPE_TYPES: dict[str, _ScopeType] = {
    "Run": _ScopeType("run", "run_ref", "name", "started_at", ()),
    "StageExecution": _ScopeType("stage", "stage_execution_ref", "stage_name", "started_at", ("run_ref",)),
    "BatchExecution": _ScopeType(
        "batch", "batch_execution_ref", "batch_name", "started_at", ("stage_execution_ref",)
    ),
    "SampleObservation": _ScopeType(
        "sample",
        "sample_observation_ref",
        "sample_name",
        "observed_at",
        ("batch_execution_ref", "stage_execution_ref"),
    ),
    "OperationExecution": _ScopeType(
        "operation", "operation_ref", "operation_name", "started_at", ("stage_execution_ref",)
    ),
    "DeploymentExecution": _ScopeType(
        "deployment", "deployment_execution_ref", "deployment_name", "started_at", ()
    ),
}

# Fields of a scope document that are not attributes: times, status and its failure (span status),
# the display name (the span name) and the owning process's lock bookkeeping.
_NOT_ATTRIBUTES = frozenset(
    (
        "status",
        "started_at",
        "ended_at",
        "observed_at",
        "failure",
        "display_name",
        "owner_pid",
        "owner_host",
        "owner_lock",
        "owner_id",
    )
)
_FLATTENED = {
    "tags": "contexta.tag.",
    "metadata": "contexta.metadata.",
    "config_snapshot": "contexta.config.",
}
_ENVELOPE_SCOPES = (
    "sample_observation_ref",
    "batch_execution_ref",
    "stage_execution_ref",
    "deployment_execution_ref",
    "run_ref",
)
_RUN_LINKS_KEPT = 1024  # ended runs whose span a later deployment (run_ref=...) may link to
# An open scope's key: its ref and its execution (None for a deployment, which has none).
_Key = tuple[str, str | None]


@dataclass(slots=True)
class _Open:
    span: Span
    kind: str
    started_at: str


def _scope_attributes(kind: str, document: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {"contexta.kind": kind}
    for key, value in document.items():
        if key in _NOT_ATTRIBUTES:
            continue
        prefix = _FLATTENED.get(key)
        if prefix is not None and isinstance(value, Mapping):
            attributes.update(flat_attributes(prefix, value))
            continue
        converted = attribute_value(value)
        if converted is not None:
            attributes[f"contexta.{key}"] = converted
    return attributes


class SpanBook:
    """Open spans by scope ref and execution, and the rules that turn each record into span calls
    (one thread)."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer
        self._open: dict[_Key, _Open] = {}  # in opening order: `end_open` ends children first
        self._executions: dict[str, list[str | None]] = {}  # ref -> its open executions, oldest first
        self._ended_runs: OrderedDict[str, SpanContext] = OrderedDict()
        self.spans_started = 0
        self.spans_ended = 0
        self.orphans = 0  # records whose scope and ancestors were not open (see the module doc)

    @property
    def open_count(self) -> int:
        return len(self._open)

    # -- scopes ---------------------------------------------------------------------------------

    def scope(self, payload_type: str, document: Mapping[str, Any]) -> None:
        """An open or close record of a run, stage, batch, sample, operation or deployment."""
        kind = SCOPE_TYPES[payload_type]
        key: _Key = (document[kind.ref_field], document.get("execution_id"))
        started_at = document[kind.start_field]
        current = self._open.get(key)
        if current is not None and current.started_at != started_at:
            # A new opening of a scope still open here (resume=True after a lost close): the old
            # span ends where the new one starts, so neither is left open.
            current.span.set_attribute("contexta.ended_by", "superseded")
            self._end(key, time_ns(started_at))
            current = None
        if current is None:
            current = self._start(kind, key, started_at, document)
        if document.get("status", "open") == "open":
            return
        span = current.span
        span.set_attributes(_scope_attributes(kind.kind, document))
        span.set_attribute("contexta.status", document["status"])
        failure = document.get("failure")
        ended_ns = time_ns(document.get("ended_at") or started_at)
        if document["status"] == "failed":
            description = document.get("end_reason") or "failed"
            if isinstance(failure, Mapping):
                description = f"{failure.get('type')}: {failure.get('message')}"
                span.add_event(
                    "exception",
                    {
                        "exception.type": str(failure.get("type")),
                        "exception.message": str(failure.get("message")),
                        "exception.stacktrace": str(failure.get("traceback") or ""),
                    },
                    timestamp=ended_ns,
                )
            span.set_status(Status(StatusCode.ERROR, description))
        self._end(key, ended_ns)

    def _lookup(self, ref: str, execution: str | None) -> _Open | None:
        """The open span of `ref` in `execution`; with no execution known (or a scope that has none,
        a deployment), the latest open one of `ref`."""
        opened = self._open.get((ref, execution))
        if opened is not None:
            return opened
        executions = self._executions.get(ref)
        if not executions:
            return None
        if execution is None or executions[-1] is None:
            return self._open[(ref, executions[-1])]
        return None  # open only in other executions: not this record's scope

    def _start(self, kind: _ScopeType, key: _Key, started_at: str, document: Mapping[str, Any]) -> _Open:
        ref, execution = key
        parent = next(
            (
                opened
                for field in kind.parent_fields
                if isinstance(document.get(field), str)
                and (opened := self._lookup(document[field], execution)) is not None
            ),
            None,
        )
        links: list[Link] = []
        if kind.kind == "deployment" and document.get("run_ref"):
            run = self._lookup(document["run_ref"], None)
            linked = (
                run.span.get_span_context() if run is not None else self._ended_runs.get(document["run_ref"])
            )
            if linked is not None:
                links.append(Link(linked, {"contexta.link": "run_ref"}))
        name = document.get("display_name") or document.get(kind.name_field) or ref
        span = self._tracer.start_span(
            f"{kind.kind} {name}",
            context=trace.set_span_in_context(parent.span, Context()) if parent is not None else Context(),
            attributes=_scope_attributes(kind.kind, document),
            links=links,
            start_time=time_ns(started_at),
        )
        opened = _Open(span, kind.kind, started_at)
        self._open[key] = opened
        self._executions.setdefault(ref, []).append(execution)
        self.spans_started += 1
        return opened

    def _end(self, key: _Key, end_ns: int) -> None:
        opened = self._open.pop(key)
        ref, execution = key
        executions = self._executions[ref]
        executions.remove(execution)
        if not executions:
            del self._executions[ref]
        opened.span.end(end_time=end_ns)
        self.spans_ended += 1
        if opened.kind == "run":
            self._ended_runs[ref] = opened.span.get_span_context()
            while len(self._ended_runs) > _RUN_LINKS_KEPT:
                self._ended_runs.popitem(last=False)

    def end_open(self, reason: str) -> int:
        """End every span still open now (children before parents), marked as ended by `reason`
        with status "open": their scopes had not ended when the sink was closed."""
        keys = list(self._open)
        now = time.time_ns()
        for key in reversed(keys):
            span = self._open[key].span
            span.set_attributes({"contexta.status": "open", "contexta.ended_by": reason})
            self._end(key, now)
        return len(keys)

    def forget_open(self) -> None:
        """Let go of every open span without ending it (a forked child's copies of its parent's)."""
        self._open.clear()
        self._executions.clear()

    def environment(self, document: Mapping[str, Any]) -> None:
        """The run's environment snapshot as attributes of its span (the package list left out: it
        is hundreds of entries, kept in the capture log and the store)."""
        opened = self._lookup(document.get("run_ref", ""), document.get("execution_id"))
        if opened is None:
            return
        opened.span.set_attributes(
            {
                f"contexta.environment.{key}": converted
                for key, value in document.items()
                if key not in ("packages", "run_ref", "execution_id", "captured_at")
                and (converted := attribute_value(value)) is not None
            }
        )

    # -- records --------------------------------------------------------------------------------

    def find(self, refs: Iterable[str | None], execution: str | None = None) -> Span | None:
        """The span of the first open scope among `refs` (a subject, then its ancestors) in
        `execution` (see `_lookup`)."""
        for ref in refs:
            if ref is not None:
                opened = self._lookup(ref, execution)
                if opened is not None:
                    return opened.span
        return None

    def add_event(
        self,
        refs: Iterable[str | None],
        name: str,
        attributes: dict[str, AttributeValue],
        timestamp: str,
        execution: str | None = None,
    ) -> None:
        """An event on the nearest open scope's span, or on a zero-length span of its own."""
        stamp = time_ns(timestamp)
        span = self.find(refs, execution)
        if span is not None:
            span.add_event(name, attributes, timestamp=stamp)
            return
        self.orphans += 1
        orphan = self._tracer.start_span(
            f"event {name}",
            context=Context(),
            attributes={"contexta.kind": "orphan-record"},
            start_time=stamp,
        )
        orphan.add_event(name, attributes, timestamp=stamp)
        orphan.end(end_time=stamp)

    def record(self, payload_type: str, document: Mapping[str, Any]) -> None:
        """A RECORD-family entry other than a metric: an event, a span, or a loss marker."""
        envelope = document.get("envelope", {})
        payload = document.get("payload", {})
        refs = (payload.get("subject_ref"), *(envelope.get(field) for field in _ENVELOPE_SCOPES))
        observed = envelope.get("observed_at") or envelope.get("recorded_at")
        execution = record_execution(envelope)
        if payload_type == "StructuredEventRecord":
            attributes = flat_attributes("", payload.get("attributes"))
            attributes["contexta.level"] = str(payload.get("level", "info"))
            if payload.get("message") is not None:
                attributes["contexta.message"] = str(payload["message"])
            attributes["contexta.record_ref"] = str(envelope.get("record_ref"))
            self.add_event(refs, str(payload.get("event_key")), attributes, observed, execution)
        elif payload_type == "TraceSpanRecord":
            self._trace_span(refs, envelope, payload, execution)
        elif payload_type == "DegradedRecord":
            attributes = flat_attributes("contexta.", {**payload, "attributes": None})
            attributes.update(flat_attributes("", payload.get("attributes")))
            self.add_event(refs, "contexta.degraded", attributes, observed, execution)

    def _trace_span(
        self,
        refs: tuple[str | None, ...],
        envelope: Mapping[str, Any],
        payload: Mapping[str, Any],
        execution: str | None,
    ) -> None:
        parent = self.find(refs, execution)
        attributes = flat_attributes("", payload.get("attributes"))
        attributes.update({"contexta.kind": "span", "contexta.record_ref": str(envelope.get("record_ref"))})
        status = str(payload.get("status", "ok"))
        attributes["contexta.status"] = status
        span = self._tracer.start_span(
            str(payload.get("span_name")),
            context=trace.set_span_in_context(parent, Context()) if parent is not None else Context(),
            attributes=attributes,
            start_time=time_ns(payload["started_at"]),
        )
        if status == "error":
            span.set_status(Status(StatusCode.ERROR, "error"))
        span.end(end_time=time_ns(payload["ended_at"]))
        self.spans_started += 1
        self.spans_ended += 1

    def artifact(self, document: Mapping[str, Any]) -> None:
        """An artifact registration as an event on its stage's or run's span."""
        manifest = document.get("manifest") or {}
        attributes = flat_attributes("contexta.artifact.", manifest)
        attributes["contexta.artifact.binding_status"] = str(document.get("binding_status"))
        refs = (manifest.get("stage_execution_ref"), manifest.get("run_ref"))
        stamp = manifest.get("created_at")
        if not isinstance(stamp, str):
            return
        self.add_event(refs, "artifact.registered", attributes, stamp)
