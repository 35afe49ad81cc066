"""The queued item layouts, declared once in capture/_items.py, against every place that builds one.

Each kind's constructor and its fields getter must agree (what one builds, the other reads back), and
the places that build an item without the constructor, for speed, must build exactly what it builds:
`Scope.metric` and the compiled call (the METRIC literal), `split_metrics` (the METRIC items of a
`metrics()` call) and the pipeline's flush barrier.
"""

from __future__ import annotations

import inspect
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contexta import Contexta
from contexta.capture._items import (
    ARTIFACT,
    ARTIFACT_FIELDS,
    BARRIER,
    BARRIER_DONE,
    CONTEXT,
    ENVIRONMENT,
    ENVIRONMENT_FIELDS,
    EVENT,
    EVENT_FIELDS,
    KIND,
    METRIC,
    METRIC_AGGREGATION,
    METRIC_CONTEXT,
    METRIC_FIELDS,
    METRIC_KEY,
    METRIC_OPTIONS,
    METRIC_SIZE,
    METRIC_STEP,
    METRIC_T_NS,
    METRIC_TAGS,
    METRIC_UNIT,
    METRIC_VALUE,
    METRICS,
    METRICS_FIELDS,
    SCOPE,
    SCOPE_FIELDS,
    SPAN,
    SPAN_FIELDS,
    T_NS,
    ScopeContext,
    artifact_item,
    barrier_item,
    environment_item,
    event_item,
    metric_item,
    metrics_item,
    record_count,
    records_of,
    scope_item,
    span_item,
    split_metrics,
)
from contexta.capture._scopes._compiled import MetricCall
from contexta.capture._scopes._scope import Scope

CONTEXT_VALUE = ScopeContext(
    "stage", "stage:p.r.s", "s", "p", "run:p.r", run_ref="run:p.r", stage_ref="stage:p.r.s"
)
FIELDS = tuple(CONTEXT_VALUE)
T = 1_700_000_000_123_456_789

# (kind, constructor, fields getter, arguments): each argument distinct, so a swap shows.
KINDS: list[tuple[int, Callable[..., tuple[Any, ...]], Callable[[Any], Any], tuple[Any, ...]]] = [
    (METRIC, metric_item, METRIC_FIELDS, (T, FIELDS, "loss", 0.5, "nats", 3, "epoch", {"split": "val"})),
    (METRICS, metrics_item, METRICS_FIELDS, (T, FIELDS, (("loss", 0.5), ("acc", 0.9)), "nats", 4)),
    (EVENT, event_item, EVENT_FIELDS, (T, CONTEXT_VALUE, "epoch.end", "done", "info", {"n": 1})),
    (
        SPAN,
        span_item,
        SPAN_FIELDS,
        (T, CONTEXT_VALUE, "fit", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", "ok", None),
    ),
    (SCOPE, scope_item, SCOPE_FIELDS, (T, CONTEXT_VALUE, "completed", T - 5, T - 1, {"order_index": 0})),
    (ENVIRONMENT, environment_item, ENVIRONMENT_FIELDS, (T, CONTEXT_VALUE, {"python_version": "3.11"})),
    (ARTIFACT, artifact_item, ARTIFACT_FIELDS, (T, CONTEXT_VALUE, object(), object(), "bound")),
]


@pytest.mark.parametrize(
    ("kind", "build", "fields", "args"), KINDS, ids=lambda case: getattr(case, "__name__", "")
)
def test_each_kind_reads_back_what_its_constructor_built(
    kind: int, build: Callable[..., tuple[Any, ...]], fields: Callable[[Any], Any], args: tuple[Any, ...]
) -> None:
    item = build(*args)
    assert type(item) is tuple  # never a NamedTuple: see capture/_items.py
    assert len(inspect.signature(build).parameters) == len(args) == len(item) - 1
    assert (KIND(item), T_NS(item), CONTEXT(item)) == (kind, args[0], args[1])
    assert fields(item) == args
    assert all(got is given for got, given in zip(fields(item), args, strict=True))


def test_a_barrier_holds_its_event_where_the_writer_reads_it() -> None:
    done = threading.Event()
    item = barrier_item(T, done)
    assert (KIND(item), T_NS(item), CONTEXT(item), BARRIER_DONE(item)) == (BARRIER, T, None, done)
    assert records_of(item) == 0


def test_the_metric_column_getters_read_the_fields_their_names_say() -> None:
    args = dict(
        zip(
            inspect.signature(metric_item).parameters,
            (T, FIELDS, "loss", 0.5, "nats", 3, "epoch", {"split": "val"}),
            strict=True,
        )
    )
    item = metric_item(**args)
    getters = {
        "t_ns": METRIC_T_NS,
        "context": METRIC_CONTEXT,
        "key": METRIC_KEY,
        "value": METRIC_VALUE,
        "unit": METRIC_UNIT,
        "step": METRIC_STEP,
        "aggregation_scope": METRIC_AGGREGATION,
        "tags": METRIC_TAGS,
    }
    assert getters.keys() == args.keys()
    assert {name: getter(item) for name, getter in getters.items()} == args
    assert METRIC_OPTIONS(item) == (args["unit"], args["aggregation_scope"])
    assert len(item) == METRIC_SIZE


def test_a_metrics_item_splits_into_the_metric_items_of_its_keys() -> None:
    pairs = (("loss", 0.5), ("acc", 0.9), ("lr", 3))
    item = metrics_item(T, FIELDS, pairs, "nats", 7)
    split: list[tuple[Any, ...]] = []
    split_metrics(item, split.append)
    assert split == [metric_item(T, FIELDS, key, value, "nats", 7, "step", None) for key, value in pairs]
    assert records_of(item) == 3
    assert record_count([item, metric_item(T, FIELDS, "k", 1.0, None, None, "step", None)]) == 4


@pytest.fixture
def capture(tmp_path: Path) -> Any:
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        yield ctx, ctx.run("r").stage("train")


# (args, kwargs) of a metric() call, and the fields after the context it is queued with.
METRIC_CALLS: list[tuple[tuple[Any, ...], dict[str, Any], tuple[Any, ...]]] = [
    (("loss", 0.5), {}, ("loss", 0.5, None, None, "step", None)),
    (("loss", 0.25), {"step": 3}, ("loss", 0.25, None, 3, "step", None)),
    (("loss", 7), {"step": 0}, ("loss", 7, None, 0, "step", None)),
    (
        ("fresh.key", 1.5),
        {"unit": "nats", "step": 2, "aggregation_scope": "run", "tags": {"split": "val"}},
        ("fresh.key", 1.5, "nats", 2, "run", {"split": "val"}),
    ),
]


@pytest.mark.parametrize(("args", "kwargs", "fields"), METRIC_CALLS, ids=lambda case: repr(case)[:30])
def test_the_python_metric_call_queues_what_metric_item_builds(
    capture: Any,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    fields: tuple[Any, ...],
) -> None:
    _, stage = capture
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(stage, "_put", lambda item: queued.append(item) or True)
    assert Scope.metric(stage, *args, **kwargs).status == "accepted"  # the Python method
    (item,) = queued
    assert type(item) is tuple and type(T_NS(item)) is int
    assert item == metric_item(T_NS(item), stage._fields, *fields)
    # The async facade's item for the same call is built by the constructor itself.
    key, value = args
    options = {"unit": None, "step": None, "aggregation_scope": "step", "tags": None, **kwargs}
    built = stage.internals.metric_item(
        key, value, options["unit"], options["step"], options["aggregation_scope"], options["tags"]
    )
    assert built == metric_item(T_NS(built), stage._fields, *fields)


@pytest.mark.skipif(MetricCall is None, reason="the compiled metric call was not built")
@pytest.mark.parametrize(("value", "kwargs"), [(0.5, {}), (0.75, {"step": 2}), (-3, {"step": None})])
def test_the_compiled_metric_call_queues_what_metric_item_builds(
    capture: Any, value: float | int, kwargs: dict[str, Any]
) -> None:
    assert MetricCall is not None
    _, stage = capture
    items: deque[tuple[Any, ...]] = deque()

    def fallback(*args: Any, **kwargs: Any) -> str:
        return "handed on"

    queue = SimpleNamespace(limit=10)
    call = MetricCall(fallback, items, queue, stage._fields, {"loss"}, METRIC, "taken", "step")
    assert call("loss", value, **kwargs) == "taken"  # taken by the compiled code, not handed on
    (item,) = items
    assert type(item) is tuple and type(T_NS(item)) is int
    assert item == metric_item(
        T_NS(item), stage._fields, "loss", value, None, kwargs.get("step"), "step", None
    )


def test_the_flush_barrier_is_what_barrier_item_builds(capture: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, stage = capture
    controls: list[tuple[Any, ...]] = []

    def record(item: tuple[Any, ...]) -> None:
        """Keep the barrier from the writer, and release the flush waiting for it."""
        controls.append(item)
        for part in item:
            if isinstance(part, threading.Event):
                part.set()

    monkeypatch.setattr(stage.internals.queue, "put_control", record)
    ctx.flush(timeout=10)
    (item,) = controls
    assert item == barrier_item(T_NS(item), BARRIER_DONE(item))
