"""NaN and infinite metric values through the async facade (on asyncio and trio): recorded by
default and read back as the same float, refused under `capture.non_finite = "raise"`, and a
`metrics()` call keeps its good keys exactly as the sync facade does."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from contexta import Contexta
from contexta.capture import read_capture_log
from contexta.errors import ValidationError

pytestmark = pytest.mark.anyio


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[Contexta]:
    context = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"})
    yield context
    await context.aclose()


def _logged_values(ctx: Contexta, key: str) -> list[Any]:
    lines = read_capture_log(ctx.workspace / "cache" / "capture" / "record.jsonl").lines
    return [
        line["payload"]["payload"]["value"]
        for line in lines
        if line["payload_type"] == "MetricRecord" and line["payload"]["payload"]["metric_key"] == key
    ]


async def test_concurrent_tasks_record_nan_and_infinities(ctx: Contexta) -> None:
    values = [0.5, math.nan, math.inf, -math.inf, np.float32("nan"), np.array(2.0)]

    async with ctx.arun("eval") as run, run.stage("evaluate") as stage:

        async def judge(number: int) -> None:
            async with stage.sample(f"case-{number}") as sample:
                for step, value in enumerate(values):
                    await sample.metric("score", value, step=step)
                await sample.metrics({"judge.loss": math.nan, "judge.ok": 1.0}, step=0)

        async with anyio.create_task_group() as group:
            for number in range(20):
                group.start_soon(judge, number)

    expected = [float(value) for value in values]
    assert _logged_values(ctx, "score").count("NaN") == 40
    assert _logged_values(ctx, "score").count("Infinity") == 20
    assert _logged_values(ctx, "score").count("-Infinity") == 20
    stored = ctx.get_metric_series("eval", "score", stage="evaluate").values
    assert sorted(map(repr, stored)) == sorted(map(repr, expected * 20))
    assert all(math.isnan(value) for value in ctx.get_metric_series("eval", "judge.loss").values)


async def test_async_metrics_records_the_valid_pairs_then_raises_like_the_sync_facade(ctx: Contexta) -> None:
    async with ctx.arun("r") as run, run.stage("train") as stage:
        with pytest.raises(ValidationError) as from_async:
            await stage.metrics({"loss": math.inf, "note": "diverged", "bad key": 1.0}, step=7)
        with pytest.raises(ValidationError) as from_sync:
            stage.sync.metrics({"loss": math.inf, "note": "diverged", "bad key": 1.0}, step=8)
        for error in (from_async.value, from_sync.value):
            assert error.code == "metrics_partly_invalid"
            assert error.details["recorded"] == ["loss"]
            assert [item["key"] for item in error.details["refused"]] == ["note", "bad key"]
        with pytest.raises(ValidationError) as nothing:
            await stage.metrics({"note": "diverged"})
        assert nothing.value.code == "metric_value_invalid"

    series = ctx.get_metric_series("r", "loss", stage="train")
    assert series.values == (math.inf, math.inf)
    assert series.steps == (7, 8)
    assert _logged_values(ctx, "loss") == ["Infinity", "Infinity"]


async def test_capture_non_finite_raise_refuses_them_in_async_code(tmp_path: Path) -> None:
    config = {"project_name": "p", "capture": {"non_finite": "raise"}}
    ctx = Contexta(workspace=tmp_path / ".contexta", config=config)
    try:
        async with ctx.arun("r") as run:
            with pytest.raises(ValidationError) as refused:
                await run.metric("loss", math.nan)
            assert refused.value.code == "metric_value_invalid"
            with pytest.raises(ValidationError) as partly:
                await run.metrics({"loss": -math.inf, "accuracy": 0.5})
            assert partly.value.code == "metrics_partly_invalid"
            await run.metric("loss", 0.5)
        assert ctx.get_metric_series("r", "loss").values == (0.5,)
        assert ctx.get_metric_series("r", "accuracy").values == (0.5,)
    finally:
        await ctx.aclose()
