"""The compiled `metrics()` call against the Python method it stands in for.

As for `metric()` (tests/capture/test_compiled_metric.py): `stage.metrics` is the compiled call when the
extension was built, `Scope.metrics` called on the class is always the Python method, and every case
must end the same way through both: the same error, the same records in the same order, the same
accounting when the queue is full. CI runs the capture suite again with CONTEXTA_CAPTURE_COMPILED_METRIC
=false, so each path is also tested on its own.
"""

from __future__ import annotations

import gc
import inspect
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

from contexta import Contexta
from contexta.capture import CaptureBatch, InMemorySink
from contexta.capture._items import METRICS, T_NS, metrics_item
from contexta.capture._scopes._compiled import MetricCall, MetricsCall
from contexta.capture._scopes._scope import Scope
from contexta.errors import ContextaError

compiled_only = pytest.mark.skipif(MetricsCall is None, reason="the compiled metrics call was not built")


class StrKey(str):
    """A str subclass equal to a known key: the compiled call leaves it to the Python method."""


class DictSubclass(dict[str, Any]):
    """A dict, but not a plain one: the compiled call leaves it to the Python method."""


# (args, kwargs) of one metrics call; "loss" and "acc" are known before any case runs, the others are not.
CASES: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (({"loss": 0.25, "acc": 0.5},), {}),
    (({"acc": 0.5, "loss": 0.25},), {"step": 3}),  # the dict's order is the records' order
    (({"loss": 0.5},), {"step": None}),
    (({"loss": -1.5, "acc": 0.0},), {"step": 0}),
    (({"loss": 7, "acc": -(2**63)},), {"step": 4}),
    (({"loss": 2**63, "acc": 0.5},), {}),
    (({"loss": True, "acc": 0.5},), {}),
    (({"loss": float("nan"), "acc": 0.5},), {}),
    (({"loss": float("inf")},), {"step": 1}),
    (({"loss": "0.5", "acc": 0.5},), {}),
    (({"loss": np.float64(0.75), "acc": np.float32(0.125)},), {"step": 5}),
    (({"loss": 0.5},), {"step": -1}),
    (({"loss": 0.5},), {"step": True}),
    (({"loss": 0.5},), {"step": 1.0}),
    (({"loss": 0.5},), {"step": 2**63 - 1}),
    (({"loss": 0.5},), {"step": 2**63}),
    (({"loss": 0.5},), {"step": 2**70}),
    (({"loss": 0.5, "acc": 0.5},), {"unit": "nats", "step": 6}),
    (({"loss": 0.5},), {"unit": ""}),
    (({"loss": 0.5},), {"unit": None}),
    (({"loss": 0.5},), {"colour": "red"}),
    (({"loss": 0.5}, 3), {}),
    ((), {}),
    (({"loss": 0.5, "fresh.key": 0.5},), {"step": 1}),
    (({"bad key!": 0.5, "loss": 0.5, "acc": float("nan")},), {}),
    (({"bad key!": 0.5},), {}),
    (({StrKey("loss"): 0.5},), {}),
    (({3: 0.5, "loss": 0.5},), {}),
    (({"x" * 201: 0.5},), {}),
    (({},), {}),
    (([("loss", 0.5)],), {}),
    ((MappingProxyType({"loss": 0.5}),), {"step": 2}),
    ((OrderedDict(loss=0.5, acc=0.25),), {}),
    ((DictSubclass(loss=0.5),), {"step": 7}),
]


def _outcome(call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    try:
        result = call(*args, **kwargs)
    except ContextaError as error:
        return "error", (type(error).__name__, error.code, str(error), error.details)
    except TypeError as error:
        return "error", ("TypeError", None, str(error))
    return "accepted", result.status


def _payloads_by_stage(sink: InMemorySink) -> dict[str, list[dict[str, Any]]]:
    """Each stage's metric payloads in the order they were written, without the ref that tells them apart."""
    by_stage: dict[str, list[dict[str, Any]]] = {"compiled": [], "python": [], "warm-up": []}
    for entry in sink.entries:
        if entry.payload_type == "MetricRecord":
            payload = dict(entry.payload["payload"])
            by_stage[payload.pop("subject_ref").rsplit(".", 1)[1]].append(payload)
    return by_stage


@pytest.fixture
def two_stages(tmp_path: Path) -> Iterator[tuple[InMemorySink, Contexta, Any, Any]]:
    """One run with two stages: `compiled` is called through its attribute, `python` through the class;
    "loss" and "acc" are known keys, and nothing is recorded yet."""
    sink = InMemorySink()
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}, sinks=[sink])
    run = ctx.run("parity")
    run.stage("warm-up").metrics({"loss": 1.0, "acc": 1.0})
    yield sink, ctx, run.stage("compiled"), run.stage("python")
    ctx.close()


def _is_compiled(ctx: Contexta, metrics: Any) -> bool:
    """Whether `metrics` is the compiled call, asserting that it is wherever it should be (so each test
    below checks the path it is about)."""
    if MetricsCall is None or not ctx.config.capture.compiled_metric:
        return False
    assert isinstance(metrics, MetricsCall)
    return True


def _python_metrics(scope: Scope) -> Callable[..., Any]:
    return lambda *args, **kwargs: Scope.metrics(scope, *args, **kwargs)


@pytest.mark.parametrize(("args", "kwargs"), CASES, ids=lambda case: repr(case)[:40])
def test_each_call_ends_the_same_through_the_compiled_call_and_the_python_method(
    two_stages: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    sink, ctx, compiled, python = two_stages
    _is_compiled(ctx, compiled.metrics)  # the parity below is of two paths, not one
    through_compiled = _outcome(compiled.metrics, args, kwargs)
    through_python = _outcome(_python_metrics(python), args, kwargs)
    assert through_compiled == through_python
    report = ctx.flush()
    assert report.ok, report.errors  # every sink (the canonical store among them) took the records
    by_stage = _payloads_by_stage(sink)
    assert by_stage["compiled"] == by_stage["python"]
    if through_python[0] == "accepted":
        assert len(by_stage["python"]) == len(args[0])


def test_a_mixed_sequence_of_calls_is_recorded_in_the_same_order_through_both(two_stages: Any) -> None:
    sink, ctx, compiled, python = two_stages
    _is_compiled(ctx, compiled.metrics)
    for stage, metrics in ((compiled, compiled.metrics), (python, _python_metrics(python))):
        for step in range(3):
            metrics({"loss": 1.0 / (step + 1), "acc": step / 3}, step=step)
            stage.metric("loss", 0.5, step=step)
            with pytest.raises(ContextaError):
                metrics({"acc": 0.5, "no good": 1.0, "loss": 2}, step=step)
            metrics({"fresh.metric": float(step)}, step=step, unit="s")
    assert ctx.flush().ok
    by_stage = _payloads_by_stage(sink)
    assert len(by_stage["python"]) == 3 * 6
    assert by_stage["compiled"] == by_stage["python"]


@compiled_only
def test_the_compiled_call_queues_the_python_item_and_hands_everything_else_on(tmp_path: Path) -> None:
    """Over a deque of its own: the METRICS item `metrics_item` builds, the queue's limit honoured, and
    every call it does not take passed on to the fallback with its arguments untouched."""
    assert MetricsCall is not None
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        stage = ctx.run("r").stage("train")
        items: deque[tuple[Any, ...]] = deque()
        queue = SimpleNamespace(limit=2)
        handed_on: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        def fallback(*args: Any, **kwargs: Any) -> str:
            handed_on.append((args, kwargs))
            return "handed on"

        call = MetricsCall(fallback, items, queue, stage._fields, {"loss", "acc"}, METRICS, "taken")
        assert call({"acc": 0.75, "loss": 3}, step=2) == "taken"
        assert call({"loss": -(2**63)}) == "taken"
        assert [type(T_NS(item)) for item in items] == [int, int]
        assert list(items) == [
            metrics_item(T_NS(items[0]), stage._fields, (("acc", 0.75), ("loss", 3)), None, 2),
            metrics_item(T_NS(items[1]), stage._fields, (("loss", -(2**63)),), None, None),
        ]
        declined: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
            (({"loss": 0.5},), {}),  # the deque is at the queue's limit
        ]
        assert call({"loss": 0.5}) == "handed on"
        queue.limit = 10
        for args, kwargs in [
            (({"loss": 0.5, "other": 0.5},), {}),  # not a known key
            (({"loss": float("nan")},), {}),
            (({"loss": 2**63},), {}),
            (({"loss": True},), {}),
            (({},), {}),
            ((OrderedDict(loss=0.5),), {}),
            (({"loss": 0.5},), {"unit": "nats"}),
            (({"loss": 0.5},), {"step": -1}),
            (({"loss": 0.5}, 1), {}),
            ((), {}),
        ]:
            assert call(*args, **kwargs) == "handed on"
            declined.append((args, kwargs))
        call.close()
        assert call({"loss": 0.5}) == "handed on" and call.closed
        declined.append((({"loss": 0.5},), {}))
        assert len(items) == 2
        assert handed_on == declined


@compiled_only
def test_scopes_use_the_compiled_metrics_unless_the_configuration_says_otherwise(tmp_path: Path) -> None:
    with Contexta(
        workspace=tmp_path / "python", config={"project_name": "p", "capture": {"compiled_metric": False}}
    ) as ctx:
        stage = ctx.run("r").stage("train")
        assert stage.metrics == Scope.metrics.__get__(stage)
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        if not ctx.config.capture.compiled_metric:
            pytest.skip("CONTEXTA_CAPTURE_COMPILED_METRIC switches the compiled call off in this run")
        stage = ctx.run("r").stage("train")
        assert isinstance(stage.metrics, MetricsCall)
        assert inspect.signature(stage.metrics) == inspect.signature(Scope.metrics.__get__(stage))
        assert stage.metrics.__doc__ == Scope.metrics.__doc__
        stage.metrics({"loss": 0.5})
        stage.close()
        assert stage.metrics.closed
        with pytest.raises(ContextaError) as closed:
            stage.metrics({"loss": 0.5})  # a known key, but the scope is closed: the Python method raises
        assert closed.value.code == "scope_closed"


class GatedSink:
    """Holds every batch until `gate` is set, so the queue fills up."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.metrics = 0

    def write(self, batch: CaptureBatch) -> None:
        self.gate.wait(30)
        self.metrics += sum(entry.payload_type == "MetricRecord" for entry in batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.gate.set()


def _drop_accounting(workspace: Path, path: str) -> tuple[list[str], int, int]:
    """300 `metrics()` calls of two known keys with the sink stuck and `drop_newest`: each call's
    result, the records dropped and the records the sink got."""
    sink = GatedSink()
    config = {
        "project_name": "p",
        "capture": {"queue_capacity": 64, "max_batch_size": 16, "persist": False, "overflow": "drop_newest"},
    }
    ctx = Contexta(workspace=workspace, config=config, sinks=[sink])
    results = []
    try:
        with pytest.warns(Warning), ctx.run("r") as run, run.stage("s") as stage:
            metrics = stage.metrics if path == "compiled" else _python_metrics(stage)
            if path == "compiled":
                _is_compiled(ctx, metrics)
            metrics({"loss": 0.0, "acc": 0.0})  # both keys known from here on
            for step in range(300):
                results.append(metrics({"loss": 0.5, "acc": 0.25}, step=step).status)
            sink.gate.set()
    finally:
        sink.gate.set()
        ctx.close()
    return results, ctx.capture_stats().dropped, sink.metrics


def test_a_full_queue_drops_and_counts_alike_through_both(tmp_path: Path) -> None:
    """Calls beyond the queue's room are dropped, not waited for, and every key of a dropped call is
    counted (and marked degraded) as lost, through either path. How many drop depends on when the
    writer takes its batches, so the accounting is compared, not the counts."""
    for path in ("compiled", "python"):
        results, dropped, written = _drop_accounting(tmp_path / path, path)
        assert "dropped" in results and dropped == 2 * results.count("dropped"), path
        assert written + dropped == 2 * 301, path


@compiled_only
def test_queued_items_are_out_of_the_collectors_sight_when_nothing_in_them_can_lead_back(
    tmp_path: Path,
) -> None:
    """The collector would untrack these tuples at its first look anyway; the compiled calls do it at
    once, so the items waiting in the queue cost no young-generation collection anything."""
    assert MetricCall is not None and MetricsCall is not None
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        if not ctx.config.capture.compiled_metric:
            pytest.skip("CONTEXTA_CAPTURE_COMPILED_METRIC switches the compiled call off in this run")
        stage = ctx.run("r").stage("train")
        stage.metrics({"loss": 0.0, "acc": 0.0})
        gc.collect()  # lets go of the scope's fields, a tuple of strs and None
        assert not gc.is_tracked(stage._fields)
        items = stage._queue.items
        stage.metric("loss", 0.5, step=1)
        assert not gc.is_tracked(items[-1])
        stage.metrics({"loss": 0.5, "acc": 0.25}, step=1)
        item = items[-1]
        assert not gc.is_tracked(item) and not gc.is_tracked(item[3])
        assert not any(gc.is_tracked(pair) for pair in item[3])
    # Fields the collector must keep watching (here a list): the items stay in its sight.
    own: deque[tuple[Any, ...]] = deque()
    room = SimpleNamespace(limit=10)
    fields = ("stage", ["not", "atomic"])
    MetricCall(print, own, room, fields, {"loss"}, 1, "taken", "step")("loss", 0.5)
    MetricsCall(print, own, room, fields, {"loss"}, METRICS, "taken")({"loss": 0.5})
    assert [gc.is_tracked(item) for item in own] == [True, True]
