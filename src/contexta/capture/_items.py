"""The small tuples capture calls enqueue, and the immutable scope context they point to.

A queued item is a flat tuple of atoms plus one shared `ScopeContext`, so the caller allocates one
tuple per call and the garbage collector has almost nothing to walk while items wait in the queue.

This module is the one declaration of their layout. Every item is `(kind, t_ns, context, *fields)`:
each kind has a constructor (`event_item(t_ns, context, key, message, level, attributes)`) and a
getter of its fields in the constructor's order (`EVENT_FIELDS(item)`), and `KIND`, `T_NS` and
`CONTEXT` read the three positions all kinds share: code that builds or reads an item goes through
them, never through a position of its own. Items stay plain tuples, never NamedTuples: the writer
tells raw metrics from built entries by `type(item) is tuple`, and the collector stops tracking a
plain tuple of atoms (see `as_context`).

The exceptions, for speed: `Scope.metric` and the compiled call (capture/_scopes/_metric_call.c) build
the METRIC item as a literal, since a call to `metric_item` would cost the caller's hottest call a
measurable share, and so does `split_metrics` below, once per key in the writer.
tests/capture/test_item_layouts.py holds every literal item equal to what its constructor builds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from threading import Event

    from contexta.contract._artifacts import ArtifactManifest, ArtifactSource

try:  # one compiled pass over queued items (capture/_metric_columns.c), where the package has it
    from contexta.capture._metric_columns import has_barrier as _compiled_has_barrier
    from contexta.capture._metric_columns import only_metrics as _compiled_only_metrics
    from contexta.capture._metric_columns import only_tuples as _compiled_only_tuples
    from contexta.capture._metric_columns import pop_left as _compiled_pop_left
    from contexta.capture._metric_columns import queued_facts as _compiled_queued_facts
    from contexta.capture._metric_columns import record_count as _compiled_record_count
except ImportError:
    _compiled_has_barrier = _compiled_record_count = _compiled_only_tuples = None  # type: ignore[assignment]
    _compiled_only_metrics = _compiled_pop_left = _compiled_queued_facts = None  # type: ignore[assignment]

__all__ = [
    "ARTIFACT",
    "ARTIFACT_FIELDS",
    "BARRIER",
    "BARRIER_DONE",
    "CONTEXT",
    "ENVIRONMENT",
    "ENVIRONMENT_FIELDS",
    "EVENT",
    "EVENT_FIELDS",
    "KIND",
    "METRIC",
    "METRICS",
    "METRICS_FIELDS",
    "METRIC_AGGREGATION",
    "METRIC_CONTEXT",
    "METRIC_FIELDS",
    "METRIC_KEY",
    "METRIC_OPTIONS",
    "METRIC_SIZE",
    "METRIC_STEP",
    "METRIC_TAGS",
    "METRIC_T_NS",
    "METRIC_UNIT",
    "METRIC_VALUE",
    "SCOPE",
    "SCOPE_FIELDS",
    "SPAN",
    "SPAN_FIELDS",
    "T_NS",
    "QueuedFacts",
    "ScopeContext",
    "artifact_item",
    "as_context",
    "barrier_item",
    "environment_item",
    "event_item",
    "has_default_options",
    "holds_barrier",
    "metric_item",
    "metrics_item",
    "only_metrics",
    "only_tuples",
    "pop_left",
    "queued_facts",
    "record_count",
    "records_of",
    "scope_item",
    "span_item",
    "split_metrics",
]

# Item kinds (the first element of every queued tuple).
METRIC = 1
METRICS = 2
EVENT = 3
SPAN = 4
SCOPE = 5
ARTIFACT = 6
BARRIER = 7
ENVIRONMENT = 8

# What every kind shares: its kind, when it was captured (ns since the epoch), and its scope's
# context (None for a flush barrier; METRIC and METRICS items hold it as a plain tuple, see
# `as_context`).
KIND = itemgetter(0)
T_NS = itemgetter(1)
CONTEXT = itemgetter(2)


# -- METRIC: one `metric()` call ------------------------------------------------------------------


def metric_item(
    t_ns: int,
    context: tuple[str | None, ...],
    key: str,
    value: float | int,
    unit: str | None,
    step: int | None,
    aggregation_scope: str,
    tags: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """A METRIC item (built literally by `Scope.metric` and the compiled call: see above)."""
    return (METRIC, t_ns, context, key, value, unit, step, aggregation_scope, tags)


METRIC_SIZE = 9  # a METRIC item's length, its kind included
METRIC_FIELDS = itemgetter(1, 2, 3, 4, 5, 6, 7, 8)
# Column getters, for the writer's passes over a whole batch at C speed (`list(map(METRIC_VALUE, run))`).
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
METRIC_OPTIONS = itemgetter(5, 7)  # (unit, aggregation_scope)


# -- METRICS: one `metrics()` call, several keys observed together ---------------------------------


def metrics_item(
    t_ns: int,
    context: tuple[str | None, ...],
    pairs: tuple[tuple[str, float | int], ...],
    unit: str | None,
    step: int | None,
) -> tuple[Any, ...]:
    return (METRICS, t_ns, context, pairs, unit, step)


METRICS_FIELDS = itemgetter(1, 2, 3, 4, 5)
_METRICS_PAIRS = itemgetter(3)


def split_metrics(item: tuple[Any, ...], append: Callable[[tuple[Any, ...]], object]) -> None:
    """`append` the METRIC items a METRICS item stands for, one per key (aggregated by step, no
    tags). Built literally, as `metric_item` builds them, and appended in a plain loop: a call per
    key, or a list comprehension per item, would cost the writer a measurable share."""
    _, t_ns, context, pairs, unit, step = item  # (the layout above, unpacked here where it is declared)
    for key, value in pairs:
        append((METRIC, t_ns, context, key, value, unit, step, "step", None))


# -- EVENT, SPAN: a structured event, a timed piece of work ----------------------------------------


def event_item(
    t_ns: int,
    context: ScopeContext,
    key: str,
    message: str,
    level: str,
    attributes: dict[str, Any] | None,
) -> tuple[Any, ...]:
    return (EVENT, t_ns, context, key, message, level, attributes)


EVENT_FIELDS = itemgetter(1, 2, 3, 4, 5, 6)


def span_item(
    t_ns: int,
    context: ScopeContext,
    name: str,
    started_at: str,
    ended_at: str,
    status: str,
    attributes: dict[str, Any] | None,
) -> tuple[Any, ...]:
    return (SPAN, t_ns, context, name, started_at, ended_at, status, attributes)


SPAN_FIELDS = itemgetter(1, 2, 3, 4, 5, 6, 7)


# -- SCOPE, ENVIRONMENT, ARTIFACT: a scope's opening or closing, a run's environment, an artifact --


def scope_item(
    t_ns: int,
    context: ScopeContext,
    status: str,
    started_ns: int,
    ended_ns: int | None,
    details: dict[str, Any],
) -> tuple[Any, ...]:
    return (SCOPE, t_ns, context, status, started_ns, ended_ns, details)


SCOPE_FIELDS = itemgetter(1, 2, 3, 4, 5, 6)


def environment_item(t_ns: int, context: ScopeContext, fields: dict[str, Any]) -> tuple[Any, ...]:
    return (ENVIRONMENT, t_ns, context, fields)


ENVIRONMENT_FIELDS = itemgetter(1, 2, 3)


def artifact_item(
    t_ns: int,
    context: ScopeContext,
    manifest: ArtifactManifest,
    source: ArtifactSource,
    binding_status: str,
) -> tuple[Any, ...]:
    return (ARTIFACT, t_ns, context, manifest, source, binding_status)


ARTIFACT_FIELDS = itemgetter(1, 2, 3, 4, 5)


# -- BARRIER: a flush, set once everything queued before it reached the sinks ----------------------


def barrier_item(t_ns: int, done: Event, fsync: Any = None) -> tuple[Any, ...]:
    return (BARRIER, t_ns, None, done, fsync)


BARRIER_DONE = itemgetter(3)

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
    """True when every item is still a queued tuple (the writer built no entry among them). Asked of
    every batch by the writer, the capture log and the store sink: one compiled pass where the package
    has it (about 20 times faster than the set of the types over 16,384 items)."""
    if _compiled_only_tuples is not None and type(items) is list:
        return _compiled_only_tuples(items)
    return set(map(type, items)) <= _TUPLE_ONLY


def has_default_options(run: Sequence[tuple[Any, ...]]) -> bool:
    """True when every metric of `run` has no unit and the "step" aggregation scope."""
    length = len(run)
    return (
        list(map(METRIC_UNIT, run)).count(None) == length
        and list(map(METRIC_AGGREGATION, run)).count("step") == length
    )


def only_metrics(items: list[Any]) -> bool:
    """Whether every item is a queued METRIC tuple (the writer's common batch, which it passes through
    as it is): one compiled pass where the package has it (a map and a count over 16,384 items took
    0.26 ms of the writer's turn with the GIL, 0.05 ms this way)."""
    if _compiled_only_metrics is not None:
        return _compiled_only_metrics(items)
    return set(map(type, items)) <= _TUPLE_ONLY and list(map(KIND, items)).count(METRIC) == len(items)  # type: ignore[unreachable]


def pop_left(popleft: Callable[[], tuple[Any, ...]], count: int) -> list[tuple[Any, ...]]:
    """`count` items taken with a deque's `popleft`, in order (IndexError if fewer are queued), in one
    compiled loop where the package has it (0.73 -> 0.53 ms for 16,384 items: two layers of iterators
    less per item)."""
    if _compiled_pop_left is not None:
        return _compiled_pop_left(popleft, count)
    return list(islice(iter(popleft, None), count))  # type: ignore[unreachable]


class QueuedFacts(NamedTuple):
    """What the writer asks of every batch it takes: how many records its items become
    (`record_count`), whether a flush barrier is among them (`holds_barrier`) and whether all are
    single metrics (`only_metrics`)."""

    records: int
    barrier: bool
    only_metrics: bool
    # The positions of the items that are not single metrics, when they are at most an eighth of the
    # items; None when they are more, or not looked for.
    others: list[int] | None


def queued_facts(items: list[tuple[Any, ...]]) -> QueuedFacts:
    """The `QueuedFacts` of `items`, in one compiled pass where the package has it: asked one by one
    they were four passes over a 16,384-item batch, each tuple a cache miss each time, and three
    quarters of the writer's turn with the GIL (perf)."""
    if _compiled_queued_facts is not None:
        facts = _compiled_queued_facts(items)
        if facts is not None:
            return QueuedFacts(*facts)
    return QueuedFacts(record_count(items), holds_barrier(items), only_metrics(items), None)


def holds_barrier(items: list[tuple[Any, ...]]) -> bool:
    """Whether a flush barrier is among queued items (the writer's common cycle has none)."""
    if _compiled_has_barrier is not None:
        return _compiled_has_barrier(items)
    return BARRIER in map(KIND, items)  # type: ignore[unreachable]


def records_of(item: tuple[Any, ...]) -> int:
    """How many records one queued item becomes: one per key of a `metrics()` call, none for a
    flush barrier, one for anything else (the unit every `CaptureStats` counter but `batches` uses)."""
    kind = KIND(item)
    return len(_METRICS_PAIRS(item)) if kind == METRICS else 0 if kind == BARRIER else 1


def record_count(items: Sequence[tuple[Any, ...]]) -> int:
    """How many records queued items become (`records_of` summed, spelled out: a call per item
    would cost the writer a measurable share), in one compiled pass where the package has it."""
    if _compiled_record_count is not None and type(items) is list:
        counted = _compiled_record_count(items)
        if counted is not None:
            return counted
    kinds = list(map(KIND, items))
    if METRICS not in kinds and BARRIER not in kinds:
        return len(items)  # the common case, decided at C speed
    return sum(
        len(_METRICS_PAIRS(item)) if kind == METRICS else 0 if kind == BARRIER else 1
        for kind, item in zip(kinds, items, strict=True)
    )
