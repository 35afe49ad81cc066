"""The compiled `metric()` call against the Python method it stands in for.

`stage.metric` is the compiled call when the extension was built (`_metric_call.c`); `Scope.metric`
called on the class is always the Python method. Every case here goes through both, on scopes of one
Contexta, and must end the same way: the same error, or the same record in the capture log. The whole
capture suite also runs with CONTEXTA_CAPTURE_COMPILED_METRIC=false in CI, so each path is tested on its
own too.
"""

from __future__ import annotations

import gc
import inspect
import shutil
import sysconfig
import threading
import weakref
from array import array
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from contexta import Contexta
from contexta.capture import InMemorySink
from contexta.capture._items import KIND, METRIC_FIELDS, METRIC_STEP, METRIC_T_NS, METRIC_VALUE, metric_item
from contexta.capture._pipeline._queue import CaptureQueue
from contexta.capture._scopes._compiled import MetricCall
from contexta.capture._scopes._scope import Scope
from contexta.errors import ContextaError

compiled_only = pytest.mark.skipif(MetricCall is None, reason="the compiled metric call was not built")


class StrKey(str):
    """A str subclass equal to a known key: the compiled call leaves it to the Python method."""


# (args, kwargs) of one metric call; "loss" is known before any case runs, the others are not.
CASES: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("loss", 0.25), {}),
    (("loss", 0.5), {"step": 3}),
    (("loss", 0.5), {"step": None}),
    (("loss", -1.5), {"step": 0}),
    (("loss", 7), {"step": 4}),
    (("loss", -(2**63)), {}),
    (("loss", 2**63), {}),
    (("loss", True), {}),
    (("loss", float("nan")), {}),
    (("loss", float("inf")), {"step": 1}),
    (("loss", "0.5"), {}),
    (("loss", np.float64(0.75)), {"step": 5}),
    (("loss", np.float32(0.125)), {}),
    (("loss", 0.5), {"step": -1}),
    (("loss", 0.5), {"step": True}),
    (("loss", 0.5), {"step": 1.0}),
    (("loss", 0.5), {"step": 2**63 - 1}),
    (("loss", 0.5), {"step": 2**63}),
    (("loss", 0.5), {"step": 2**70}),
    (("loss", 0.5), {"unit": "nats", "step": 6}),
    (("loss", 0.5), {"unit": ""}),
    (("loss", 0.5), {"aggregation_scope": "run"}),
    (("loss", 0.5), {"aggregation_scope": "epoch-ish"}),
    (("loss", 0.5), {"tags": {"split": "val"}}),
    (("loss", 0.5), {"colour": "red"}),
    (("loss", 0.5, "nats"), {}),
    (("loss",), {}),
    (("fresh.key", 0.5), {"step": 1}),
    (("bad key!", 0.5), {}),
    ((StrKey("loss"), 0.5), {}),
    ((3, 0.5), {}),
    (("x" * 201, 0.5), {}),
]


def _outcome(call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    try:
        result = call(*args, **kwargs)
    except ContextaError as error:
        return "error", (type(error).__name__, error.code, str(error))
    except TypeError as error:
        return "error", ("TypeError", None, str(error).replace("MetricCall", "metric"))
    return "accepted", result.status


def _payloads(sink: InMemorySink) -> list[dict[str, Any]]:
    return [entry.payload["payload"] for entry in sink.entries if entry.payload_type == "MetricRecord"]


@pytest.fixture
def two_stages(tmp_path: Path) -> Any:
    """One run with two stages: `compiled` is called through its attribute, `python` through the class."""
    sink = InMemorySink()
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}, sinks=[sink])
    run = ctx.run("parity")
    compiled, python = run.stage("compiled"), run.stage("python")
    compiled.metric("loss", 1.0)
    yield sink, ctx, compiled, python
    ctx.close()


@pytest.mark.parametrize(("args", "kwargs"), CASES, ids=lambda case: repr(case)[:40])
def test_each_call_ends_the_same_through_the_compiled_call_and_the_python_method(
    two_stages: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    sink, ctx, compiled, python = two_stages
    through_compiled = _outcome(compiled.metric, args, kwargs)
    through_python = _outcome(lambda *a, **k: Scope.metric(python, *a, **k), args, kwargs)
    assert through_compiled == through_python
    report = ctx.flush()
    assert report.ok, report.errors  # every sink (the canonical store among them) took the record
    by_stage: dict[str, list[dict[str, Any]]] = {"compiled": [], "python": []}
    for payload in _payloads(sink):
        by_stage[payload["subject_ref"].rsplit(".", 1)[1]].append(payload)
    compiled_payloads = by_stage["compiled"][1:]  # after the fixture's first "loss"
    expected = 1 if through_python[0] == "accepted" else 0
    assert len(compiled_payloads) == len(by_stage["python"]) == expected
    strip = ("subject_ref",)
    assert [{k: v for k, v in p.items() if k not in strip} for p in compiled_payloads] == [
        {k: v for k, v in p.items() if k not in strip} for p in by_stage["python"]
    ]


@compiled_only
def test_the_compiled_call_queues_the_python_item_and_hands_everything_else_on(tmp_path: Path) -> None:
    """Over a deque of its own: the same 9-tuple as the Python method's, the queue's limit honoured,
    and every call it does not take passed on to the fallback with its arguments untouched."""
    assert MetricCall is not None
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        stage = ctx.run("r").stage("train")
        stage.metric("loss", 1.0)
        expected = stage._metric_item("loss", 0.75, None, 2, "step", None)
        items: deque[tuple[Any, ...]] = deque()
        queue = SimpleNamespace(limit=2)
        handed_on: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        def fallback(*args: Any, **kwargs: Any) -> str:
            handed_on.append((args, kwargs))
            return "handed on"

        call = MetricCall(fallback, items, queue, stage._fields, {"loss"}, KIND(expected), "taken", "step")
        assert call("loss", 0.75, step=2) == "taken"
        taken_ns = METRIC_T_NS(items[0])
        assert items[0] == metric_item(taken_ns, *METRIC_FIELDS(expected)[1:])  # all but the time
        assert abs(taken_ns - METRIC_T_NS(expected)) < 10**9 and type(taken_ns) is int
        assert call("loss", 3) == "taken" and METRIC_VALUE(items[1]) == 3 and METRIC_STEP(items[1]) is None
        assert call("loss", 0.5) == "handed on"  # the deque is at the queue's limit
        queue.limit = 10
        assert call("other", 0.5) == "handed on"  # not a known key
        assert call("loss", 0.5, unit="nats") == "handed on"
        assert call("loss", 0.5, step=-1) == "handed on"
        assert call("loss", 0.5, 1) == "handed on"
        call.close()
        assert call("loss", 0.5) == "handed on" and call.closed
        assert len(items) == 2
        assert handed_on == [
            (("loss", 0.5), {}),
            (("other", 0.5), {}),
            (("loss", 0.5), {"unit": "nats"}),
            (("loss", 0.5), {"step": -1}),
            (("loss", 0.5, 1), {}),
            (("loss", 0.5), {}),
        ]


@compiled_only
def test_the_compiled_call_follows_the_limit_a_capture_queue_sets(tmp_path: Path) -> None:
    """Bound to a real CaptureQueue, the call reads the queue's limit from its `limit_cell` (a machine
    integer, no attribute lookup per call) exactly as the queue sets it: the writer asleep, the queue
    closed, and after a fork's reset, which keeps the very cell the bound call holds."""
    assert MetricCall is not None
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        stage = ctx.run("r").stage("train")
        stage.metric("loss", 1.0)
        kind = KIND(stage._metric_item("loss", 0.75, None, 2, "step", None))
        queue = CaptureQueue(capacity=3, wake_threshold=1, overflow="block", block_timeout_s=1.0)
        call = MetricCall(
            lambda *args, **kwargs: "handed on",
            queue.items,
            queue,
            stage._fields,
            {"loss"},
            kind,
            "taken",
            "step",
        )
        cell = queue.limit_cell
        assert call("loss", 0.5) == "taken"
        queue._set_writer_idle(
            True
        )  # a sleeping writer: the call that reaches the wake threshold is handed on
        assert call("loss", 0.5) == "handed on"
        queue._set_writer_idle(False)
        assert [call("loss", 0.5) for _ in range(3)] == ["taken", "taken", "handed on"]  # at capacity
        queue.items.clear()
        queue.close()
        assert call("loss", 0.5) == "handed on"  # closed: the Python method raises
        queue.reinit_after_fork()
        assert queue.limit_cell is cell and call("loss", 0.5) == "taken"
        with pytest.raises(BufferError):
            cell.append(0)  # held by the bound call: it can never be moved under it


@compiled_only
def test_a_limit_cell_that_is_not_one_machine_integer_is_refused_when_binding(tmp_path: Path) -> None:
    assert MetricCall is not None
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        stage = ctx.run("r").stage("train")
        stage.metric("loss", 1.0)
        kind = KIND(stage._metric_item("loss", 0.75, None, 2, "step", None))
        for cell in (array("q", [1, 2]), array("i", [1]), b"12345678"):
            queue = SimpleNamespace(limit=5, limit_cell=cell)
            with pytest.raises(TypeError):
                MetricCall(print, deque(), queue, stage._fields, {"loss"}, kind, "taken", "step")


@compiled_only
def test_scopes_use_the_compiled_call_unless_the_configuration_says_otherwise(tmp_path: Path) -> None:
    with Contexta(
        workspace=tmp_path / "python", config={"project_name": "p", "capture": {"compiled_metric": False}}
    ) as ctx:
        stage = ctx.run("r").stage("train")
        assert stage.metric == Scope.metric.__get__(stage)
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        if not ctx.config.capture.compiled_metric:
            pytest.skip("CONTEXTA_CAPTURE_COMPILED_METRIC switches the compiled call off in this run")
        stage = ctx.run("r").stage("train")
        assert isinstance(stage.metric, MetricCall)
        assert inspect.signature(stage.metric) == inspect.signature(Scope.metric.__get__(stage))
        assert stage.metric.__doc__ == Scope.metric.__doc__
        stage.close()
        assert stage.metric.closed


def test_the_extension_was_built_where_a_c_compiler_is_available() -> None:
    """The package falls back to pure Python when it cannot compile; here it must have compiled."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}) on this machine: the pure-Python method is used")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        pytest.skip("no Python headers (Python.h) on this machine: the pure-Python method is used")
    assert MetricCall is not None, (
        "pip install -e . did not build src/contexta/capture/_scopes/_metric_call.c"
    )


def test_closed_scopes_are_freed_although_their_compiled_call_refers_back_to_them(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        run = ctx.run("r")
        stage = run.stage("train")
        stage.metric("loss", 0.5, step=1)
        stage.close()
        run.close()
        gone = weakref.ref(stage)
        del stage, run
        ctx.flush()
    gc.collect()
    assert gone() is None


def test_threads_calling_one_compiled_metric_lose_nothing(tmp_path: Path) -> None:
    sink = InMemorySink()
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}, sinks=[sink]) as ctx:
        stage = ctx.run("r").stage("train")
        metric = stage.metric

        def log(first: int) -> None:
            for step in range(first, first + 20_000):
                metric("loss", 1.0 / (step + 1), step=step)

        threads = [threading.Thread(target=log, args=(index * 20_000,)) for index in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stage.close()
        ctx.flush()
    steps = sorted(payload["step"] for payload in _payloads(sink))
    assert steps == list(range(80_000))
