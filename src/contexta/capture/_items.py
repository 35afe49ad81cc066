"""The small tuples capture calls enqueue, and the immutable scope context they point to.

A queued item is a flat tuple of atoms plus one shared `ScopeContext`, so the caller allocates one
tuple per call and the garbage collector has almost nothing to walk while items wait in the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, NamedTuple

__all__ = [
    "ARTIFACT",
    "BARRIER",
    "ENVIRONMENT",
    "EVENT",
    "KIND",
    "METRIC",
    "METRICS",
    "METRIC_AGGREGATION",
    "METRIC_CONTEXT",
    "METRIC_KEY",
    "METRIC_STEP",
    "METRIC_TAGS",
    "METRIC_T_NS",
    "METRIC_UNIT",
    "METRIC_VALUE",
    "SCOPE",
    "SPAN",
    "ScopeContext",
    "as_context",
    "has_default_options",
    "only_tuples",
    "record_count",
]

# Item kinds (the first element of every queued tuple).
# METRIC and METRICS items hold their scope's context as a plain tuple of its fields (see `as_context`).
METRIC = 1  # (METRIC, t_ns, ctx, key, value, unit, step, aggregation_scope, tags)
METRICS = 2  # (METRICS, t_ns, ctx, ((key, value), ...), unit, step)
EVENT = 3  # (EVENT, t_ns, ctx, key, message, level, attributes)
SPAN = 4  # (SPAN, t_ns, ctx, name, started_at, ended_at, status, attributes)
SCOPE = 5  # (SCOPE, t_ns, ctx, status, started_ns, ended_ns, details)
ARTIFACT = 6  # (ARTIFACT, t_ns, ctx, manifest, source, binding_status)
BARRIER = 7  # (BARRIER, t_ns, None, threading.Event, fsync)
ENVIRONMENT = 8  # (ENVIRONMENT, t_ns, ctx, fields)

# Column getters, for the writer's passes over a whole batch at C speed (`list(map(METRIC_VALUE, run))`).
KIND = itemgetter(0)
METRIC_T_NS, METRIC_CONTEXT, METRIC_KEY, METRIC_VALUE = (
    itemgetter(1),
    itemgetter(2),
    itemgetter(3),
    itemgetter(4),
)
METRIC_UNIT, METRIC_STEP, METRIC_AGGREGATION, METRIC_TAGS = (
    itemgetter(5),
    itemgetter(6),
    itemgetter(7),
    itemgetter(8),
)
_TUPLE_ONLY = frozenset((tuple,))


class ScopeContext(NamedTuple):
    """Where records of one scope belong: built once when the scope opens, shared by all its items.

    A tuple of strings on purpose: the garbage collector stops tracking tuples of atoms, so the
    queued items that point to it cost the collector nothing while they wait.
    """

    kind: str  # run | stage | batch | sample | operation | deployment
    ref: str
    name: str  # the name as the user typed it (the ref holds its component, see `ref_component`)
    project: str  # the project's ref component
    owner_ref: str  # the run (or, for a run-less deployment, the deployment) that owns its records
    run_ref: str | None = None
    stage_ref: str | None = None
    batch_ref: str | None = None
    sample_ref: str | None = None
    deployment_ref: str | None = None
    operation_ref: str | None = None
    # Which execution of the run these records belong to: each `ctx.run(name)` is a new one (a
    # `resume=True` joins the latest), so a re-run or a second process never mixes with the first.
    execution_id: str | None = None


def as_context(context: ScopeContext | tuple[str | None, ...]) -> ScopeContext:
    """The context of a queued item. Metric items carry it as a plain tuple of the same fields: the
    collector untracks a plain tuple of atoms (a NamedTuple never), so queued metrics, which are
    nothing but atoms then, stop costing it anything after their first young collection. A
    training loop pays for that collector in every capture call."""
    return context if type(context) is ScopeContext else ScopeContext._make(context)


def only_tuples(items: Sequence[Any]) -> bool:
    """True when every item is still a queued tuple (the writer built no entry among them)."""
    return set(map(type, items)) <= _TUPLE_ONLY


def has_default_options(run: Sequence[tuple[Any, ...]]) -> bool:
    """True when every metric of `run` has no unit and the "step" aggregation scope."""
    length = len(run)
    return (
        list(map(METRIC_UNIT, run)).count(None) == length
        and list(map(METRIC_AGGREGATION, run)).count("step") == length
    )


def record_count(items: Sequence[tuple[Any, ...]]) -> int:
    """How many records queued items become: one per key of a `metrics()` call, none for a flush
    barrier, one for anything else (the unit every `CaptureStats` counter but `batches` uses)."""
    kinds = list(map(KIND, items))
    if METRICS not in kinds and BARRIER not in kinds:
        return len(items)  # the common case, decided at C speed
    return sum(
        len(item[3]) if kind == METRICS else 0 if kind == BARRIER else 1
        for kind, item in zip(kinds, items, strict=True)
    )
