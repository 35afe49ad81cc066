"""`await stage.metric(...)` through the compiled call against the coroutine it stands in for.

Where the extension was built, each async shell's `metric` is a compiled call (see contexta/_async/
_scopes.py) that queues the common call at once and returns an awaitable already done; `AsyncScope.metric`
called on the class is always the coroutine. Every case here goes through both and must end the same
way: the same error, raised at the `await`, or the same result and the same record. CI runs the async
suite again with CONTEXTA_CAPTURE_COMPILED_METRIC=false, so the coroutine is also tested on its own.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from contexta import Contexta
from contexta._async import AsyncScope, AsyncStageScope
from contexta.capture import InMemorySink
from contexta.capture._pipeline._results import ACCEPTED
from contexta.capture._scopes._compiled import Completed, MetricCall
from contexta.errors import ClosedScopeError, ContextaError

pytestmark = pytest.mark.anyio
compiled_only = pytest.mark.skipif(MetricCall is None, reason="the compiled metric call was not built")


def _is_compiled(ctx: Contexta, metric: Any) -> bool:
    """Whether `metric` is the compiled call, asserting that it is wherever it should be (so each test
    below checks the path it is about)."""
    if MetricCall is None or not ctx.config.capture.compiled_metric:
        return False
    assert isinstance(metric, MetricCall)
    return True


# (args, kwargs) of one metric call; "loss" is known before any case runs, the others are not.
CASES: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("loss", 0.25), {}),
    (("loss", 0.5), {"step": 3}),
    (("loss", 0.5), {"step": None}),
    (("loss", 7), {"step": 4}),
    (("loss", 2**63), {}),
    (("loss", True), {}),
    (("loss", float("nan")), {}),
    (("loss", "0.5"), {}),
    (("loss", np.float64(0.75)), {"step": 5}),
    (("loss", 0.5), {"step": -1}),
    (("loss", 0.5), {"step": 2**63}),
    (("loss", 0.5), {"unit": "nats", "step": 6}),
    (("loss", 0.5), {"aggregation_scope": "epoch-ish"}),
    (("loss", 0.5), {"tags": {"split": "val"}}),
    (("loss", 0.5), {"colour": "red"}),
    (("loss", 0.5, "nats"), {}),
    (("loss",), {}),
    (("fresh.key", 0.5), {"step": 1}),
    (("bad key!", 0.5), {}),
    ((3, 0.5), {}),
]


async def _outcome(
    call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, Any]:
    """How an awaited call ended; a call that raises before the `await` is not an outcome either path has."""
    try:
        awaitable = call(*args, **kwargs)
    except Exception as error:  # pragma: no cover - a failure of this test, reported as such
        return "raised at the call, not at the await", repr(error)
    try:
        result = await awaitable
    except ContextaError as error:
        return "error", (type(error).__name__, error.code, str(error))
    except TypeError as error:
        return "error", ("TypeError", None, str(error))
    return "accepted", result.status


@pytest.fixture
async def two_stages(tmp_path: Path) -> AsyncIterator[tuple[InMemorySink, Contexta, Any, Any]]:
    """One async run with two stages: `compiled` called through its attribute, `python` through the class."""
    sink = InMemorySink()
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}, sinks=[sink])
    async with ctx.arun("parity") as run:
        await run.metric("loss", 1.0)
        yield sink, ctx, run.stage("compiled"), run.stage("python")
    await ctx.aclose()


def _payloads(sink: InMemorySink, stage: str) -> list[dict[str, Any]]:
    payloads = [entry.payload["payload"] for entry in sink.entries if entry.payload_type == "MetricRecord"]
    return [
        {key: value for key, value in payload.items() if key != "subject_ref"}
        for payload in payloads
        if payload["subject_ref"].endswith(f".{stage}")
    ]


@pytest.mark.parametrize(("args", "kwargs"), CASES, ids=lambda case: repr(case)[:40])
async def test_each_awaited_call_ends_the_same_through_the_compiled_call_and_the_coroutine(
    two_stages: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    sink, ctx, compiled, python = two_stages
    _is_compiled(ctx, compiled.metric)  # the parity below is of two paths, not one
    through_compiled = await _outcome(compiled.metric, args, kwargs)
    through_python = await _outcome(lambda *a, **k: AsyncScope.metric(python, *a, **k), args, kwargs)
    assert through_compiled == through_python
    assert (await ctx.aflush()).ok
    assert _payloads(sink, "compiled") == _payloads(sink, "python")
    assert len(_payloads(sink, "python")) == (through_python[0] == "accepted")


@compiled_only
async def test_the_awaited_call_is_compiled_and_closed_with_its_scope(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        if not ctx.config.capture.compiled_metric:
            pytest.skip("CONTEXTA_CAPTURE_COMPILED_METRIC switches the compiled call off in this run")
        async with ctx.arun("r") as run:
            stage = run.stage("train")
            assert isinstance(stage.metric, MetricCall)
            assert inspect.signature(stage.metric) == inspect.signature(AsyncStageScope.metric.__get__(stage))
            assert stage.metric.__doc__ == AsyncScope.metric.__doc__
            assert await stage.metric("loss", 0.5, step=1) is ACCEPTED
            awaitable = stage.metric("loss", 0.75, step=2)  # queued at the call: the common call never waits
            assert Completed is not None and isinstance(awaitable, Completed)
            assert await awaitable is ACCEPTED
            await stage.close()
            assert stage.metric.closed
            with pytest.raises(ClosedScopeError):
                await stage.metric("loss", 0.5)  # a known key: only the closed compiled call refuses it
        assert ctx.flush().ok
        assert ctx.get_metric_series("r", "loss").values == (0.5, 0.75)


@compiled_only
async def test_a_shell_made_over_a_closed_scope_gets_a_closed_compiled_call(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        async with ctx.arun("r") as run:
            await run.metric("loss", 0.5)
            stage = run.stage("train")
            stage.sync.close()
            again = AsyncStageScope(stage.sync)  # a second shell, over a scope already closed
            if _is_compiled(ctx, again.metric):
                assert again.metric.closed
            with pytest.raises(ClosedScopeError):
                await again.metric("loss", 0.5)


async def test_what_the_awaited_call_returns_works_wherever_a_coroutine_does(tmp_path: Path) -> None:
    """A task group, and on asyncio a task, `gather` and `wait_for`, take it as they take a coroutine."""
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        async with ctx.arun("r") as run:
            await run.metric("loss", 0.0)
            if _is_compiled(ctx, run.metric):
                assert Completed is not None and isinstance(run.metric("loss", 0.5), Completed)
            async with anyio.create_task_group() as group:
                group.start_soon(run.metric, "loss", 1.0)
                group.start_soon(run.metric, "fresh.key", 1.0)
            expected = 3 if _is_compiled(ctx, run.metric) else 2
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass  # trio
            else:
                assert await asyncio.create_task(run.metric("loss", 2.0)) is ACCEPTED
                assert await asyncio.gather(run.metric("loss", 3.0), run.metric("x.y", 1.0)) == [ACCEPTED] * 2
                assert await asyncio.wait_for(run.metric("loss", 4.0), 10) is ACCEPTED
                expected += 3
        assert ctx.flush().ok
        assert len(ctx.get_metric_series("r", "loss").values) == expected


async def test_closed_async_scopes_are_freed_although_their_compiled_call_refers_back_to_them(
    tmp_path: Path,
) -> None:
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        async with ctx.arun("r") as run:
            async with run.stage("train") as stage:
                await stage.metric("loss", 0.5, step=1)
                _is_compiled(ctx, stage.metric)  # whose reference to the shell makes a cycle
            gone = weakref.ref(stage.sync)  # the shell holds it, so neither outlives the other
            del stage
        ctx.flush()
    gc.collect()
    assert gone() is None
