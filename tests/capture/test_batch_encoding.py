"""The writer's direct metric-line formatting must say exactly what the generic JSON encoder says."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from log_checks import assert_log_matches_generic_encoding

from contexta import Contexta
from contexta.capture import CaptureBatch, InMemorySink, LocalJsonlSink, read_capture_log
from contexta.capture._items import ScopeContext, metric_item
from contexta.capture._log._entries import entry_to_line
from contexta.capture._log._line_writer import assemble
from contexta.capture._log._metric_lines import Numbering, materialize_metric, record_lines
from contexta.errors import ValidationError

keys = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,30}", fullmatch=True)
values = st.one_of(
    st.floats(),  # NaN and the infinities included: written as tokens by both encoders
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
TOKENS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
units = st.one_of(st.none(), st.text(min_size=1, max_size=20))
tag_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=10))
tags = st.one_of(st.none(), st.dictionaries(st.text(max_size=8), tag_values, max_size=3))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(keys, values, units, st.one_of(st.none(), st.integers(0, 10**9)), tags),
        min_size=1,
        max_size=20,
    )
)
def test_metric_lines_match_the_generic_encoding(tmp_path_factory: Any, metrics: list[Any]) -> None:
    # The capture log's lines come from the writer's direct formatting; the memory sink's entries are
    # encoded here with the generic encoder. Both sinks saw the same batches.
    workspace: Path = tmp_path_factory.mktemp("ws")
    memory = InMemorySink()
    log = LocalJsonlSink(workspace / "capture")
    ctx = Contexta(workspace=workspace, config={"project_name": "p"}, sinks=[memory, log])
    try:
        with ctx.run("r") as run, run.stage("s") as stage:
            for key, value, unit, step, tag_map in metrics:
                stage.metric(key, value, unit=unit, step=step, tags=tag_map)
    finally:
        ctx.close()
    fast = assert_log_matches_generic_encoding(memory, log)
    assert len(fast) == len(metrics)
    for line, (_, value, *_rest) in zip(fast, metrics, strict=True):
        stored = line["payload"]["payload"]["value"]
        if isinstance(value, float) and not math.isfinite(value):
            assert type(stored) is str and repr(TOKENS[stored]) == repr(value)
            assert line["payload"]["payload"]["value_type"] == "float64"
        else:
            assert stored == value and type(stored) is type(value) and not math.isnan(stored)


def test_batches_mixing_scopes_keys_types_steps_tags_and_events_encode_like_the_generic_encoder(
    tmp_path: Path,
) -> None:
    # One writer batch in which every template dimension varies from one metric to the next, with
    # events and tagged metrics in between: the column-wise formatting must keep each line's own
    # template and the capture order.
    memory = InMemorySink()
    log = LocalJsonlSink(tmp_path / "capture")
    ctx = Contexta(
        workspace=tmp_path / ".contexta",
        config={"project_name": "p", "capture": {"max_batch_size": 10_000}},
        sinks=[memory, log],
    )
    with ctx.run("r") as run, run.stage("s") as stage:
        first, second = stage.sample("a"), stage.sample("b")
        for step in range(300):
            scope = (run, stage, first, second)[step % 4]
            scope.metric("loss", 0.5 + step if step % 3 else step, step=step if step % 5 else None)
            stage.metrics({"accuracy": step / 300, "lr": 1e-3}, step=step)
            if step % 7 == 0:
                second.metric("latency", 1.25, unit="ms", aggregation_scope="sample")
            if step % 11 == 0:
                first.metric("tagged", step, tags={"fold": step % 3})
            if step % 13 == 0:
                stage.event("note", message=f"step {step}")
        first.close()
        second.close()
    ctx.close()
    fast = assert_log_matches_generic_encoding(memory, log)
    assert [line["payload"]["payload"]["metric_key"] for line in fast][:4] == [
        "loss",
        "accuracy",
        "lr",
        "latency",
    ]
    assert {line["payload"]["payload"]["value_type"] for line in fast} == {"float64", "int64"}
    assert {line["payload"]["envelope"].get("sample_observation_ref") for line in fast} == {
        None,
        "sample:p.r.s.a",
        "sample:p.r.s.b",
    }


def test_non_finite_values_in_a_batch_of_plain_metrics_encode_like_the_generic_encoder(
    tmp_path: Path,
) -> None:
    # A batch of plain metric tuples is formatted column-wise, except the metrics whose value is not
    # finite, which take the generic encoder: lines, values and order must come out as it says.
    memory = InMemorySink()
    log = LocalJsonlSink(tmp_path / "capture")
    ctx = Contexta(
        workspace=tmp_path / ".contexta",
        config={"project_name": "p", "capture": {"max_batch_size": 10_000}},
        sinks=[memory, log],
    )
    special = (math.nan, math.inf, -math.inf)
    with ctx.run("r") as run, run.stage("s") as stage:
        for step in range(3000):
            value = special[step % 3] if step % 97 == 5 else step / 7
            stage.metric("loss", value, step=step)
            stage.metrics({"a": 1.0, "b": special[step % 3] if step % 50 == 0 else 2.0}, step=step)
            run.metric("count", step)
    ctx.close()
    fast = assert_log_matches_generic_encoding(memory, log)
    values = [line["payload"]["payload"]["value"] for line in fast]
    assert len(fast) == 4 * 3000
    assert {"NaN", "Infinity", "-Infinity"} <= set(values)
    assert [
        line["payload"]["payload"]["step"]
        for line in fast
        if line["payload"]["payload"]["metric_key"] == "loss"
    ] == list(range(3000))


@pytest.mark.parametrize(
    "values",
    [
        [math.nan, 1.0, 2.0, -math.inf],  # cut out at both ends of the run
        [math.inf, math.nan, -math.inf],  # nothing left for the columns
        [1e308, 1e308, -1e308, 3],  # finite, but the sum the check takes overflows
        [1e308, 1e308, math.nan, 0.5],
    ],
)
def test_a_run_with_non_finite_values_at_its_ends_or_an_overflowing_sum_encodes_right(
    values: list[float],
) -> None:
    # One batch of plain metric tuples, as the writer hands it to the capture log.
    context = ScopeContext("run", "run:p.r", "r", "p", "run:p.r", run_ref="run:p.r")
    items = [
        metric_item(1_700_000_000_000_000_000 + step, tuple(context), "v", value, None, step, "step", None)
        for step, value in enumerate(values)
    ]
    numbering = Numbering("ab12cd34-", 41, 1_700_000_000_500_000_000, "2023-11-14T22:13:20.500000Z")
    lines = [orjson.loads(line) for line in record_lines(items, numbering, "local-jsonl").splitlines()]
    expected = [
        orjson.loads(
            orjson.dumps(entry_to_line(materialize_metric(item, position, numbering), "local-jsonl"))
        )
        for position, item in enumerate(items)
    ]
    assert lines == expected
    written = [line["payload"]["payload"]["value"] for line in lines]
    assert [TOKENS[value] if type(value) is str else value for value in written] == pytest.approx(
        values, nan_ok=True
    )


def test_a_batch_built_from_entries_encodes_like_the_writer(tmp_path: Path) -> None:
    memory = InMemorySink()
    log = LocalJsonlSink(tmp_path / "capture")
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}, sinks=[memory, log])
    with ctx.run("r") as run, run.stage("s") as stage:
        stage.metrics({"loss": 0.5, "accuracy": 1}, step=3)
        stage.event("note", message="between metrics")
        stage.metric("lr", 0.001, unit="1/step")
    ctx.close()
    rebuilt = CaptureBatch(memory.entries).encoded("RECORD", "local-jsonl")
    written = log.file_path_for("RECORD").read_bytes()
    assert [orjson.loads(line) for line in rebuilt.splitlines()] == [
        orjson.loads(line) for line in written.splitlines()
    ]


def test_log_lines_rebuild_into_validated_models(tmp_path: Path) -> None:
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"})
    with ctx.run("r") as run, run.stage("train") as stage:
        stage.metric("loss", 0.25, unit='"quoted" µs', step=7, tags={"fold": 1})
    sink = next(sink for sink in ctx.sinks if isinstance(sink, LocalJsonlSink))
    ctx.close()
    line = next(
        line
        for line in read_capture_log(sink.file_path_for("RECORD")).lines
        if line["payload_type"] == "MetricRecord"
    )
    assert line["payload"]["payload"] == {
        "metric_key": "loss",
        "value": 0.25,
        "value_type": "float64",
        "aggregation_scope": "step",
        "subject_ref": "stage:p.r.train",
        "unit": '"quoted" µs',
        "step": 7,
        "tags": {"fold": 1},
    }
    assert line["payload"]["envelope"]["stage_execution_ref"] == "stage:p.r.train"


def test_integers_beyond_64_bits_are_refused_at_the_call(tmp_path: Path) -> None:
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"})
    try:
        with ctx.run("r") as run:
            with pytest.raises(ValidationError) as raised:
                run.metric("count", 2**64)
            assert raised.value.code == "metric_value_invalid"
            run.metric("count", 2**63 - 1)
    finally:
        report = ctx.close()
    assert report.ok


_contexts = [
    ScopeContext("run", "run:p.r", "r", "p", "run:p.r", run_ref="run:p.r"),
    ScopeContext("stage", "stage:p.r.s", "s", "p", "run:p.r", run_ref="run:p.r", stage_ref="stage:p.r.s"),
]
piece_metrics = st.tuples(
    st.sampled_from(range(len(_contexts))),
    st.sampled_from(["loss", "acc"]),
    st.one_of(st.floats(), st.integers(-5, 5)),
    st.sampled_from([None, "s"]),  # unit
    st.one_of(st.none(), st.integers(0, 1000)),  # step
    st.sampled_from([None, {"split": "val"}]),  # tags
)


@settings(max_examples=300, deadline=None)
@given(metrics=st.lists(piece_metrics, min_size=1, max_size=40), piece=st.integers(1, 9))
def test_a_batch_taken_in_pieces_gives_the_lines_of_the_whole_batch(
    metrics: list[tuple[Any, ...]], piece: int
) -> None:
    # The capture log's lane splits a batch in pieces, making way between them (issue 16): runs of
    # one series, NaN values, missing steps and tagged metrics across a piece's edges come out as the
    # whole batch's lines, in order.
    from contexta.capture._log import _metric_lines

    items = [
        metric_item(
            1_700_000_000_000_000_000 + position,
            tuple(_contexts[context]),
            key,
            value,
            unit,
            step,
            "step",
            tags,
        )
        for position, (context, key, value, unit, step, tags) in enumerate(metrics)
    ]
    numbering = Numbering("ab12cd34-", 7, 1_700_000_000_500_000_000, "2023-11-14T22:13:20.500000Z")
    whole = record_lines(items, numbering, "local-jsonl")
    pauses: list[int] = []
    original = _metric_lines._PIECE
    _metric_lines._PIECE = piece
    try:
        segments = _metric_lines.record_segments(items, numbering, "local-jsonl", lambda: pauses.append(1))
    finally:
        _metric_lines._PIECE = original
    assert assemble(segments) == whole
    assert len(pauses) == max(0, -(-len(items) // piece) - 1)
