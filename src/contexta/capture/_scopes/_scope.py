"""Sync capture scopes: run, stage, batch, sample, operation and deployment.

A scope is opened by the call that creates it and closed when its `with` block ends (`completed`, or
`failed` / `cancelled` when an exception escapes, which is never swallowed; capture/_scopes/_endings.py says
which, and what the closing records about why). Capture calls on a scope check their input, stamp the
time and enqueue one small tuple; everything else happens in the writer.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from contextvars import Token
from datetime import datetime
from types import MappingProxyType, MethodType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self, TypeVar

from contexta._liveness import acquire_owner_lock
from contexta.capture._artifacts import register_artifact as build_registration
from contexta.capture._environment import environment_fields
from contexta.capture._items import (
    METRIC,
    METRICS,
    ScopeContext,
    artifact_item,
    environment_item,
    event_item,
    metric_item,
    metrics_item,
    scope_item,
    span_item,
)
from contexta.capture._pipeline._queue import CaptureQueue
from contexta.capture._pipeline._results import ACCEPTED, DROPPED, CaptureResult
from contexta.capture._scopes._compiled import Completed
from contexta.capture._scopes._endings import COMPLETED, Ending, ending_for_error
from contexta.capture._scopes._metric_checks import (
    KNOWN_KEYS,
    checked_key,
    checked_metric,
    checked_pairs,
    checked_unit,
)
from contexta.capture._scopes._session import CaptureSession, OpenScope
from contexta.contract._checks import check_choice, check_metric_key, check_step, plain_text
from contexta.contract._records import EVENT_LEVELS, SPAN_STATUSES
from contexta.contract._refs import (
    batch_ref,
    new_execution_id,
    operation_ref,
    parse_ref,
    ref_component,
    sample_ref,
    stage_ref,
)
from contexta.contract._timestamps import format_ns, normalize_timestamp, parse_timestamp
from contexta.errors import CaptureWarning, ClosedScopeError, ConflictError, LifecycleError, ValidationError

if TYPE_CHECKING:
    from contexta.capture._scopes._metric_call import MetricCall as _CompiledMetric
    from contexta.capture._scopes._metric_call import MetricsCall as _CompiledMetrics
    from contexta.capture._system_metrics import SystemMetricsSampler

__all__ = [
    "ENVIRONMENT_WAIT_S",
    "BatchScope",
    "DeploymentScope",
    "OperationScope",
    "RunScope",
    "SampleScope",
    "Scope",
    "ScopeInternals",
    "StageScope",
]

_time_ns = time.time_ns
# How long a run's close, or a flush without a timeout, waits for the run's environment snapshot
# (listing packages and asking git take tens of milliseconds; a hung `git` gives up after 5 s).
ENVIRONMENT_WAIT_S = 10.0
_FLOAT_ONLY = {float}
# What an async shell's compiled `metric()` answers a call it queued: `await` gives ACCEPTED at once.
_AWAITED_ACCEPTED = None if Completed is None else Completed(ACCEPTED)


class ScopeInternals(NamedTuple):
    """What other objects use of a sync scope, declared in one place (`Scope.internals`; not API).

    The async shell (contexta/_async/_scopes.py) builds the same checked items the sync calls build,
    puts them on the same queue, and leaves and finishes the scope; a scope's parent closes it with
    itself, and hears from it when it closed. Each field but the queue is the scope's own bound method:
    a scope keeps the one it made on first request, a reference cycle the collector frees (as it frees
    the compiled metric call's), so that closing each of many samples costs its stage nothing more.
    """

    queue: CaptureQueue
    # (key, value, unit, step, aggregation_scope, tags) -> the checked METRIC item
    metric_item: Callable[
        [str, float | int, str | None, int | None, str, Mapping[str, Any] | None], tuple[Any, ...]
    ]
    # (values, step, unit) -> the METRICS item of the valid pairs (None without any), the refusal or None
    metrics_item: Callable[
        [Mapping[str, float | int], int | None, str | None],
        tuple[tuple[Any, ...] | None, ValidationError | None],
    ]
    # (the shell's own `async def metric`) -> its compiled stand-in, or None (see `Scope._awaitable_metric`)
    awaitable_metric: Callable[
        [Callable[..., Awaitable[CaptureResult]]], Callable[..., Awaitable[CaptureResult]] | None
    ]
    # (key, message, level, attributes) -> the checked EVENT item
    event_item: Callable[[str, str, str, Mapping[str, Any] | None], tuple[Any, ...]]
    # (name, started_at, ended_at, status, attributes) -> the checked SPAN item
    span_item: Callable[
        [str, str | datetime | None, str | datetime | None, str, Mapping[str, Any] | None], tuple[Any, ...]
    ]
    leave: Callable[[], None]  # the first half of leaving `with`: stop being the current scope
    finish: Callable[[BaseException | None], None]  # the second half: close as the block ended
    close: Callable[[Ending, float | None], None]  # close with an ending (and a deadline), children first
    child_closed: Callable[[Scope], None]  # a child of this scope has closed


_REF_FIELDS = {
    "stage": "stage_ref",
    "batch": "batch_ref",
    "sample": "sample_ref",
    "operation": "operation_ref",
}
_ORDERED_KINDS = frozenset(("stage", "batch"))
_ChildT = TypeVar("_ChildT", bound="Scope")


class Scope:
    """Behaviour every scope shares: emission, closing, and being the current scope in a `with` block."""

    kind: ClassVar[str]

    def __init__(
        self,
        session: CaptureSession,
        parent: Scope | None,
        context: ScopeContext,
        details: dict[str, Any] | None = None,
    ):
        self._session = session
        self._parent = parent
        self._context = context
        self._fields = tuple(context)  # what metric items carry (see _items.as_context)
        self._details = details or {}
        self._put = session.pipeline.put  # CaptureQueue.put, bound once: the one bounded put
        self._queue = session.pipeline.queue
        # The compiled calls bound to this scope, closed with it (see `_close`).
        self._compiled: list[_CompiledMetric | _CompiledMetrics] = []
        if session.metric_call is not None and session.metrics_call is not None:
            self._shadow_with_compiled_calls(session.metric_call, session.metrics_call)
        self._internals: ScopeInternals | None = None  # see `internals`
        self._lock = threading.RLock()  # re-entrant: a signal handler may close it while this thread holds it
        self._children: dict[tuple[str, str], Scope] = {}
        self._child_counts: dict[str, int] = {}
        self._tokens: list[Token[OpenScope | None]] = []
        self._status = "open"
        self._started_ns = _time_ns()
        self._ended_ns: int | None = None
        self._enqueue_lifecycle(self._started_ns)
        session.note_opened(self, self._end)

    # -- properties ----------------------------------------------------------------------------

    @property
    def ref(self) -> str:
        return self._context.ref

    @property
    def name(self) -> str:
        return self._context.name

    @property
    def status(self) -> str:
        return self._status

    @property
    def started_at(self) -> str:
        return format_ns(self._started_ns)

    @property
    def ended_at(self) -> str | None:
        return None if self._ended_ns is None else format_ns(self._ended_ns)

    @property
    def parent(self) -> Scope | None:
        return self._parent

    @property
    def run_ref(self) -> str | None:
        return self._context.run_ref

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ref} {self._status}>"

    @property
    def internals(self) -> ScopeInternals:
        """Not API: what the async facade and this scope's parent and children use of it."""
        internals = self._internals
        if internals is None:  # made on first request (a parent's, once for all its children)
            internals = self._internals = ScopeInternals(
                self._queue,
                self._metric_item,
                self._metrics_item,
                self._awaitable_metric,
                self._event_item,
                self._span_item,
                self._leave,
                self._finish,
                self._close,
                self._child_closed,
            )
        return internals

    # -- emission (the hot path) ---------------------------------------------------------------

    def _shadow_with_compiled_calls(
        self, metric_call: type[_CompiledMetric], metrics_call: type[_CompiledMetrics]
    ) -> None:
        """Shadow `metric` and `metrics` on this instance with the compiled calls, which hand every case
        but the common one to the methods below, and so to the rules (see capture/_scopes/_metric_call.c).
        They append to the queue's deque themselves (never replaced: cleared in place after a fork)."""
        queue = self._queue
        metric = metric_call(
            MethodType(type(self).metric, self),
            queue.items,
            queue,
            self._fields,
            KNOWN_KEYS,
            METRIC,
            ACCEPTED,
            "step",
        )
        metrics = metrics_call(
            MethodType(type(self).metrics, self),
            queue.items,
            queue,
            self._fields,
            KNOWN_KEYS,
            METRICS,
            ACCEPTED,
        )
        setattr(self, "metric", metric)  # noqa: B010 (mypy refuses a plain assignment over a method)
        setattr(self, "metrics", metrics)  # noqa: B010
        self._compiled.extend((metric, metrics))

    def _awaitable_metric(
        self, fallback: Callable[..., Awaitable[CaptureResult]]
    ) -> Callable[..., Awaitable[CaptureResult]] | None:
        """The compiled `metric()` for an async shell over this scope, or None where calls are not
        compiled. It queues the common call as this scope's compiled `metric` does and answers it with
        an awaitable already done (no coroutine frame to make and run); every other call goes to
        `fallback`, the shell's `async def metric`, which checks it and awaits room in a full queue.
        Closed with this scope, like this scope's own."""
        compiled = self._session.metric_call
        if compiled is None or _AWAITED_ACCEPTED is None:
            return None
        queue = self._queue
        call = compiled(
            fallback, queue.items, queue, self._fields, KNOWN_KEYS, METRIC, _AWAITED_ACCEPTED, "step"
        )
        with self._lock:  # made after this scope closed: closed at once
            if self._status == "open":
                self._compiled.append(call)
            else:
                call.close()
        return call

    def _closed_error(self) -> ClosedScopeError:
        return ClosedScopeError(
            f"{self.ref} is already {self._status}; capture into an open scope",
            code="scope_closed",
            details={"ref": self.ref},
        )

    def metric(
        self,
        key: str,
        value: float | int,
        *,
        unit: str | None = None,
        step: int | None = None,
        aggregation_scope: str = "step",
        tags: Mapping[str, Any] | None = None,
    ) -> CaptureResult:
        """Record one numeric observation; returns at once (the writer does the rest)."""
        # The call a training loop makes millions of times: one guard lets the common call (a key
        # seen before, a finite float, a valid step or none, no other option) skip the checks.
        if (
            key not in KNOWN_KEYS
            or type(value) is not float
            or value - value != 0.0
            or (step is not None and (type(step) is not int or not 0 <= step < 2**63))
            or unit is not None
            or aggregation_scope != "step"
            or tags is not None
        ):
            value, unit, tags = checked_metric(self._session, key, value, unit, step, aggregation_scope, tags)
        if self._status != "open":
            raise self._closed_error()
        # A METRIC item (`metric_item`), built literally: a call would cost this call a measurable share.
        item = (METRIC, _time_ns(), self._fields, key, value, unit, step, aggregation_scope, tags)
        return ACCEPTED if self._put(item) else DROPPED

    def metrics(
        self, values: Mapping[str, float | int], *, step: int | None = None, unit: str | None = None
    ) -> CaptureResult:
        """Record several metrics observed together (the training-loop form: one call per step).

        A key or value that is refused never costs the others: every valid pair is recorded, then
        `ValidationError` (code `metrics_partly_invalid`) names the refused keys. A bad `step` or
        `unit`, which every pair shares, refuses the whole call.
        """
        item, refused = self._metrics_item(values, step, unit)
        accepted = item is None or self._put(item)
        if refused is not None:
            raise refused
        return ACCEPTED if accepted else DROPPED

    def _metrics_item(
        self, values: Mapping[str, float | int], step: int | None, unit: str | None
    ) -> tuple[tuple[Any, ...] | None, ValidationError | None]:
        """The queued item of a `metrics()` call's valid pairs (None when there are none) and the
        error to raise once it is queued (None when every pair is valid); shared by both facades."""
        if self._status != "open":
            raise self._closed_error()
        if step is not None and (type(step) is not int or not 0 <= step < 2**63):
            check_step(step)
        if unit is not None:
            unit = checked_unit(unit)
        # The training-loop form: one guard, at C speed, lets the common call skip the rules (every key
        # seen before, every value a float, and a finite sum: a NaN or an infinity makes it non-finite).
        if (
            type(values) is dict
            and values
            and KNOWN_KEYS.issuperset(values)
            and set(map(type, numbers := values.values())) == _FLOAT_ONLY
            and (total := sum(numbers)) - total == 0.0
        ):
            pairs, refused = tuple(values.items()), None
        else:
            pairs, refused = checked_pairs(values, self._session.record_non_finite)
        return (metrics_item(_time_ns(), self._fields, pairs, unit, step) if pairs else None), refused

    def _metric_item(
        self,
        key: str,
        value: float | int,
        unit: str | None,
        step: int | None,
        aggregation_scope: str,
        tags: Mapping[str, Any] | None,
    ) -> tuple[Any, ...]:
        """The queued item of a `metric()` call, checked by the same rules as `metric` (the async
        facade's; tests run every bad input through both)."""
        if self._status != "open":
            raise self._closed_error()
        value, unit, tags = checked_metric(self._session, key, value, unit, step, aggregation_scope, tags)
        return metric_item(_time_ns(), self._fields, key, value, unit, step, aggregation_scope, tags)

    def event(
        self, key: str, *, message: str, level: str = "info", attributes: Mapping[str, Any] | None = None
    ) -> CaptureResult:
        """Record something that happened, with a message for people and attributes for queries."""
        return ACCEPTED if self._put(self._event_item(key, message, level, attributes)) else DROPPED

    def _event_item(
        self, key: str, message: str, level: str, attributes: Mapping[str, Any] | None
    ) -> tuple[Any, ...]:
        if self._status != "open":
            raise self._closed_error()
        if key not in KNOWN_KEYS:
            checked_key(key)
        if type(message) is not str:
            if not isinstance(message, str):
                raise ValidationError(
                    f"event message must be a string, got {type(message).__name__}",
                    code="event_message_invalid",
                )
            message = str.__str__(message)  # a StrEnum member: its plain value
        if level not in EVENT_LEVELS:
            check_choice(level, EVENT_LEVELS, "level")
        if not message.isascii():  # text cut inside an emoji must not cost the writer its batch
            message = plain_text(message)
        checked = None if attributes is None else self._session.attributes(attributes)
        return event_item(_time_ns(), self._context, key, self._session.text(message), level, checked)

    def span(
        self,
        name: str,
        *,
        started_at: str | datetime | None = None,
        ended_at: str | datetime | None = None,
        status: str = "ok",
        attributes: Mapping[str, Any] | None = None,
    ) -> CaptureResult:
        """Record a timed piece of work that already happened (both ends default to now)."""
        item = self._span_item(name, started_at, ended_at, status, attributes)
        return ACCEPTED if self._put(item) else DROPPED

    def _span_item(
        self,
        name: str,
        started_at: str | datetime | None,
        ended_at: str | datetime | None,
        status: str,
        attributes: Mapping[str, Any] | None,
    ) -> tuple[Any, ...]:
        if self._status != "open":
            raise self._closed_error()
        check_metric_key(name)
        now = format_ns(_time_ns())
        start = now if started_at is None else normalize_timestamp(started_at, "started_at")
        end = now if ended_at is None else normalize_timestamp(ended_at, "ended_at")
        if parse_timestamp(end) < parse_timestamp(start):
            raise ValidationError(
                f"span {name!r} ends ({end}) before it starts ({start})", code="span_time_invalid"
            )
        check_choice(status, SPAN_STATUSES, "status")
        checked = None if attributes is None else self._session.attributes(attributes)
        return span_item(_time_ns(), self._context, name, start, end, status, checked)

    def register_artifact(
        self,
        kind: str,
        path: Any,
        *,
        attributes: Mapping[str, Any] | None = None,
        artifact_ref: str | None = None,
        compute_hash: bool = True,
        allow_missing: bool = False,
    ) -> CaptureResult:
        """Hash a file (streaming BLAKE3) and bind it to this run; the manifest is in `payload`."""
        if self._status != "open":
            raise self._closed_error()
        registration = build_registration(
            self._context,
            kind,
            path,
            attributes=None if attributes is None else self._session.attributes(attributes),
            artifact_ref=artifact_ref,
            compute_hash=compute_hash,
            allow_missing=allow_missing,
        )
        self._session.artifacts[registration.manifest.artifact_ref] = registration
        accepted = self._put(
            artifact_item(
                _time_ns(),
                self._context,
                registration.manifest,
                registration.source,
                registration.binding_status,
            )
        )
        return CaptureResult(
            "accepted" if accepted else "dropped",
            MappingProxyType(
                {
                    "manifest": registration.manifest,
                    "source": registration.source,
                    "binding_status": registration.binding_status,
                }
            ),
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def _enqueue_lifecycle(self, t_ns: int, ending: dict[str, Any] | None = None) -> None:
        details = {**self._details, **ending} if ending else self._details  # why it ended: closing only
        self._queue.put_structural(
            scope_item(t_ns, self._context, self._status, self._started_ns, self._ended_ns, details)
        )

    def _open_child(
        self,
        scope_class: type[_ChildT],
        name: str,
        build_ref: Callable[[str, str], str],
        details: dict[str, Any] | None = None,
    ) -> _ChildT:
        """Open a child scope: its context is this one's with the child's own ref filled in."""
        if self._status != "open":
            raise self._closed_error()
        kind = scope_class.kind
        ref = build_ref(self._context.ref, name)  # checks the name; its component ends the ref
        context = self._context._replace(kind=kind, ref=ref, name=name, **{_REF_FIELDS[kind]: ref})
        with self._lock:
            key = (kind, ref)
            if key in self._children:
                raise ConflictError(
                    f"a {kind} named {name!r} ({ref}) is already open under {self.ref}; names must be "
                    "unique among open siblings",
                    code=f"{kind}_already_open",
                    details={"ref": self.ref, "name": name},
                )
            child_details = dict(details or {})
            if kind in _ORDERED_KINDS:
                child_details["order_index"] = self._child_counts.get(kind, 0)
            self._child_counts[kind] = self._child_counts.get(kind, 0) + 1
            child = scope_class(self._session, self, context, child_details)
            self._children[key] = child
        return child

    def _child_closed(self, child: Scope) -> None:
        with self._lock:
            self._children.pop((child.kind, child.ref), None)

    def close(self, status: str = "completed") -> None:
        """Close this scope (and any open children) with a terminal status; closing twice is harmless."""
        check_choice(status, ("completed", "failed", "cancelled"), "status")
        self._close(COMPLETED if status == "completed" else Ending(status))

    def _close(self, ending: Ending, deadline: float | None = None) -> None:
        """Close with `ending` (its reason and failure go on the closing only). `deadline`, a
        `time.monotonic()` instant, is given when the process is ending (exit, a signal): no wait
        goes beyond it, and the caller delivers everything at once instead of one barrier per run."""
        with self._lock:
            if self._status != "open":
                return
            children = list(self._children.values())
        for child in children:
            child.internals.close(ending.for_children(), deadline)
        with self._lock:
            if self._status != "open":
                return
            self._status = ending.status
            for call in self._compiled:
                call.close()
            self._ended_ns = max(_time_ns(), self._started_ns)
        self._enqueue_lifecycle(self._ended_ns, ending.details())
        if self._parent is not None:
            self._parent.internals.child_closed(self)
        self._after_close(deadline)

    def _after_close(self, deadline: float | None) -> None:
        """Run and deployment scopes turn their end into a flush barrier."""

    def _end(self, ending: Ending, deadline: float | None = None) -> None:
        """Close with `ending`, after an event saying why when it was not a normal end (the event
        `{kind}.failed` or `{kind}.cancelled`, never waiting and never dropped)."""
        if ending.end_reason is not None and ending.status != "completed" and self._status == "open":
            attributes = {"end_reason": ending.end_reason}
            if ending.failure is not None:
                attributes["exception_type"] = ending.failure["type"]
            level = "error" if ending.status == "failed" else "warning"
            try:
                item = self._event_item(f"{self.kind}.{ending.status}", ending.describe(), level, attributes)
            except ClosedScopeError:
                return  # another thread closed it meanwhile: that closing stands
            self._queue.put_structural(item)
        self._close(ending, deadline)

    def __enter__(self) -> Self:
        self._tokens.append(self._session.current_scope.set(self))
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._leave()
        self._finish(error)

    def _leave(self) -> None:
        """Stop being the current scope of this thread or task (the first half of leaving `with`)."""
        if self._tokens:
            token = self._tokens.pop()
            try:
                self._session.current_scope.reset(token)
            except ValueError:  # exited in another context than it was entered in
                pass

    def _finish(self, error: BaseException | None) -> None:
        """Close as the `with` block ended: `completed`, or `failed` / `cancelled` with an event saying
        why (the second half of leaving `with`; the async facade runs it off the event loop for runs)."""
        self._end(ending_for_error(error))


class SampleScope(Scope):
    """One observed input or output (a row, an image, a prompt and its answer)."""

    kind = "sample"


class OperationScope(Scope):
    """A named unit of work inside a stage; its records carry the stage and its own ref as subject."""

    kind = "operation"


class _SampleOwner(Scope):
    def sample(
        self, name: str, *, retention_class: str | None = None, redaction_profile: str | None = None
    ) -> SampleScope:
        """Open a sample; several may be open at once (one per thread or task) with distinct names."""
        details = {}
        for field, value in (("retention_class", retention_class), ("redaction_profile", redaction_profile)):
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"{field} must be a string", code="field_invalid")
            if value is not None:
                details[field] = plain_text(value)
        return self._open_child(SampleScope, name, sample_ref, details)


class BatchScope(_SampleOwner):
    """One repeated unit inside a stage (an epoch, a file, a chunk)."""

    kind = "batch"


class StageScope(_SampleOwner):
    """A named phase of a run (train, evaluate)."""

    kind = "stage"

    def batch(self, name: str) -> BatchScope:
        return self._open_child(BatchScope, name, batch_ref)

    def operation(self, name: str) -> OperationScope:
        return self._open_child(OperationScope, name, operation_ref)


class RunScope(Scope):
    """One execution of a piece of ML work; its end is a flush barrier."""

    kind = "run"

    def __init__(
        self,
        session: CaptureSession,
        parent: Scope | None,
        context: ScopeContext,
        details: dict[str, Any] | None = None,
        system_metrics_s: float | None = None,
    ):
        if system_metrics_s is not None:  # psutil missing: refused before anything of the run exists
            from contexta.capture._system_metrics import require_psutil

            require_psutil()
        # Held from before the store can see the run until its close is stored (contexta/_liveness.py).
        self._owner_lock = (
            None
            if session.live_dir is None or context.execution_id is None
            else acquire_owner_lock(session.live_dir, context.execution_id)
        )
        details = dict(details or {})
        details.update(session.owner_fields(), owner_lock=self._owner_lock is not None)
        super().__init__(session, parent, context, details)
        self._environment = threading.Thread(
            target=self._capture_environment, name="contexta-environment", daemon=True
        )
        self._environment.start()
        # Samples CPU, memory, disk, network and GPUs into the `system` stage (capture/_system_metrics.py).
        self._system_metrics: SystemMetricsSampler | None = None
        if system_metrics_s is not None:
            from contexta.capture._system_metrics import start_system_metrics

            self._system_metrics = start_system_metrics(self, system_metrics_s)

    @property
    def execution_id(self) -> str:
        """This execution's id: `ctx.get_run_snapshot(f"{run.ref}@{run.execution_id}")` reads it
        even after the name was run again."""
        assert self._context.execution_id is not None
        return self._context.execution_id

    def _after_close(self, deadline: float | None) -> None:
        self._session.remove_run(self)
        if deadline is not None:
            return  # the process is ending: its ending delivers everything at once, and the kernel
            # lets go of the owner lock (the next Contexta removes the file)
        if self._session.pipeline.barrier_for_scope_exit() and self._owner_lock is not None:
            self._owner_lock.release()  # the close is stored: nobody may call this run interrupted
            self._owner_lock = None

    def _capture_environment(self) -> None:
        try:
            fields = environment_fields()
        except Exception as error:  # an odd interpreter must not cost the run its records
            fields = {
                "python_version": "unknown",
                "platform": "unknown",
                "attributes": {"error": f"{type(error).__name__}: {error}"},
            }
        try:
            # One per run and part of what the run is: never waits, never dropped.
            self._queue.put_structural(environment_item(_time_ns(), self._context, fields))
        except LifecycleError:  # the Contexta was closed meanwhile
            pass

    def wait_for_environment(self, timeout: float) -> None:
        """Wait at most `timeout` seconds for this run's environment snapshot to be queued: a flush
        right after the run opened covers it too, as it covers the run's opening."""
        if threading.current_thread() is not self._environment:
            self._environment.join(timeout=max(0.0, timeout))

    def _close(self, ending: Ending, deadline: float | None = None) -> None:
        # Sampling stops first, so its last samples are queued before the run's closing and its barrier.
        sampler, self._system_metrics = self._system_metrics, None
        if sampler is not None:
            sampler.stop(deadline=deadline)
        # The snapshot is part of the run: it is queued before the run's closing, while the queue is
        # open (at interpreter exit too), unless the deadline passes first.
        self.wait_for_environment(ENVIRONMENT_WAIT_S if deadline is None else deadline - time.monotonic())
        super()._close(ending, deadline)

    @property
    def run_id(self) -> str:
        return self.ref

    def replace_config_snapshot(self, config_snapshot: Mapping[str, Any]) -> None:
        """Make `config_snapshot` this open run's configuration, checked (and its secrets redacted) as
        `ctx.run(..., config_snapshot=)` does; `ClosedScopeError` once the run is closed.

        For configuration learned after the run had to open (a learning rate a finder picked; a
        Lightning logger hears the hyperparameters after the trainer touched its run): the run's
        opening is recorded again with it, same execution and start, so the store, a rebuild from
        the capture log and every sink see one run that stays open, never a closing and a resume."""
        checked = self._session.attributes(config_snapshot, "config_snapshot")
        with self._lock:
            if self._status != "open":
                raise self._closed_error()
            details = {key: value for key, value in self._details.items() if key != "config_snapshot"}
            if checked is not None:
                details["config_snapshot"] = checked
            self._details = details
            self._queue.put_structural(
                scope_item(_time_ns(), self._context, self._status, self._started_ns, None, details)
            )

    def stage(self, name: str) -> StageScope:
        return self._open_child(StageScope, name, stage_ref)


class DeploymentScope(Scope):
    """Putting a result somewhere (staging, production), optionally linked to the run and artifact;
    its end is a flush barrier."""

    kind = "deployment"

    def __init__(
        self,
        session: CaptureSession,
        parent: Scope | None,
        context: ScopeContext,
        details: dict[str, Any] | None = None,
    ):
        # Held like a run's (contexta/_liveness.py), so a deployment whose process was killed is
        # closed `interrupted` too, instead of looking live forever.
        owner_id = new_execution_id()
        self._owner_lock = (
            None if session.live_dir is None else acquire_owner_lock(session.live_dir, owner_id)
        )
        details = {**(details or {}), **session.owner_fields()}
        if self._owner_lock is not None:
            details["owner_id"] = owner_id
        super().__init__(session, parent, context, details)

    def _after_close(self, deadline: float | None) -> None:
        self._session.release(self.ref)
        if deadline is not None:
            return  # the process is ending, and its ending delivers everything at once
        if self._session.pipeline.barrier_for_scope_exit() and self._owner_lock is not None:
            self._owner_lock.release()
            self._owner_lock = None


def open_run(
    session: CaptureSession,
    name: str,
    *,
    run_id: str | None,
    details: dict[str, Any],
    resume: bool = False,
    system_metrics_s: float | None = None,
) -> RunScope:
    """Open a run scope: a new execution of its name, or with `resume` the latest one (the facade
    checks the arguments that go into `details`); `system_metrics_s` samples system metrics that often."""
    if not isinstance(name, str):
        raise ValidationError(f"run name must be a string, got {type(name).__name__}", code="name_invalid")
    if run_id is not None:
        ref = run_id if run_id.startswith("run:") else session.run_ref_for(run_id)
        parsed = parse_ref(ref, "run")
        if parsed.project != session.project_component:
            raise ValidationError(
                f"run_id {run_id!r} belongs to another project than {session.project!r}",
                code="ref_parent_mismatch",
            )
    else:
        ref = session.run_ref_for(name)
    execution_id = session.execution_for(ref, _time_ns(), resume=resume)
    context = ScopeContext(
        "run", ref, name, session.project_component, ref, run_ref=ref, execution_id=execution_id
    )
    details = {**details, "project_name": session.project}
    scope = RunScope(session, None, context, details, system_metrics_s)
    others = session.add_run(scope)
    if others:
        warnings.warn(
            f"contexta: {ref} is already open in this process (pid {os.getpid()} on {session.host}); "
            f"this run is recorded as a separate execution ({execution_id}), never mixed with the "
            "other one",
            CaptureWarning,
            stacklevel=3,
        )
    return scope


def open_deployment(
    session: CaptureSession, name: str, *, run_ref_value: str | None, artifact_ref: str | None
) -> DeploymentScope:
    if not isinstance(name, str):
        raise ValidationError(
            f"deployment name must be a string, got {type(name).__name__}", code="name_invalid"
        )
    project = session.project_component
    if run_ref_value is not None and parse_ref(run_ref_value, "run").project != project:
        raise ValidationError(
            f"run_ref {run_ref_value!r} is not a run of project {project!r}", code="ref_parent_mismatch"
        )
    if artifact_ref is not None:
        parse_ref(artifact_ref, "artifact")
    ref = f"deployment:{project}.{ref_component(name, 'deployment name')}"
    # The execution the deployment is of: the one of its run this session opened last, if any (the
    # store links it to the latest stored one otherwise).
    execution_id = None if run_ref_value is None else session.latest_execution(run_ref_value)
    context = ScopeContext(
        "deployment",
        ref,
        name,
        project,
        run_ref_value or ref,
        run_ref=run_ref_value,
        deployment_ref=ref,
        execution_id=execution_id,
    )
    details: dict[str, Any] = {"artifact_ref": artifact_ref} if artifact_ref else {}
    if not session.claim(ref):
        raise ConflictError(
            f"{ref} is already open in this process; close it before opening it again",
            code="deployment_already_open",
            details={"ref": ref},
        )
    try:
        scope = DeploymentScope(session, None, context, details)
    except BaseException:
        session.release(ref)
        raise
    session.replace(ref, scope)
    return scope
