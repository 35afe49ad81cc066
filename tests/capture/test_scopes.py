"""Sync capture scopes (SPEC §2): refs, lifecycle, the current scope, and validation at the call.

Every test captures into a real workspace under `tmp_path` and reads the capture log back
(`<workspace>/cache/capture/context.jsonl` for scope lines, `record.jsonl` for records).
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash

from contexta import Contexta, ContextaError
from contexta.capture import (
    BatchScope,
    CaptureWarning,
    DeploymentScope,
    OperationScope,
    RunScope,
    SampleScope,
    StageScope,
    read_capture_log,
)
from contexta.errors import ClosedScopeError, ConflictError, LifecycleError, ValidationError

COMPONENT = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def _hash(name: str) -> str:
    """The documented suffix of a name not in ref form: XXH3-64 of its UTF-8 bytes, 16 hex digits."""
    return xxhash.xxh3_64_hexdigest(name.encode())


PAYLOAD_TYPES = {
    "run": "Run",
    "stage": "StageExecution",
    "batch": "BatchExecution",
    "sample": "SampleObservation",
    "operation": "OperationExecution",
    "deployment": "DeploymentExecution",
}
# Which scope kinds enclose the scope of each kind in the tests below (outermost first).
CHAINS = {
    "run": ["run"],
    "stage": ["run", "stage"],
    "batch": ["run", "stage", "batch"],
    "stage-sample": ["run", "stage", "sample"],
    "batch-sample": ["run", "stage", "batch", "sample"],
    "operation": ["run", "stage", "operation"],
    "deployment": ["deployment"],
}


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    contexta = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"})
    yield contexta
    contexta.close()


def log_lines(ctx: Contexta, name: str) -> list[dict[str, Any]]:
    """The readable lines of one capture-log file, after everything captured so far is written."""
    ctx.flush()
    read = read_capture_log(ctx.workspace / "cache" / "capture" / f"{name}.jsonl")
    assert read.clean, f"{name}.jsonl has unreadable lines {read.skipped_lines}"
    return read.lines


def scope_lines(ctx: Contexta, ref: str) -> list[dict[str, Any]]:
    """The context.jsonl payloads for one scope, in the order they were written."""
    return [line["payload"] for line in log_lines(ctx, "context") if line["payload_ref"] == ref]


def metric_payloads(ctx: Contexta) -> list[dict[str, Any]]:
    lines = log_lines(ctx, "record")
    return [line["payload"]["payload"] for line in lines if line["payload_type"] == "MetricRecord"]


def event_records(ctx: Contexta) -> list[dict[str, Any]]:
    lines = log_lines(ctx, "record")
    return [line["payload"] for line in lines if line["payload_type"] == "StructuredEventRecord"]


def scope_kind(scope: Any) -> str:
    return type(scope).__name__.removesuffix("Scope").lower()


def open_child(ctx: Contexta, parent: Any, kind: str) -> Any:
    """Open a scope of `kind` under `parent` (None for a run or a deployment)."""
    if kind == "run":
        return ctx.run("Linear SVM")
    if kind == "deployment":
        return ctx.deployment("Prod Canary")
    if kind == "stage":
        return parent.stage("Train Model")
    if kind == "batch":
        return parent.batch("Epoch 1")
    if kind == "sample":
        return parent.sample("Row #7")
    assert kind == "operation"
    return parent.operation("Fit Weights")


# -- refs -------------------------------------------------------------------------------------


def test_names_in_ref_form_keep_their_refs_and_other_names_get_their_own(ctx: Contexta) -> None:
    with ctx.run("linear-svm") as run, run.stage("Train Model") as stage:
        with stage.batch("epoch-1") as batch, batch.sample("Row #7") as batch_sample:
            pass
        with stage.sample("first-prediction") as stage_sample:
            pass
        with stage.operation("Fit Weights") as operation:
            pass
    with ctx.deployment("prod-canary", run_ref=run.ref) as deployment:
        pass

    train = f"train-model-{_hash('Train Model')}"
    expected = {
        run: ("run:p.linear-svm", "linear-svm", RunScope),
        stage: (f"stage:p.linear-svm.{train}", "Train Model", StageScope),
        batch: (f"batch:p.linear-svm.{train}.epoch-1", "epoch-1", BatchScope),
        stage_sample: (f"sample:p.linear-svm.{train}.first-prediction", "first-prediction", SampleScope),
        batch_sample: (f"sample:p.linear-svm.{train}.epoch-1.row-7-{_hash('Row #7')}", "Row #7", SampleScope),
        operation: (
            f"operation:p.linear-svm.{train}.fit-weights-{_hash('Fit Weights')}",
            "Fit Weights",
            OperationScope,
        ),
        deployment: ("deployment:p.prod-canary", "prod-canary", DeploymentScope),
    }
    for scope, (ref, name, cls) in expected.items():
        assert isinstance(scope, cls)
        assert scope.ref == ref
        assert scope.name == name  # as typed
        assert len(ref) <= 255
        for component in ref.partition(":")[2].split("."):
            assert COMPONENT.fullmatch(component) and len(component) <= 63
    assert run.run_id == "run:p.linear-svm"

    # Each scope wrote an open and a closed line under its ref, with the contract model's name.
    lines = log_lines(ctx, "context")
    for scope in expected:
        mine = [
            line
            for line in lines
            if line["payload_ref"] == scope.ref and line["payload_type"] != "EnvironmentSnapshot"
        ]
        assert [line["payload"]["status"] for line in mine] == ["open", "completed"], scope.ref
        assert {line["payload_type"] for line in mine} == {PAYLOAD_TYPES[scope_kind(scope)]}
        assert all(line["family"] == "CONTEXT" for line in mine)


def test_scope_lines_carry_the_refs_of_their_parents(ctx: Contexta) -> None:
    with ctx.run("r") as run, run.stage("s") as stage, stage.batch("b") as batch, batch.sample("x") as sample:
        pass
    assert scope_lines(ctx, stage.ref)[-1]["run_ref"] == run.ref
    batch_line = scope_lines(ctx, batch.ref)[-1]
    assert (batch_line["run_ref"], batch_line["stage_execution_ref"]) == (run.ref, stage.ref)
    sample_line = scope_lines(ctx, sample.ref)[-1]
    assert sample_line["run_ref"] == run.ref
    assert sample_line["stage_execution_ref"] == stage.ref
    assert sample_line["batch_execution_ref"] == batch.ref
    assert sample_line["sample_name"] == "x"


# -- lifecycle --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CHAINS))
def test_leaving_a_with_block_closes_the_scope_completed(ctx: Contexta, kind: str) -> None:
    with contextlib.ExitStack() as stack:
        parent = None
        for step in CHAINS[kind]:
            parent = stack.enter_context(open_child(ctx, parent, step))
            assert parent.status == "open"
            assert parent.ended_at is None
        scope = parent
    assert scope is not None
    assert scope.status == "completed"
    assert scope.ended_at is not None
    assert scope.ended_at >= scope.started_at
    closed = scope_lines(ctx, scope.ref)[-1]
    assert closed["status"] == "completed"
    assert closed["ended_at"] == scope.ended_at


@pytest.mark.parametrize("kind", list(CHAINS))
def test_an_escaping_exception_fails_the_scope_and_propagates(ctx: Contexta, kind: str) -> None:
    *outer, inner = CHAINS[kind]
    with contextlib.ExitStack() as stack:
        parents = []
        for step in outer:
            parents.append(stack.enter_context(open_child(ctx, parents[-1] if parents else None, step)))
        scope = open_child(ctx, parents[-1] if parents else None, inner)
        with pytest.raises(RuntimeError, match="boom") as raised, scope:
            raise RuntimeError("boom")
        assert type(raised.value) is RuntimeError  # the very exception, not wrapped
    assert scope.status == "failed"
    assert all(parent.status == "completed" for parent in parents)  # they caught it in time

    closed = scope_lines(ctx, scope.ref)[-1]
    assert closed["status"] == "failed"
    assert closed["ended_at"] == scope.ended_at
    failures = [
        record
        for record in event_records(ctx)
        if record["payload"]["event_key"] == f"{scope_kind(scope)}.failed"
    ]
    assert len(failures) == 1
    assert failures[0]["payload"]["subject_ref"] == scope.ref
    assert "boom" in failures[0]["payload"]["message"]


class _Interrupted(BaseException):
    """Stands in for KeyboardInterrupt without upsetting pytest."""


def test_a_base_exception_cancels_the_scope_and_propagates(ctx: Contexta) -> None:
    with ctx.run("r") as run:
        stage = run.stage("s")
        with pytest.raises(_Interrupted), stage:
            raise _Interrupted()
        assert stage.status == "cancelled"
    assert run.status == "completed"
    assert scope_lines(ctx, stage.ref)[-1]["status"] == "cancelled"


@pytest.mark.parametrize(
    ("parent_status", "child_status"),
    [("completed", "cancelled"), ("cancelled", "cancelled"), ("failed", "failed")],
)
def test_closing_a_parent_closes_its_open_children(
    ctx: Contexta, parent_status: str, child_status: str
) -> None:
    run = ctx.run("r")
    stage = run.stage("s")
    batch = stage.batch("b")
    sample = batch.sample("x")
    stage_sample = stage.sample("y")
    operation = stage.operation("op")
    finished = run.stage("done")
    finished.close()

    run.close(parent_status)

    assert run.status == parent_status
    children = [stage, batch, sample, stage_sample, operation]
    for child in children:
        assert child.status == child_status, child.ref
        assert child.ended_at is not None
        assert scope_lines(ctx, child.ref)[-1]["status"] == child_status
    assert finished.status == "completed"  # closed before: left alone
    assert [line["status"] for line in scope_lines(ctx, finished.ref)] == ["open", "completed"]


def test_an_exception_leaving_the_run_fails_its_open_children(ctx: Contexta) -> None:
    with pytest.raises(KeyError), ctx.run("r") as run:
        stage = run.stage("s")
        batch = stage.batch("b")
        raise KeyError("missing column")
    assert (run.status, stage.status, batch.status) == ("failed", "failed", "failed")
    assert scope_lines(ctx, batch.ref)[-1]["status"] == "failed"


def test_leaving_a_run_normally_cancels_children_left_open(ctx: Contexta) -> None:
    with ctx.run("r") as run:
        stage = run.stage("never-closed")
    assert run.status == "completed"
    assert stage.status == "cancelled"
    assert scope_lines(ctx, stage.ref)[-1]["status"] == "cancelled"


def test_closing_twice_keeps_the_first_status(ctx: Contexta) -> None:
    with ctx.run("r") as run:
        stage = run.stage("s")
        stage.close("failed")
        stage.close("completed")
        assert stage.status == "failed"
    assert [line["status"] for line in scope_lines(ctx, stage.ref)] == ["open", "failed"]


def test_close_refuses_a_status_that_is_not_terminal(ctx: Contexta) -> None:
    with ctx.run("r") as run:
        stage = run.stage("s")
        with pytest.raises(ValidationError) as raised:
            stage.close("done")
        assert raised.value.code
        assert stage.status == "open"


CLOSED_SCOPE_CALLS: dict[str, Callable[[Any], Any]] = {
    "metric": lambda scope: scope.metric("loss", 0.5),
    "metrics": lambda scope: scope.metrics({"loss": 0.5}, step=1),
    "event": lambda scope: scope.event("note", message="late"),
    "span": lambda scope: scope.span("load"),
    "register_artifact": lambda scope: scope.register_artifact("model", __file__),
}


@pytest.mark.parametrize("call", list(CLOSED_SCOPE_CALLS))
@pytest.mark.parametrize("kind", ["run", "stage", "batch", "batch-sample", "operation"])
def test_using_a_closed_scope_raises_closed_scope_error(ctx: Contexta, kind: str, call: str) -> None:
    with contextlib.ExitStack() as stack:
        scope = None
        for step in CHAINS[kind]:
            scope = stack.enter_context(open_child(ctx, scope, step))
    with pytest.raises(ClosedScopeError) as raised:
        CLOSED_SCOPE_CALLS[call](scope)
    assert isinstance(raised.value, ContextaError)
    assert raised.value.code == "scope_closed"
    assert raised.value.message


def test_opening_children_of_a_closed_scope_raises_closed_scope_error(ctx: Contexta) -> None:
    with ctx.run("r") as run, run.stage("s") as stage, stage.batch("b") as batch:
        pass
    for open_call in (
        lambda: run.stage("t"),
        lambda: stage.batch("c"),
        lambda: stage.sample("x"),
        lambda: batch.sample("x"),
        lambda: stage.operation("op"),
    ):
        with pytest.raises(ClosedScopeError) as raised:
            open_call()
        assert raised.value.code == "scope_closed"


def test_a_closed_deployment_refuses_capture(ctx: Contexta) -> None:
    with ctx.deployment("canary") as deployment:
        pass
    with pytest.raises(ClosedScopeError) as raised:
        deployment.event("late", message="too late")
    assert raised.value.code == "scope_closed"


# -- capture outside a run and the current scope ------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda ctx: ctx.metric("loss", 0.5),
        lambda ctx: ctx.metrics({"loss": 0.5}),
        lambda ctx: ctx.event("note", message="hello"),
        lambda ctx: ctx.span("load"),
    ],
    ids=["metric", "metrics", "event", "span"],
)
def test_capture_outside_any_run_raises_lifecycle_error(
    ctx: Contexta, call: Callable[[Contexta], Any]
) -> None:
    with pytest.raises(LifecycleError) as raised:
        call(ctx)
    assert raised.value.code == "no_active_run"
    with ctx.run("r"):
        pass
    with pytest.raises(LifecycleError) as raised:  # and after the run has ended
        call(ctx)
    assert raised.value.code == "no_active_run"


def test_ctx_capture_goes_to_the_innermost_open_scope(ctx: Contexta) -> None:
    with ctx.run("r") as run:
        ctx.metric("run_level", 1.0)
        with run.stage("s") as stage, stage.batch("b") as batch:
            ctx.metric("batch_level", 2.0)
        ctx.event("back.at.run", message="m")
    subjects = {payload["metric_key"]: payload["subject_ref"] for payload in metric_payloads(ctx)}
    assert subjects == {"run_level": run.ref, "batch_level": batch.ref}
    events = [record for record in event_records(ctx) if record["payload"]["event_key"] == "back.at.run"]
    assert events[0]["payload"]["subject_ref"] == run.ref


def test_current_scope_accessors_follow_nested_with_blocks(ctx: Contexta) -> None:
    def current() -> tuple[Any, ...]:
        return (ctx.current_run(), ctx.current_stage(), ctx.current_batch(), ctx.current_sample())

    assert current() == (None, None, None, None)
    with ctx.run("r") as run:
        assert current() == (run, None, None, None)
        with run.stage("s") as stage:
            assert current() == (run, stage, None, None)
            with stage.sample("direct") as stage_sample:
                assert current() == (run, stage, None, stage_sample)
            with stage.batch("b") as batch:
                assert current() == (run, stage, batch, None)
                with batch.sample("x") as sample:
                    assert current() == (run, stage, batch, sample)
                assert current() == (run, stage, batch, None)
            assert current() == (run, stage, None, None)
        assert current() == (run, None, None, None)
    assert current() == (None, None, None, None)
    assert ctx.current_deployment() is None
    with ctx.deployment("canary") as deployment:
        assert ctx.current_deployment() is deployment
        assert ctx.current_stage() is None
    assert ctx.current_deployment() is None


def test_a_scope_entered_through_another_contexta_never_hides_this_ones(
    ctx: Contexta, tmp_path: Path
) -> None:
    """Two Contextas in one program (an evaluation job logging into a second workspace): entering a
    scope of the other one inside this one's stage leaves `ctx.metric` and the accessors here."""
    other = Contexta(workspace=tmp_path / "other", config={"project_name": "q"})
    try:
        with ctx.run("r") as run, run.stage("s") as stage, other.run("elsewhere") as other_run:
            ctx.metric("here", 1.0)
            assert (ctx.current_run(), ctx.current_stage()) == (run, stage)
            assert other.current_run() is other_run and other.current_stage() is None
    finally:
        other.close()
    subjects = {payload["metric_key"]: payload["subject_ref"] for payload in metric_payloads(ctx)}
    assert subjects == {"here": stage.ref}


def test_each_thread_sees_its_own_current_sample(ctx: Contexta) -> None:
    seen: dict[str, Any] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    with ctx.run("r") as run, run.stage("evaluate") as stage:

        def judge(name: str) -> None:
            try:
                with stage.sample(name) as sample:
                    start.wait(timeout=10)  # all four samples are open at once
                    seen[name] = (ctx.current_sample() is sample, sample.ref)
                    ctx.metric("latency.ms", 12.5, unit="ms")
                    start.wait(timeout=10)
            except BaseException as error:  # surfaced below, not lost in the thread
                errors.append(error)

        threads = [threading.Thread(target=judge, args=(f"case-{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors
    assert {name: mine for name, (mine, _) in seen.items()} == {f"case-{n}": True for n in range(4)}
    subjects = sorted(payload["subject_ref"] for payload in metric_payloads(ctx))
    assert subjects == sorted(ref for _, ref in seen.values())


# -- validation at the call -------------------------------------------------------------------


def _cyclic_dict() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    return loop


def _cyclic_list() -> dict[str, Any]:
    items: list[Any] = [1]
    items.append(items)
    return {"items": items}


# Each call gets (c, r, s): the Contexta, the open run and its open stage.
BAD_CALLS = [
    pytest.param(lambda c, r, s: s.metric("loss", True), "metric_value_invalid", id="metric-bool"),
    pytest.param(lambda c, r, s: s.metric("loss", "1.0"), "metric_value_invalid", id="metric-str"),
    pytest.param(lambda c, r, s: s.metric("loss", None), "metric_value_invalid", id="metric-none"),
    pytest.param(lambda c, r, s: s.metric("loss", [1]), "metric_value_invalid", id="metric-list"),
    pytest.param(lambda c, r, s: s.metric("loss", np.array([1.0])), "metric_value_invalid", id="np-vector"),
    pytest.param(lambda c, r, s: c.metric("loss", "nan"), "metric_value_invalid", id="ctx-metric-str"),
    # A metrics() call whose only pair is refused raises what metric() would; with good pairs beside
    # a bad one, see tests/capture/test_non_finite.py.
    pytest.param(
        lambda c, r, s: s.metrics({"bad": [1.0]}, step=1), "metric_value_invalid", id="metrics-value"
    ),
    pytest.param(lambda c, r, s: s.metrics({"bad key": 2.0}), "metric_key_invalid", id="metrics-bad-key"),
    pytest.param(
        lambda c, r, s: s.metrics({"bad key": 2.0, "other": "x"}), "metrics_invalid", id="metrics-all-bad"
    ),
    pytest.param(lambda c, r, s: s.metric("", 1.0), "metric_key_invalid", id="key-empty"),
    pytest.param(lambda c, r, s: s.metric("val loss", 1.0), "metric_key_invalid", id="key-space"),
    pytest.param(lambda c, r, s: s.metric("k" * 201, 1.0), "metric_key_invalid", id="key-too-long"),
    pytest.param(lambda c, r, s: s.metric(".loss", 1.0), "metric_key_invalid", id="key-leading-dot"),
    pytest.param(lambda c, r, s: s.metric(7, 1.0), "metric_key_invalid", id="key-not-str"),
    pytest.param(lambda c, r, s: s.event("bad key", message="m"), "metric_key_invalid", id="event-key-space"),
    pytest.param(lambda c, r, s: s.metric("loss", 1.0, step=-1), "metric_step_invalid", id="step-negative"),
    pytest.param(lambda c, r, s: s.metric("loss", 1.0, step=1.5), "metric_step_invalid", id="step-float"),
    pytest.param(
        lambda c, r, s: s.metrics({"ok_key": 1.0}, step=-3), "metric_step_invalid", id="metrics-step-negative"
    ),
    pytest.param(
        lambda c, r, s: s.metric("loss", 1.0, aggregation_scope="forever"),
        "aggregation_scope_invalid",
        id="aggregation-scope",
    ),
    pytest.param(
        lambda c, r, s: s.metric("loss", 1.0, tags={"x": object()}),
        "attributes_invalid",
        id="metric-tags-object",
    ),
    pytest.param(
        lambda c, r, s: s.event("e", message="m", attributes={"x": object()}),
        "attributes_invalid",
        id="attributes-object",
    ),
    pytest.param(
        lambda c, r, s: s.event("e", message="m", attributes={"ids": {1, 2}}),
        "attributes_invalid",
        id="attributes-set",
    ),
    pytest.param(
        lambda c, r, s: s.event("e", message="m", attributes={"a": {"b": [1.0, math.nan]}}),
        "attributes_invalid",
        id="attributes-nested-nan",
    ),
    pytest.param(
        lambda c, r, s: s.event("e", message="m", attributes={1: "x"}),
        "attributes_invalid",
        id="attributes-non-str-key",
    ),
    pytest.param(
        lambda c, r, s: s.event("e", message="m", attributes=_cyclic_dict()),
        "attributes_invalid",
        id="attributes-cyclic-dict",
    ),
    pytest.param(
        lambda c, r, s: s.event("e", message="m", attributes=_cyclic_list()),
        "attributes_invalid",
        id="attributes-cyclic-list",
    ),
    pytest.param(
        lambda c, r, s: s.span("load", attributes={"x": object()}),
        "attributes_invalid",
        id="span-attributes-object",
    ),
    pytest.param(
        lambda c, r, s: c.event("e", message="m", attributes={"x": {3}}),
        "attributes_invalid",
        id="ctx-event-attributes",
    ),
    pytest.param(lambda c, r, s: s.event("e", message="m", level="loud"), "level_invalid", id="event-level"),
    pytest.param(lambda c, r, s: c.run("!!!"), "name_empty", id="run-name-empty"),
    pytest.param(lambda c, r, s: r.stage("s" * 100), "name_too_long", id="stage-name-too-long"),
    pytest.param(lambda c, r, s: s.batch("   "), "name_empty", id="batch-name-empty"),
    pytest.param(
        lambda c, r, s: s.span("load", started_at="2024-01-01T00:00:01Z", ended_at="2024-01-01T00:00:00Z"),
        "span_time_invalid",
        id="span-ends-before-start",
    ),
    pytest.param(
        lambda c, r, s: c.deployment("canary", run_ref="run:other.r"),
        "ref_parent_mismatch",
        id="deployment-other-project",
    ),
]


@pytest.mark.parametrize(("call", "code"), BAD_CALLS)
def test_bad_input_raises_a_coded_error_at_the_call_and_keeps_earlier_capture(
    ctx: Contexta, call: Callable[[Contexta, Any, Any], Any], code: str
) -> None:
    with ctx.run("r") as run, run.stage("s") as stage:
        stage.metric("before", 1.0, step=0)
        stage.event("before.event", message="kept")
        with pytest.raises(ValidationError) as raised:
            call(ctx, run, stage)
        assert isinstance(raised.value, ContextaError)
        assert raised.value.code == code
        assert raised.value.message
        stage.metric("after", 2.0, step=1)  # the scope is still usable
    assert (run.status, stage.status) == ("completed", "completed")

    keys = [payload["metric_key"] for payload in metric_payloads(ctx)]
    assert keys == ["before", "after"]  # the bad call wrote nothing
    assert [record["payload"]["event_key"] for record in event_records(ctx)] == ["before.event"]
    assert not [line for line in log_lines(ctx, "context") if line["payload_type"] == "DeploymentExecution"]


# -- accepted values and keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected", "value_type"),
    [
        (np.float32(0.5), 0.5, "float64"),
        (np.float64(0.25), 0.25, "float64"),
        (np.int64(7), 7, "int64"),
        (np.array(1.5), 1.5, "float64"),
        (np.int32(-3), -3, "int64"),
        (3, 3, "int64"),
        (0.125, 0.125, "float64"),
    ],
    ids=["np.float32", "np.float64", "np.int64", "0-d-array", "np.int32", "int", "float"],
)
def test_numeric_scalars_are_written_as_plain_json_numbers(
    ctx: Contexta, value: Any, expected: float, value_type: str
) -> None:
    with ctx.run("r") as run, run.stage("s") as stage:
        stage.metric("value", value, step=0)
    (payload,) = metric_payloads(ctx)
    assert payload["value"] == expected
    assert type(payload["value"]) is (float if value_type == "float64" else int)
    assert payload["value_type"] == value_type


def test_metrics_writes_one_record_per_key_with_the_shared_step(ctx: Contexta) -> None:
    with ctx.run("r") as run, run.stage("train") as stage:
        result = stage.metrics({"a": 1.0, "b": np.float64(2)}, step=3, unit="ratio")
    assert result.accepted
    payloads = {payload["metric_key"]: payload for payload in metric_payloads(ctx)}
    assert set(payloads) == {"a", "b"}
    for key, value in (("a", 1.0), ("b", 2.0)):
        assert payloads[key]["value"] == value
        assert type(payloads[key]["value"]) is float
        assert payloads[key]["value_type"] == "float64"
        assert payloads[key]["step"] == 3
        assert payloads[key]["unit"] == "ratio"
        assert payloads[key]["subject_ref"] == stage.ref


def test_seed_style_metric_keys_are_accepted(ctx: Contexta) -> None:
    keys = ["val_loss", "train/loss", "macro.f1", "latency.ms", "_private", "k" * 200]
    with ctx.run("r") as run, run.stage("s") as stage:
        for index, key in enumerate(keys):
            assert stage.metric(key, float(index), step=index).accepted
    assert [payload["metric_key"] for payload in metric_payloads(ctx)] == keys


def test_metric_records_carry_unit_step_scope_and_tags(ctx: Contexta) -> None:
    with ctx.run("r") as run, run.stage("s") as stage, stage.batch("b") as batch:
        batch.metric(
            "macro.f1", 0.96, unit="ratio", step=2, aggregation_scope="epoch", tags={"split": "holdout"}
        )
    (line,) = [line for line in log_lines(ctx, "record") if line["payload_type"] == "MetricRecord"]
    envelope, payload = line["payload"]["envelope"], line["payload"]["payload"]
    assert line["payload_ref"] == envelope["record_ref"]
    assert envelope["record_ref"].startswith("record:p.r.")
    assert (envelope["run_ref"], envelope["stage_execution_ref"], envelope["batch_execution_ref"]) == (
        run.ref,
        stage.ref,
        batch.ref,
    )
    assert payload == {
        "metric_key": "macro.f1",
        "value": 0.96,
        "value_type": "float64",
        "unit": "ratio",
        "step": 2,
        "aggregation_scope": "epoch",
        "subject_ref": batch.ref,
        "tags": {"split": "holdout"},
    }


def test_json_attributes_are_written_as_given(ctx: Contexta) -> None:
    attributes = {"rows": 150, "ratio": 0.5, "ok": True, "none": None, "nested": {"list": [1, "two", [3.0]]}}
    with ctx.run("r") as run:
        run.event("dataset.loaded", message="150 rows", level="warning", attributes=attributes)
    (record,) = event_records(ctx)
    assert record["payload"]["attributes"] == attributes
    assert record["payload"]["level"] == "warning"
    assert record["payload"]["message"] == "150 rows"


def test_attributes_are_copied_at_the_call(ctx: Contexta) -> None:
    attributes: dict[str, Any] = {"rows": [1, 2]}
    with ctx.run("r") as run:
        run.event("dataset.loaded", message="m", attributes=attributes)
        attributes["rows"].append(3)  # a later change by the caller must not leak into the record
    (record,) = event_records(ctx)
    assert record["payload"]["attributes"] == {"rows": [1, 2]}


# -- deployments, order, names ----------------------------------------------------------------


def test_deployment_records_carry_the_deployment_and_the_linked_run(ctx: Contexta) -> None:
    with ctx.run("train") as run:
        pass
    artifact = "artifact:p.train.model-0123456789ab"
    with ctx.deployment("tiny-cnn-candidate", run_ref=run.ref, artifact_ref=artifact) as deployment:
        deployment.event("checkpoint.selected", message="picked epoch 3")
        deployment.metric("latency.ms", 12.5, unit="ms")
    assert deployment.ref == "deployment:p.tiny-cnn-candidate"
    records = [line["payload"] for line in log_lines(ctx, "record")]
    assert len(records) == 2
    for record in records:
        assert record["envelope"]["deployment_execution_ref"] == deployment.ref
        assert record["envelope"]["run_ref"] == run.ref
        assert record["payload"]["subject_ref"] == deployment.ref
    opened, closed = scope_lines(ctx, deployment.ref)
    assert (opened["status"], closed["status"]) == ("open", "completed")
    assert closed["deployment_name"] == "tiny-cnn-candidate"
    assert closed["run_ref"] == run.ref
    assert closed["artifact_ref"] == artifact
    assert closed["project_ref"] == "project:p"


def test_stage_and_batch_order_index_increments(ctx: Contexta) -> None:
    with ctx.run("r") as run:
        for name in ("prepare", "train", "evaluate"):
            with run.stage(name) as stage:
                if name == "train":
                    for epoch in range(3):
                        with stage.batch(f"epoch-{epoch}"):
                            pass
    lines = [line["payload"] for line in log_lines(ctx, "context") if line["payload"].get("status") == "open"]
    stage_order = [line["order_index"] for line in lines if "stage_name" in line]
    batch_order = [line["order_index"] for line in lines if "batch_name" in line]
    for order in (stage_order, batch_order):
        assert len(order) == 3
        assert order == list(range(order[0], order[0] + 3))
    stage_names = [line["stage_name"] for line in lines if "stage_name" in line]
    assert stage_names == ["prepare", "train", "evaluate"]


def test_a_second_open_stage_with_the_same_name_conflicts(ctx: Contexta) -> None:
    with ctx.run("r") as run, run.stage("Train") as first:
        with pytest.raises(ConflictError) as raised:
            run.stage("Train")
        assert raised.value.code == "stage_already_open"
        for other_name in ("train", "TRAIN!"):  # different names: their own stages, open beside it
            with run.stage(other_name) as other:
                assert other.ref != first.ref and other.status == "open"
        assert first.status == "open"
    assert [line["status"] for line in scope_lines(ctx, first.ref)] == ["open", "completed"]


def test_a_stage_name_can_be_reopened_after_it_closed(ctx: Contexta) -> None:
    with ctx.run("r") as run:
        with run.stage("train") as first:
            first.metric("loss", 1.0)
        with run.stage("train") as second:
            second.metric("loss", 0.5)
    assert first.ref == second.ref
    assert (first.status, second.status) == ("completed", "completed")
    statuses = [line["status"] for line in scope_lines(ctx, first.ref)]
    assert statuses == ["open", "completed", "open", "completed"]
    assert [payload["value"] for payload in metric_payloads(ctx)] == [1.0, 0.5]


def test_sibling_samples_and_batches_need_distinct_open_names(ctx: Contexta) -> None:
    with ctx.run("r") as run, run.stage("s") as stage:
        with stage.sample("x"):
            with pytest.raises(ConflictError):
                stage.sample("x")
            with stage.sample("X"), stage.sample("y"):  # other names, other samples
                pass
        with stage.batch("b"), pytest.raises(ConflictError):
            stage.batch("b")
        with stage.sample("x"):  # closed before: free again
            pass


def test_a_run_name_opened_twice_at_once_gives_two_executions_and_warns(ctx: Contexta) -> None:
    with ctx.run("r") as first:
        first.metric("loss", 1.0, step=0)
        with pytest.warns(CaptureWarning, match=r"run:p\.r is already open in this process"):
            second = ctx.run("r")
        second.metric("loss", 2.0, step=0)
        second.close()
    assert first.ref == second.ref and first.execution_id != second.execution_id
    runs = ctx.list_runs(all_executions=True)
    assert [(run.run_id, run.execution_id) for run in runs] == [
        ("run:p.r@1", first.execution_id),
        ("run:p.r", second.execution_id),
    ]
    assert ctx.get_metric_series("r@1", "loss").values == (1.0,)
    assert ctx.get_metric_series("r", "loss").values == (2.0,)
