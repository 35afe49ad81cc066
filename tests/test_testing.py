"""contexta.testing, used the way a user tests their own training and evaluation code."""

from __future__ import annotations

import atexit
import json
import math
import os
import random
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from contexta import Contexta
from contexta.errors import ConfigurationError, LifecycleError, ValidationError
from contexta.testing import MemoryCapture, capture_in_memory

# -- the code under test: what a user would have in their own package ----------------------------


def make_points(count: int, seed: int) -> list[tuple[float, float]]:
    """Noisy samples of y = 2x + 1."""
    rng = random.Random(seed)
    return [(x, 2.0 * x + 1.0 + rng.gauss(0.0, 0.1)) for x in (rng.uniform(-1.0, 1.0) for _ in range(count))]


def mean_squared_error(points: list[tuple[float, float]], slope: float, intercept: float) -> float:
    return sum((slope * x + intercept - y) ** 2 for x, y in points) / len(points)


def train(ctx: Contexta, epochs: int, output: Path, *, learning_rate: float = 0.5) -> tuple[float, float]:
    """Fit a line by gradient descent; record the loss per epoch, the validation error and the model."""
    train_points, validation_points = make_points(200, seed=1), make_points(50, seed=2)
    slope = intercept = 0.0
    with ctx.run("line-fit", config_snapshot={"learning_rate": learning_rate}) as run:
        with run.stage("train") as stage:
            for epoch in range(epochs):
                residuals = [(slope * x + intercept - y, x) for x, y in train_points]
                slope -= learning_rate * 2 * sum(r * x for r, x in residuals) / len(residuals)
                intercept -= learning_rate * 2 * sum(r for r, _ in residuals) / len(residuals)
                stage.metric("train/loss", mean_squared_error(train_points, slope, intercept), step=epoch)
        with run.stage("validate") as stage:
            stage.metric("val/mse", mean_squared_error(validation_points, slope, intercept))
        output.write_text(json.dumps({"slope": slope, "intercept": intercept}))
        run.register_artifact("model", output, attributes={"format": "json"})
    return slope, intercept


@dataclass(frozen=True)
class Case:
    name: str
    question: tuple[int, int]


async def answer(question: tuple[int, int]) -> int:
    """A stand-in for a model behind an API: it gets sums of two odd numbers wrong."""
    await anyio.sleep(0)
    left, right = question
    return left + right + (1 if left % 2 and right % 2 else 0)


async def evaluate(ctx: Contexta, cases: list[Case]) -> float:
    """Ask every case concurrently, one sample each; return the share answered correctly."""
    correct: list[bool] = []
    async with ctx.arun("sum-eval", dataset_ref="dataset:local.sums") as run, run.stage("evaluate") as stage:

        async def judge(case: Case) -> None:
            async with stage.sample(case.name) as sample:
                started = time.perf_counter()
                reply = await answer(case.question)
                right = reply == sum(case.question)
                correct.append(right)
                await sample.metrics(
                    {"correct": float(right), "latency.ms": (time.perf_counter() - started) * 1000}
                )
                if not right:
                    await sample.event("answer.wrong", message=f"{case.question} -> {reply}", level="warning")

        async with anyio.create_task_group() as group:
            for case in cases:
                group.start_soon(judge, case)
        share = sum(correct) / len(correct)
        await stage.metric("accuracy", share)
    return share


CASES = [Case(f"case {left}+{right}", (left, right)) for left in range(4) for right in range(5)]

# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[MemoryCapture]:
    """What a user would put in their conftest.py."""
    with capture_in_memory(project_name="line-fit") as captured:
        yield captured


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory the capture makes its workspace in, and the working directory, both watched."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    working = tmp_path / "cwd"
    working.mkdir()
    monkeypatch.chdir(working)
    return directory


# -- a training loop ---------------------------------------------------------------------------


def test_a_training_loop_is_read_back_from_memory(captured: MemoryCapture, tmp_path: Path) -> None:
    slope, intercept = train(captured.ctx, epochs=30, output=tmp_path / "model.json")

    loss = captured.metric("train/loss")
    assert loss.steps == list(range(30))
    assert loss.values[-1] < loss.values[0]
    assert loss.last == loss.values[-1] == loss[-1].value
    assert {point.stage_ref for point in loss} == {"stage:line-fit.line-fit.train"}
    assert captured.metric_keys == ["train/loss", "val/mse"]
    validation = captured.assert_metric("val/mse", at_most=0.05, stage="validate")
    assert validation.values == [pytest.approx(mean_squared_error(make_points(50, seed=2), slope, intercept))]

    run = captured.assert_run("line-fit")
    assert run == captured.runs[0]
    assert (run.status, run.end_reason, run.failure) == ("completed", None, None)
    assert run.document["config_snapshot"] == {"learning_rate": 0.5}
    assert [stage.name for stage in captured.stages] == ["train", "validate"]
    assert {stage.parent_ref for stage in captured.stages} == {run.ref}
    captured.assert_completed()

    model = captured.assert_artifact("model")
    assert model.path == tmp_path / "model.json"
    assert model.size_bytes == (tmp_path / "model.json").stat().st_size
    assert model.bound and model.attributes == {"format": "json"} and len(model.hash_value or "") == 64
    assert captured.artifacts == [model]


def test_accessors_inside_the_block_see_what_was_captured_so_far(captured: MemoryCapture) -> None:
    ctx = captured.ctx
    with ctx.run("line-fit") as run, run.stage("train") as stage:
        stage.metric("train/loss", mean_squared_error(make_points(10, seed=3), 0.0, 0.0), step=0)
        assert captured.metric("train/loss").steps == [0]
        assert captured.run().status == "open"
    assert captured.run().status == "completed"


def test_the_store_behind_it_is_real_while_the_capture_is_open(
    captured: MemoryCapture, tmp_path: Path
) -> None:
    train(captured.ctx, epochs=5, output=tmp_path / "model.json")
    # Code under test that reads back what it captured (selecting a run, a report) works too.
    series = captured.ctx.get_metric_series("line-fit", "train/loss")
    assert list(series.values) == captured.metric("train/loss").values
    assert (
        captured.ctx.select_best_run(["line-fit"], "val/mse", higher_is_better=False)
        == "run:line-fit.line-fit"
    )


def test_failure_messages_name_what_was_captured(captured: MemoryCapture, tmp_path: Path) -> None:
    train(captured.ctx, epochs=3, output=tmp_path / "model.json")
    last = captured.metric("train/loss").last

    with pytest.raises(AssertionError) as failure:
        captured.assert_metric("train/loss", at_most=last / 2)
    assert str(failure.value) == (
        f"metric 'train/loss' is {last!r} (its last value at step 2, on stage:line-fit.line-fit.train), "
        f"expected at most {last / 2!r}; all 3 values: "
        + ", ".join(repr(value) for value in captured.metric("train/loss").values)
    )

    with pytest.raises(
        AssertionError,
        match=r"^metric 'accuracy' was never captured; captured metric keys: "
        r"'train/loss', 'val/mse'$",
    ):
        captured.metric("accuracy")
    with pytest.raises(
        AssertionError,
        match=r"^metric 'val/mse' was never captured in stage 'train'; "
        r"captured metric keys in stage 'train': 'train/loss'$",
    ):
        captured.assert_metric("val/mse", stage="train")
    with pytest.raises(
        AssertionError, match=r"^metric 'train/loss' has no value at step 7; its steps: 0, 1, 2$"
    ):
        captured.assert_metric("train/loss", step=7, at_most=1.0)
    with pytest.raises(
        AssertionError,
        match=r"^no artifact of kind 'checkpoint' was registered; "
        r"kinds registered: 'model'$",
    ):
        captured.assert_artifact("checkpoint")
    with pytest.raises(AssertionError, match=r"^no run 'baseline' was captured; runs: 'line-fit'$"):
        captured.run("baseline")
    with pytest.raises(
        AssertionError, match=r"^event 'dataset.loaded' was captured 0 times; events captured: none$"
    ):
        captured.assert_event("dataset.loaded")


def test_a_long_list_of_values_is_shortened(captured: MemoryCapture, tmp_path: Path) -> None:
    train(captured.ctx, epochs=25, output=tmp_path / "model.json")
    with pytest.raises(AssertionError, match=r"all 25 values: [^(]*, \.\.\. \(15 more\)$"):
        captured.assert_metric("train/loss", at_least=1e9)


def test_endings_say_what_went_wrong(captured: MemoryCapture) -> None:
    ctx = captured.ctx
    with pytest.raises(ZeroDivisionError), ctx.run("broken") as run, run.stage("evaluate") as stage:
        for index, case in enumerate(CASES[:3]):
            with stage.sample(case.name) as sample:
                sample.metric("ratio", case.question[1] / index)  # the first case divides by zero

    failed = captured.assert_run("broken", status="failed", end_reason="exception")
    assert failed.failure is not None and failed.failure["type"] == "ZeroDivisionError"
    assert [(sample.name, sample.status) for sample in captured.samples] == [("case 0+0", "failed")]
    assert captured.sample("case 0+0").end_reason == "exception"
    [event] = captured.assert_event("sample.failed", level="error", count=1)
    assert event.subject_ref == captured.samples[0].ref

    with pytest.raises(AssertionError) as failure:
        captured.assert_run("broken")
    assert str(failure.value) == (
        f"run 'broken' ({failed.ref}) ended failed: exception, ZeroDivisionError: division by zero; "
        "expected completed"
    )
    with pytest.raises(AssertionError) as failure:
        captured.assert_completed()
    assert str(failure.value) == (
        "3 of 3 scopes did not complete:\n"
        f"  run 'broken' ({failed.ref}) ended failed: exception, ZeroDivisionError: division by zero\n"
        f"  stage 'evaluate' ({captured.stages[0].ref}) ended failed: exception, "
        "ZeroDivisionError: division by zero\n"
        f"  sample 'case 0+0' ({captured.samples[0].ref}) ended failed: exception, "
        "ZeroDivisionError: division by zero"
    )
    with pytest.raises(
        AssertionError,
        match=r"^event 'sample.failed' at level 'error' was captured once, "
        r"expected 2; events captured: sample.failed \(error\) x1, stage.failed \(error\) x1, "
        r"run.failed \(error\) x1$",
    ):
        captured.assert_event("sample.failed", level="error", count=2)


def test_a_run_left_open_is_closed_cancelled_with_the_capture() -> None:
    with capture_in_memory() as captured:
        captured.ctx.run("forgotten").metric("m", 1.0)
    run = captured.assert_run("forgotten", status="cancelled", end_reason="contexta_closed")
    assert run.ended_at is not None


def test_a_non_finite_value_fails_a_bound_and_says_so(captured: MemoryCapture) -> None:
    with captured.ctx.run("diverged") as run:
        run.metric("loss", float("nan"), step=0)
    assert math.isnan(captured.metric("loss").last)
    with pytest.raises(
        AssertionError, match=r"^metric 'loss' is nan \(its last value at step 0, on run:line-fit"
    ):
        captured.assert_metric("loss", at_most=1.0)


def test_two_runs_need_a_name(captured: MemoryCapture) -> None:
    for name in ("baseline", "ResNet 50"):
        with captured.ctx.run(name) as run:
            run.metric("m", float(len(name)))
    with pytest.raises(
        AssertionError, match=r"^2 runs were captured \('baseline', 'ResNet 50'\); name the one"
    ):
        captured.run()
    # A run is named as typed, by its ref or by its ref's last part.
    resnet = captured.run("ResNet 50")
    assert captured.run(resnet.ref) == captured.run(resnet.ref.rpartition(".")[2]) == resnet
    assert captured.metric("m", run="ResNet 50").values == [9.0]
    assert captured.assert_metric("m", run="baseline", equals=8.0).values == [8.0]


# -- async evaluation --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_async_evaluation_is_read_back_from_memory() -> None:
    async with capture_in_memory(project_name="sums") as captured:
        share = await evaluate(captured.ctx, CASES)

    wrong = [case for case in CASES if case.question[0] % 2 and case.question[1] % 2]
    assert share == 1 - len(wrong) / len(CASES)
    captured.assert_metric("accuracy", equals=share, stage="evaluate")
    correct = captured.metric("correct")
    assert len(correct) == len(CASES) and sum(correct.values) == len(CASES) - len(wrong)
    assert {point.sample_ref for point in correct} == {sample.ref for sample in captured.samples}
    assert sorted(sample.name for sample in captured.samples) == sorted(case.name for case in CASES)
    captured.assert_event("answer.wrong", level="warning", count=len(wrong))
    captured.assert_completed()
    assert captured.run().document["dataset_ref"] == "dataset:local.sums"


@pytest.mark.anyio
async def test_a_cancelled_task_closes_its_sample_cancelled() -> None:
    async with capture_in_memory() as captured, captured.ctx.arun("r") as run, run.stage("evaluate") as stage:
        with anyio.move_on_after(0.05):
            async with stage.sample("slow") as sample:
                await sample.metric("started", 1.0)
                await anyio.sleep(10)
    assert (captured.sample("slow").status, captured.sample("slow").end_reason) == ("cancelled", "cancelled")
    assert captured.metric("started").values == [1.0]


# -- nothing outlives the capture --------------------------------------------------------------


def test_nothing_is_left_behind(temporary_directory: Path, tmp_path: Path) -> None:
    threads, handler, exit_hooks = (
        threading.active_count(),
        signal.getsignal(signal.SIGTERM),
        atexit._ncallbacks(),
    )
    with capture_in_memory() as captured:
        train(captured.ctx, epochs=3, output=tmp_path / "model.json")
        assert len(os.listdir(temporary_directory)) == 1  # the workspace, while it is open
        ctx = captured.ctx
    assert os.listdir(temporary_directory) == []
    assert os.listdir(Path.cwd()) == []
    assert threading.active_count() == threads
    assert signal.getsignal(signal.SIGTERM) is handler
    assert atexit._ncallbacks() == exit_hooks
    assert captured.run().status == "completed"  # still readable
    with pytest.raises(LifecycleError) as error:
        _ = captured.ctx
    assert error.value.code == "capture_not_open"
    assert ctx.capture_stats().queued == ctx.capture_stats().written


def test_the_workspace_is_removed_when_the_test_fails(temporary_directory: Path) -> None:
    with pytest.raises(RuntimeError), capture_in_memory() as captured, captured.ctx.run("r"):
        raise RuntimeError("the code under test broke")
    assert os.listdir(temporary_directory) == []
    captured.assert_run("r", status="failed", end_reason="exception")


def _capture_threads() -> set[str]:
    return {thread.name for thread in threading.enumerate() if thread.name.startswith("contexta")}


@pytest.mark.anyio
async def test_async_close_removes_the_workspace_and_ends_the_threads(temporary_directory: Path) -> None:
    # The event loop's worker threads stay for the next test (they ran open and close); ours do not.
    async with capture_in_memory() as captured, captured.ctx.arun("r") as run:
        await run.metric("m", 1.0)
        assert "contexta-writer" in _capture_threads()
    assert os.listdir(temporary_directory) == []
    assert _capture_threads() == set()
    assert captured.metric("m").values == [1.0]


def test_open_and_close_serve_a_fixture(temporary_directory: Path) -> None:
    captured = MemoryCapture("p")
    with pytest.raises(LifecycleError):
        _ = captured.ctx  # not open yet
    captured.open()
    try:
        with captured.ctx.run("r") as run:
            run.metric("m", 2.0)
    finally:
        captured.close()
        captured.close()  # idempotent
    assert captured.metric("m").values == [2.0]
    with pytest.raises(LifecycleError) as error:
        captured.open()
    assert error.value.code == "capture_reused"
    assert os.listdir(temporary_directory) == []


def test_settings_that_would_outlive_the_test_are_refused(
    temporary_directory: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError) as error:
        capture_in_memory(capture={"handle_signals": True})
    assert error.value.details == {"key": "capture.handle_signals"}

    monkeypatch.setenv("CONTEXTA_WORKSPACE_ROOT_PATH", str(tmp_path / "real-workspace"))
    with pytest.raises(ConfigurationError) as error, capture_in_memory():
        pass
    assert error.value.code == "config_env_conflict"
    assert "CONTEXTA_WORKSPACE_ROOT_PATH" in error.value.message
    monkeypatch.delenv("CONTEXTA_WORKSPACE_ROOT_PATH")

    monkeypatch.setenv("CONTEXTA_CAPTURE_HANDLE_SIGNALS", "true")
    with pytest.raises(ConfigurationError) as error, capture_in_memory():
        pass
    assert error.value.code == "config_env_conflict"
    assert not (tmp_path / "real-workspace").exists()
    assert os.listdir(temporary_directory) == []


def test_capture_settings_apply() -> None:
    with (
        capture_in_memory(capture={"non_finite": "raise"}) as strict,
        strict.ctx.run("r") as run,
        pytest.raises(ValidationError, match="finite"),
    ):
        run.metric("loss", math.nan)
    assert strict.metric_keys == []
