"""The queued item layouts, declared once in capture/_items.py, against every place that builds one.

Each kind's constructor and its fields getter must agree (what one builds, the other reads back), and
the places that build an item without the constructor, for speed, must build exactly what it builds:
`split_metrics` (the METRIC items of a `metrics()` call).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

import pytest

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
    assert split_metrics(item) == [
        metric_item(T, FIELDS, key, value, "nats", 7, "step", None) for key, value in pairs
    ]
    assert records_of(item) == 3
    assert record_count([item, metric_item(T, FIELDS, "k", 1.0, None, None, "step", None)]) == 4
