"""NaN and infinite metric values (SPEC §2): recorded by default and read back as the same float,
refused only under `capture.non_finite = "raise"`; what is refused gets a short message; and a
`metrics()` call never loses its good keys to a bad one.

Every test captures into a real workspace and reads the capture log file and the store back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from contexta import Contexta
from contexta.capture import InMemorySink, LocalJsonlSink, read_capture_log
from contexta.errors import ConfigurationError, ValidationError

TOKENS = {"NaN", "Infinity", "-Infinity"}


def same_float(left: float, right: float) -> bool:
    """Equal, counting NaN as equal to NaN."""
    return (math.isnan(left) and math.isnan(right)) or left == right


def same_floats(left: Any, right: Any) -> bool:
    return len(left) == len(right) and all(same_float(a, b) for a, b in zip(left, right, strict=True))


def metric_lines(workspace: Path) -> list[dict[str, Any]]:
    read = read_capture_log(workspace / "cache" / "capture" / "record.jsonl")
    assert read.clean
    return [line for line in read.lines if line["payload_type"] == "MetricRecord"]


@pytest.fixture(params=[True, False], ids=["compiled", "python"])
def compiled(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def ctx(workspace: Path, compiled: bool) -> Iterator[Contexta]:
    contexta = Contexta(
        workspace=workspace, config={"project_name": "p", "capture": {"compiled_metric": compiled}}
    )
    yield contexta
    contexta.close()


# -- a training loop that diverges -------------------------------------------------------------


def _diverging_logistic_regression(steps: int) -> Iterator[tuple[int, float, float]]:
    """(step, loss, gradient norm) of logistic regression with a far too large learning rate: the
    predictions saturate to exactly 0 and 1, log(0) is -inf, 0 * -inf is NaN, and the loss is NaN
    from then on, as in a real diverging job."""
    rng = np.random.default_rng(7)
    features = rng.normal(size=(64, 4))
    labels = (features @ np.array([1.0, -2.0, 0.5, 3.0]) > 0).astype(np.float64)
    weights = np.zeros(4)
    with np.errstate(all="ignore"):
        for step in range(steps):
            predictions = 1.0 / (1.0 + np.exp(-(features @ weights)))
            loss = -np.mean(labels * np.log(predictions) + (1 - labels) * np.log(1 - predictions))
            gradient = features.T @ (predictions - labels) / len(labels)
            yield step, loss, float(np.linalg.norm(gradient))
            weights = weights - 1e4 * gradient


def test_a_nan_loss_mid_training_is_recorded_and_the_loop_finishes(ctx: Contexta, workspace: Path) -> None:
    seen: list[float] = []
    with ctx.run("diverging") as run, run.stage("train") as stage:
        for step, loss, gradient_norm in _diverging_logistic_regression(40):
            stage.metric("loss", loss, step=step)  # a numpy.float64, NaN once the model diverges
            stage.metrics({"loss.float": float(loss), "grad.norm": gradient_norm}, step=step)
            seen.append(float(loss))
    assert (run.status, stage.status) == ("completed", "completed")  # the loop ran to its end
    first_nan = next(step for step, loss in enumerate(seen) if math.isnan(loss))
    assert 0 < first_nan < 39, "the loop must diverge midway for this test to mean anything"

    for key in ("loss", "loss.float"):
        series = ctx.get_metric_series("diverging", key, stage="train")
        assert same_floats(series.values, seen)
        assert list(series.steps) == list(range(40))
    logged = [
        line["payload"]["payload"]
        for line in metric_lines(workspace)
        if line["payload"]["payload"]["metric_key"] == "loss"
    ]
    assert [payload["value"] for payload in logged][first_nan] == "NaN"
    assert {payload["value_type"] for payload in logged} == {"float64"}

    (issue,) = [
        i
        for i in ctx.diagnose_run("diverging").issues
        if i.code == "non_finite_metric" and "'loss'" in i.summary
    ]
    assert f"the first at step {first_nan}" in issue.summary
    assert issue.severity == "warning"


# -- every capture call records NaN and the infinities ----------------------------------------

VALUES = [
    pytest.param(math.nan, id="nan"),
    pytest.param(math.inf, id="inf"),
    pytest.param(-math.inf, id="-inf"),
    pytest.param(np.float32("nan"), id="np.float32-nan"),
    pytest.param(np.float64("inf"), id="np.float64-inf"),
    pytest.param(np.array(-np.inf), id="0-d-array--inf"),
]

CALLS: list[Any] = [
    pytest.param(lambda ctx, stage, value: stage.metric("m", value, step=1), id="scope.metric"),
    pytest.param(lambda ctx, stage, value: ctx.metric("m", value, step=1), id="ctx.metric"),
    pytest.param(
        lambda ctx, stage, value: stage.metrics({"m": value, "ok": 1.0}, step=1), id="scope.metrics"
    ),
    pytest.param(lambda ctx, stage, value: ctx.metrics({"m": value}, step=1), id="ctx.metrics"),
    pytest.param(
        lambda ctx, stage, value: stage.metric("m", value, step=1, unit="nats", tags={"fold": 2}),
        id="metric-with-options",
    ),
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("call", CALLS)
def test_nan_and_infinities_are_recorded_by_every_capture_call(
    ctx: Contexta, workspace: Path, call: Callable[[Contexta, Any, Any], Any], value: Any
) -> None:
    expected = float(value)
    with ctx.run("r") as run, run.stage("s") as stage:
        stage.metric("m", 0.5, step=0)  # the key is known: the compiled call sees the value first
        assert call(ctx, stage, value).accepted

    (line,) = [
        line
        for line in metric_lines(workspace)
        if line["payload"]["payload"]["step"] == 1 and line["payload"]["payload"]["metric_key"] == "m"
    ]
    token = "NaN" if math.isnan(expected) else "Infinity" if expected > 0 else "-Infinity"
    assert line["payload"]["payload"]["value"] == token
    assert line["payload"]["payload"]["value_type"] == "float64"

    series = ctx.get_metric_series("r", "m", stage="s")
    assert same_floats(series.values, [0.5, expected])
    assert all(type(value) is float for value in series.values)


def test_the_log_file_holds_tokens_and_every_reader_turns_them_back_into_floats(tmp_path: Path) -> None:
    memory = InMemorySink()
    log = LocalJsonlSink(tmp_path / "capture")
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}, sinks=[memory, log])
    values = [1.0, math.nan, 2, math.inf, -math.inf, -0.0]
    with ctx.run("r") as run:
        for step, value in enumerate(values):
            run.metric("m", value, step=step)
    ctx.close()

    raw = log.file_path_for("RECORD").read_bytes().splitlines()
    assert b'"value":"NaN","value_type":"float64"' in raw[1]
    assert b"null" not in b"".join(raw)  # orjson's rendering of NaN never reaches the file
    assert [orjson.loads(line)["payload"]["payload"]["value"] for line in raw] == [
        1.0,
        "NaN",
        2,
        "Infinity",
        "-Infinity",
        -0.0,
    ]
    # Entries built into contract models (what InMemorySink.records() and outbox replay use).
    assert same_floats([record.payload.value for record in memory.records()], values)


# -- capture.non_finite = "raise" -------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_capture_non_finite_raise_refuses_them_at_the_call(
    workspace: Path, compiled: bool, value: Any
) -> None:
    config = {"project_name": "p", "capture": {"non_finite": "raise", "compiled_metric": compiled}}
    with Contexta(workspace=workspace, config=config) as ctx:
        with ctx.run("r") as run:
            run.metric("loss", 1.0)
            with pytest.raises(ValidationError) as refused:
                run.metric("loss", value)
            assert refused.value.code == "metric_value_invalid"
            assert "capture.non_finite" in refused.value.message
            with pytest.raises(ValidationError) as partly:
                run.metrics({"loss": value, "accuracy": 0.5})
            assert partly.value.code == "metrics_partly_invalid"
        assert ctx.get_metric_series("r", "loss").values == (1.0,)
        assert ctx.get_metric_series("r", "accuracy").values == (0.5,)


def test_the_environment_can_turn_refusal_on(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTA_CAPTURE_NON_FINITE", "raise")
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        assert ctx.config.capture.non_finite == "raise"
        with ctx.run("r") as run, pytest.raises(ValidationError):
            run.metric("loss", math.nan)
    monkeypatch.setenv("CONTEXTA_CAPTURE_NON_FINITE", "record")
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx, ctx.run("r") as run:
        run.metric("loss", math.nan)


def test_an_unknown_non_finite_policy_is_a_configuration_error(workspace: Path) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Contexta(workspace=workspace, config={"capture": {"non_finite": "ignore"}})
    assert raised.value.details == {"key": "capture.non_finite"}
    assert "'record' or 'raise'" in raised.value.message


# -- refusals are short -----------------------------------------------------------------------

REFUSED = [
    pytest.param(np.zeros(1_000_000), "numpy.ndarray of shape (1000000,)", id="numpy-array"),
    pytest.param(np.ones((1000, 1000), dtype=np.float32), "of shape (1000, 1000)", id="numpy-matrix"),
    pytest.param(list(range(1_000_000)), "list of 1000000 items", id="list"),
    pytest.param("7" * 100_000, "(a str)", id="long-string"),
    pytest.param(b"\x00" * 100_000, "(a bytes)", id="bytes"),
    pytest.param(True, "log 1.0 or 0.0", id="bool"),
    pytest.param(np.bool_(False), "log 1.0 or 0.0", id="numpy-bool"),
    pytest.param(None, "(a NoneType)", id="none"),
    pytest.param(2**100, "outside the 64-bit range", id="huge-int"),
    pytest.param(10**5000, "outside the 64-bit range", id="int-beyond-str-digits"),
]


@pytest.mark.parametrize(("value", "says"), REFUSED)
def test_bools_strings_and_arrays_are_refused_with_a_short_message(
    ctx: Contexta, value: Any, says: str
) -> None:
    with ctx.run("r") as run:
        run.metric("loss", 0.5)
        for call in (lambda: run.metric("loss", value), lambda: run.metrics({"loss": value}, step=1)):
            with pytest.raises(ValidationError) as refused:
                call()
            assert refused.value.code == "metric_value_invalid"
            assert says in refused.value.message
            assert len(refused.value.message) < 300
            assert len(str(refused.value.details)) < 300
    assert ctx.get_metric_series("r", "loss").values == (0.5,)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda run: run.metric("k" * 50_000, 1.0), id="long-key"),
        pytest.param(lambda run: run.metric("loss", 1.0, step=list(range(100_000))), id="list-step"),
        pytest.param(lambda run: run.metric("loss", 1.0, unit=["u"] * 100_000), id="list-unit"),
        pytest.param(lambda run: run.metrics({"k" * 50_000: 1.0, "b" * 50_000: "x" * 50_000}), id="metrics"),
    ],
)
def test_other_refusals_quote_at_most_a_short_repr(ctx: Contexta, call: Callable[[Any], Any]) -> None:
    with ctx.run("r") as run, pytest.raises(ValidationError) as refused:
        call(run)
    assert len(refused.value.message) < 600


# -- metrics(): a bad key never loses the good ones -------------------------------------------


def test_metrics_records_every_valid_pair_and_then_names_the_refused_ones(
    ctx: Contexta, workspace: Path
) -> None:
    with ctx.run("r") as run, run.stage("train") as stage:
        with pytest.raises(ValidationError) as refused:
            stage.metrics(
                {"loss": 0.25, "accuracy": "high", "bad key": 1.0, "lr": math.nan, "mask": np.ones(10**6)},
                step=3,
            )
        error = refused.value
        assert error.code == "metrics_partly_invalid"
        assert error.details["recorded"] == ["loss", "lr"]
        assert [(item["key"], item["code"]) for item in error.details["refused"]] == [
            ("accuracy", "metric_value_invalid"),
            ("bad key", "metric_key_invalid"),
            ("mask", "metric_value_invalid"),
        ]
        assert "'accuracy', 'bad key', 'mask'" in error.message
        assert "the other 2 were recorded" in error.message
        assert len(error.message) < 600
        stage.metrics({"loss": 0.125}, step=4)  # the scope goes on

    logged = [
        (
            line["payload"]["payload"]["metric_key"],
            line["payload"]["payload"]["value"],
            line["payload"]["payload"]["step"],
        )
        for line in metric_lines(workspace)
    ]
    assert logged == [("loss", 0.25, 3), ("lr", "NaN", 3), ("loss", 0.125, 4)]
    assert ctx.get_metric_series("r", "loss", stage="train").values == (0.25, 0.125)
    (lr,) = ctx.get_metric_series("r", "lr", stage="train").values
    assert math.isnan(lr)


def test_metrics_with_every_pair_refused_records_nothing(ctx: Contexta, workspace: Path) -> None:
    with ctx.run("r") as run:
        with pytest.raises(ValidationError) as refused:
            run.metrics({"a": "x", "b": [1.0]})
        assert refused.value.code == "metrics_invalid"
        assert refused.value.details["recorded"] == []
        assert "nothing of this call was recorded" in refused.value.message
        with pytest.raises(ValidationError) as shared:  # a bad step belongs to every pair
            run.metrics({"a": 1.0, "b": 2.0}, step=-1)
        assert shared.value.code == "metric_step_invalid"
    assert metric_lines(workspace) == []


def test_ctx_metrics_follows_the_same_rule(ctx: Contexta) -> None:
    with ctx.run("r"):
        with pytest.raises(ValidationError) as refused:
            ctx.metrics({"good": 1.0, "bad": "1.0"}, step=0)
        assert refused.value.code == "metrics_partly_invalid"
    assert ctx.get_metric_series("r", "good").values == (1.0,)
