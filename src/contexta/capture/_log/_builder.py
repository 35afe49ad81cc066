"""Writer-side conversion of queued tuples into a batch's items, in the writer thread.

Metric tuples pass through untouched (a multi-key `metrics()` call is split into one tuple per key);
every other kind becomes a `CapturedEntry` with a JSON-ready document. Each item of a batch is named by
its position: the item at position p is record number `first + p` of this process, so metric refs
need not be built until a sink asks for them, and every sink derives the same ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from contexta.capture._items import (
    ARTIFACT,
    ARTIFACT_FIELDS,
    ENVIRONMENT,
    ENVIRONMENT_FIELDS,
    EVENT,
    EVENT_FIELDS,
    KIND,
    METRIC,
    METRICS,
    SCOPE,
    SCOPE_FIELDS,
    SPAN,
    SPAN_FIELDS,
    ScopeContext,
    only_metrics,
    split_metrics,
)
from contexta.capture._log._entries import CapturedEntry, drop_none, envelope_constants, record_ref_prefix
from contexta.capture._log._metric_lines import Numbering
from contexta.contract._timestamps import format_ns

__all__ = ["BatchItems", "EntryBuilder", "degraded_entry"]

# A batch's items: raw METRIC tuples and built entries, in capture order.
BatchItems = list[Any]


class EntryBuilder:
    """Numbers records and builds the entries of everything that is not a metric."""

    def __init__(self) -> None:
        self.reset_ids()

    def reset_ids(self) -> None:
        """A fresh id prefix, so a forked child never reuses its parent's record refs."""
        self.id_prefix = f"{os.urandom(4).hex()}-"
        self._next = 1  # the number of position 0 of the next batch
        self._numbering = self.begin()

    def begin(self) -> Numbering:
        """Start a batch: its first record number and its recorded-at time."""
        now = time.time_ns()
        self._numbering = Numbering(self.id_prefix, self._next, now, format_ns(now))
        return self._numbering

    def finish(self, items: BatchItems) -> Numbering:
        """End the batch `items` (its numbers are now taken) and return its numbering."""
        self._next = self._numbering.first + len(items)
        return self._numbering

    def build(
        self,
        queued: Iterable[tuple[Any, ...]],
        items: BatchItems,
        *,
        all_metrics: bool | None = None,
        others: list[int] | None = None,
    ) -> None:
        """Append the items for `queued` to `items`. What the caller knows of `queued` already (the
        writer's `QueuedFacts`) saves a pass: `all_metrics`, whether all are single metrics; `others`,
        the positions of the items that are not."""
        if all_metrics is None:
            all_metrics = isinstance(queued, list) and only_metrics(queued)
        if all_metrics:
            items += queued  # only single metrics: they pass through as they are
            return
        if others is None or not isinstance(queued, list):
            for item in queued:
                self._build_one(item, items)
            return
        # A few other items among single metrics (a run's first batch holds its opening and the
        # environment): the runs of metrics between them are copied whole, at C speed, instead of
        # item by item in Python (0.6-1 ms of the writer's turn for 16,384 items).
        start = 0
        for position in others:
            items += queued[start:position]
            self._build_one(queued[position], items)
            start = position + 1
        items += queued[start:]

    def _build_one(self, item: tuple[Any, ...], items: BatchItems) -> None:
        kind = KIND(item)
        if kind == METRIC:
            items.append(item)
        elif kind == METRICS:
            split_metrics(item, items.append)
        else:
            items.append(self._entry(item, len(items)))

    def _entry(self, item: tuple[Any, ...], position: int) -> CapturedEntry:
        build = _ENTRY_BUILDERS.get(KIND(item))
        if build is None:
            raise ValueError(f"unknown capture item kind {KIND(item)!r}")
        return build(item, self._numbering, position)

    def degraded(
        self,
        items: BatchItems,
        context: ScopeContext,
        reason_code: str,
        message: str,
        dropped_count: int,
        first_ns: int,
        last_ns: int,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        """Append a degraded marker to `items`: how many records of `context`'s owner were lost, why, when."""
        items.append(
            degraded_entry(
                self._numbering,
                len(items),
                context,
                context.owner_ref,
                reason_code,
                message,
                dropped_count,
                first_ns,
                last_ns,
                attributes,
            )
        )


# -- the entry of each kind but the metrics, from its queued item ---------------------------------
# Each takes the item, the batch's numbering and the item's position in the batch (a record's ref
# and recorded-at time come from them; a scope, environment or artifact entry needs neither).


def _event_entry(item: tuple[Any, ...], numbering: Numbering, position: int) -> CapturedEntry:
    t_ns, context, key, message, level, attributes = EVENT_FIELDS(item)
    payload = drop_none(
        {
            "event_key": key,
            "level": level,
            "message": message,
            "attributes": attributes,
            "origin_marker": "explicit_capture",
            "subject_ref": context.ref,
        }
    )
    return _record("StructuredEventRecord", _envelope(numbering, "event", t_ns, context, position), payload)


def _span_entry(item: tuple[Any, ...], numbering: Numbering, position: int) -> CapturedEntry:
    t_ns, context, name, started_at, ended_at, status, attributes = SPAN_FIELDS(item)
    payload = drop_none(
        {
            "span_name": name,
            "started_at": started_at,
            "ended_at": ended_at,
            "status": status,
            "attributes": attributes,
            "subject_ref": context.ref,
        }
    )
    return _record("TraceSpanRecord", _envelope(numbering, "span", t_ns, context, position), payload)


def _scope_entry(item: tuple[Any, ...], numbering: Numbering, position: int) -> CapturedEntry:
    t_ns, context, status, started_ns, ended_ns, details = SCOPE_FIELDS(item)
    payload_type, document_of = _SCOPE_DOCUMENTS[context.kind]
    # Models hold the ref's component as the name (SPEC section 7); the name as typed travels
    # beside it as `display_name`, which the store keeps and queries show.
    document = document_of(
        context,
        context.ref.rpartition(".")[2],
        status,
        format_ns(started_ns),
        format_ns(ended_ns) if ended_ns is not None else None,
    )
    document.update(details)
    return CapturedEntry("CONTEXT", payload_type, context.ref, format_ns(t_ns), drop_none(document))


def _environment_entry(item: tuple[Any, ...], numbering: Numbering, position: int) -> CapturedEntry:
    t_ns, context, fields = ENVIRONMENT_FIELDS(item)
    document = {
        "run_ref": context.run_ref,
        "execution_id": context.execution_id,
        "captured_at": format_ns(t_ns),
        **fields,
    }
    return CapturedEntry("CONTEXT", "EnvironmentSnapshot", context.run_ref, format_ns(t_ns), document)


def _artifact_entry(item: tuple[Any, ...], numbering: Numbering, position: int) -> CapturedEntry:
    t_ns, context, manifest, source, binding_status = ARTIFACT_FIELDS(item)
    return CapturedEntry(
        "ARTIFACT",
        "ArtifactRegistration",
        manifest.artifact_ref,
        format_ns(t_ns),
        {
            "binding_status": binding_status,
            # The manifest names the execution it belongs to, so that a store rebuilt or
            # replayed from this line puts it there (the model ignores the extra field).
            "manifest": drop_none({**manifest.to_dict(omit_none=True), "execution_id": context.execution_id}),
            "source": source.to_dict(),
        },
    )


_ENTRY_BUILDERS: dict[int, Callable[[tuple[Any, ...], Numbering, int], CapturedEntry]] = {
    EVENT: _event_entry,
    SPAN: _span_entry,
    SCOPE: _scope_entry,
    ENVIRONMENT: _environment_entry,
    ARTIFACT: _artifact_entry,
}


# -- a scope's document, by the kind of scope: (context, name, status, started, ended) -> fields ----
# (the closing's details are added after these fields; the order is the capture log's)


def _run_document(
    context: ScopeContext, name: str, status: str, started: str, ended: str | None
) -> dict[str, Any]:
    return {
        "run_ref": context.ref,
        "execution_id": context.execution_id,
        "project_ref": f"project:{context.project}",
        "name": name,
        "display_name": context.name,
        "status": status,
        "started_at": started,
        "ended_at": ended,
    }


def _stage_document(
    context: ScopeContext, name: str, status: str, started: str, ended: str | None
) -> dict[str, Any]:
    return {
        "stage_execution_ref": context.ref,
        "run_ref": context.run_ref,
        "execution_id": context.execution_id,
        "stage_name": name,
        "display_name": context.name,
        "status": status,
        "started_at": started,
        "ended_at": ended,
    }


def _batch_document(
    context: ScopeContext, name: str, status: str, started: str, ended: str | None
) -> dict[str, Any]:
    return {
        "batch_execution_ref": context.ref,
        "run_ref": context.run_ref,
        "execution_id": context.execution_id,
        "stage_execution_ref": context.stage_ref,
        "batch_name": name,
        "display_name": context.name,
        "status": status,
        "started_at": started,
        "ended_at": ended,
    }


def _sample_document(
    context: ScopeContext, name: str, status: str, started: str, ended: str | None
) -> dict[str, Any]:
    return {
        "sample_observation_ref": context.ref,
        "run_ref": context.run_ref,
        "execution_id": context.execution_id,
        "stage_execution_ref": context.stage_ref,
        "batch_execution_ref": context.batch_ref,
        "sample_name": name,
        "display_name": context.name,
        "observed_at": started,
        "status": status,
        "ended_at": ended,
    }


def _operation_document(
    context: ScopeContext, name: str, status: str, started: str, ended: str | None
) -> dict[str, Any]:
    return {
        "operation_ref": context.ref,
        "run_ref": context.run_ref,
        "execution_id": context.execution_id,
        "stage_execution_ref": context.stage_ref,
        "operation_name": name,
        "display_name": context.name,
        "status": status,
        "started_at": started,
        "ended_at": ended,
    }


def _deployment_document(
    context: ScopeContext, name: str, status: str, started: str, ended: str | None
) -> dict[str, Any]:
    return {
        "deployment_execution_ref": context.ref,
        "project_ref": f"project:{context.project}",
        "deployment_name": name,
        "display_name": context.name,
        "status": status,
        "started_at": started,
        "ended_at": ended,
        "run_ref": context.run_ref,
        "run_execution_id": context.execution_id,
    }


_ScopeDocument = Callable[[ScopeContext, str, str, str, "str | None"], dict[str, Any]]
_SCOPE_DOCUMENTS: dict[str, tuple[str, _ScopeDocument]] = {
    "run": ("Run", _run_document),
    "stage": ("StageExecution", _stage_document),
    "batch": ("BatchExecution", _batch_document),
    "sample": ("SampleObservation", _sample_document),
    "operation": ("OperationExecution", _operation_document),
    "deployment": ("DeploymentExecution", _deployment_document),
}


def _envelope(
    numbering: Numbering, record_type: str, t_ns: int, context: ScopeContext, position: int
) -> dict[str, Any]:
    return {
        "record_ref": f"{record_ref_prefix(context, numbering.id_prefix)}{numbering.first + position}",
        "record_type": record_type,
        "recorded_at": numbering.recorded_at,
        "observed_at": format_ns(t_ns),
        **envelope_constants(context),
    }


def _record(payload_type: str, envelope: dict[str, Any], payload: dict[str, Any]) -> CapturedEntry:
    return CapturedEntry(
        "RECORD",
        payload_type,
        envelope["record_ref"],
        envelope["recorded_at"],
        {"envelope": envelope, "payload": payload},
    )


def degraded_entry(
    numbering: Numbering,
    position: int,
    context: ScopeContext,
    subject_ref: str,
    reason_code: str,
    message: str,
    dropped_count: int,
    first_ns: int,
    last_ns: int,
    attributes: dict[str, Any] | None = None,
) -> CapturedEntry:
    """A degraded marker, record number `position` of the batch `numbering` names: how many records
    of `context` were lost, why, and when."""
    envelope = _envelope(numbering, "degraded", last_ns, context, position)
    envelope["completeness_marker"] = "partial"
    envelope["degradation_marker"] = "degraded"
    payload = drop_none(
        {
            "reason_code": reason_code,
            "message": message,
            "dropped_count": dropped_count,
            "first_observed_at": format_ns(first_ns),
            "last_observed_at": format_ns(last_ns),
            "attributes": attributes,
            "subject_ref": subject_ref,
        }
    )
    return _record("DegradedRecord", envelope, payload)
