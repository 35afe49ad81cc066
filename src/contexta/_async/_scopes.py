"""Async capture scopes: thin awaitable shells over the sync scopes, on the one capture pipeline.

Every rule (names, refs, validation, statuses, what a closing writes) lives in the sync scope each
shell wraps; a shell only decides how to wait. Capture calls build the same queued item the sync
call builds and await room in the queue instead of blocking; hashing an artifact and closing a run
(which waits for the run's records to reach the sinks) run in a worker thread. The current scope
follows each task through the same context variable the sync facade uses.

`metric()` is the hot call, and a coroutine costs it more than its work: where the compiled calls
are built, each shell shadows its `metric` with a compiled one (`Scope.internals.awaitable_metric`)
that queues the common call as the sync compiled call does and returns an awaitable already done;
every other call (a new key, other options, a full queue, a closed scope) goes to the coroutine
below, so what is checked, what is raised and when a caller awaits room are unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from types import MethodType, TracebackType
from typing import Any, Self

import anyio

from contexta._async._backend import load_event_loop_backend
from contexta._async._enqueue import await_room, enqueue
from contexta.capture._pipeline._results import ACCEPTED, DROPPED, CaptureResult
from contexta.capture._scopes._scope import (
    BatchScope,
    DeploymentScope,
    OperationScope,
    RunScope,
    SampleScope,
    Scope,
    StageScope,
)

__all__ = [
    "AsyncBatchScope",
    "AsyncDeploymentScope",
    "AsyncOperationScope",
    "AsyncRunScope",
    "AsyncSampleScope",
    "AsyncScope",
    "AsyncStageScope",
]


class AsyncScope:
    """What every async scope shares: awaitable emission, and closing at the end of `async with`."""

    # `__dict__` holds the compiled `metric` that shadows the method (an instance attribute, as on
    # the sync scope: a slot of that name would clash with the method).
    __slots__ = ("__dict__", "_internals", "_queue", "_scope")

    def __init__(self, scope: Scope):
        self._scope = scope
        self._internals = scope.internals  # what this shell uses of the sync scope, and nothing else
        self._queue = self._internals.queue
        compiled = self._internals.awaitable_metric(MethodType(type(self).metric, self))
        if compiled is not None:
            setattr(self, "metric", compiled)  # noqa: B010 (mypy refuses a plain assignment over a method)

    # -- the sync scope's identity -------------------------------------------------------------

    @property
    def sync(self) -> Scope:
        """The sync scope this one drives (the same run, stage, ... for sync code)."""
        return self._scope

    @property
    def ref(self) -> str:
        return self._scope.ref

    @property
    def name(self) -> str:
        return self._scope.name

    @property
    def status(self) -> str:
        return self._scope.status

    @property
    def started_at(self) -> str:
        return self._scope.started_at

    @property
    def ended_at(self) -> str | None:
        return self._scope.ended_at

    @property
    def run_ref(self) -> str | None:
        return self._scope.run_ref

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ref} {self.status}>"

    # -- emission ------------------------------------------------------------------------------

    async def metric(
        self,
        key: str,
        value: float | int,
        *,
        unit: str | None = None,
        step: int | None = None,
        aggregation_scope: str = "step",
        tags: Mapping[str, Any] | None = None,
    ) -> CaptureResult:
        """Record one numeric observation; awaits only when the queue is full under `block`.

        The compiled stand-in (see the module's docstring) queues the common call when it is made
        and returns an awaitable already done; this coroutine takes every other call.
        """
        item = self._internals.metric_item(key, value, unit, step, aggregation_scope, tags)
        # `enqueue`, spelled out: the common call, queued by `offer`, then needs no coroutine of its own.
        offered = self._queue.offer(item)
        if offered is None:
            offered = await await_room(self._queue, item)
        return ACCEPTED if offered else DROPPED

    async def metrics(
        self, values: Mapping[str, float | int], *, step: int | None = None, unit: str | None = None
    ) -> CaptureResult:
        """Record several metrics observed together; a refused pair never costs the valid ones (they
        are recorded, then `ValidationError` names the refused keys, as in the sync facade)."""
        item, refused = self._internals.metrics_item(values, step, unit)
        result = ACCEPTED if item is None else await enqueue(self._queue, item)
        if refused is not None:
            raise refused
        return result

    async def event(
        self, key: str, *, message: str, level: str = "info", attributes: Mapping[str, Any] | None = None
    ) -> CaptureResult:
        return await enqueue(self._queue, self._internals.event_item(key, message, level, attributes))

    async def span(
        self,
        name: str,
        *,
        started_at: str | datetime | None = None,
        ended_at: str | datetime | None = None,
        status: str = "ok",
        attributes: Mapping[str, Any] | None = None,
    ) -> CaptureResult:
        item = self._internals.span_item(name, started_at, ended_at, status, attributes)
        return await enqueue(self._queue, item)

    async def register_artifact(
        self,
        kind: str,
        path: Any,
        *,
        attributes: Mapping[str, Any] | None = None,
        artifact_ref: str | None = None,
        compute_hash: bool = True,
        allow_missing: bool = False,
    ) -> CaptureResult:
        """Hash the file in a worker thread (the loop keeps running) and bind it to this run."""
        register = functools.partial(
            self._scope.register_artifact,
            kind,
            path,
            attributes=attributes,
            artifact_ref=artifact_ref,
            compute_hash=compute_hash,
            allow_missing=allow_missing,
        )
        return await anyio.to_thread.run_sync(register)

    # -- lifecycle -----------------------------------------------------------------------------

    async def close(self, status: str = "completed") -> None:
        """Close this scope (and its open children) with a terminal status."""
        self._scope.close(status)

    async def _finish(self, error: BaseException | None) -> None:
        self._internals.finish(error)  # never waits: openings and closings are never held back

    async def __aenter__(self) -> Self:
        self._scope.__enter__()
        return self

    async def __aexit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._internals.leave()  # in this task's context, where `async with` entered it
        await self._finish(error)


class AsyncSampleScope(AsyncScope):
    """One observed input or output; many may be open at once under a stage, one per task."""

    __slots__ = ()
    _scope: SampleScope


class AsyncOperationScope(AsyncScope):
    __slots__ = ()
    _scope: OperationScope


class _AsyncSampleOwner(AsyncScope):
    __slots__ = ()
    _scope: StageScope | BatchScope

    def sample(
        self, name: str, *, retention_class: str | None = None, redaction_profile: str | None = None
    ) -> AsyncSampleScope:
        """Open a sample: `async with stage.sample(case.name) as sample:`."""
        return AsyncSampleScope(
            self._scope.sample(name, retention_class=retention_class, redaction_profile=redaction_profile)
        )


class AsyncBatchScope(_AsyncSampleOwner):
    __slots__ = ()
    _scope: BatchScope


class AsyncStageScope(_AsyncSampleOwner):
    __slots__ = ()
    _scope: StageScope

    def batch(self, name: str) -> AsyncBatchScope:
        return AsyncBatchScope(self._scope.batch(name))

    def operation(self, name: str) -> AsyncOperationScope:
        return AsyncOperationScope(self._scope.operation(name))


class _AsyncTopLevelScope(AsyncScope):
    """Runs and deployments: closing waits for their records to reach the sinks, so it runs in a
    worker thread, shielded from cancellation (a cancelled run still closes `cancelled`, and its
    records are delivered)."""

    __slots__ = ()

    def __init__(self, scope: RunScope | DeploymentScope):
        super().__init__(scope)
        load_event_loop_backend()  # closing needs it; loading it there would stall a busy loop

    async def close(self, status: str = "completed") -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._scope.close, status)

    async def _finish(self, error: BaseException | None) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._internals.finish, error)


class AsyncRunScope(_AsyncTopLevelScope):
    """One execution, captured from async code: `async with ctx.arun("eval") as run:`."""

    __slots__ = ()
    _scope: RunScope

    @property
    def run_id(self) -> str:
        return self._scope.run_id

    @property
    def execution_id(self) -> str:
        """This execution's id (see `RunScope.execution_id`)."""
        return self._scope.execution_id

    def stage(self, name: str) -> AsyncStageScope:
        return AsyncStageScope(self._scope.stage(name))


class AsyncDeploymentScope(_AsyncTopLevelScope):
    __slots__ = ()
    _scope: DeploymentScope
