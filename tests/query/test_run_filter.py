"""Finding runs: the filter language, sorting and paging of `list_runs`, and `get_runs_table`, over
runs captured live.

Project p holds, oldest first:
  alpha  completed; team nlp, seed 3; lr 0.01 (adam), a.b.c 1, use_amp true; train loss 0.9 0.4 0.6,
         evaluate accuracy 0.91 (on a batch) then 0.93, macro.f1 0.88
  beta   completed; team vision; lr 0.1 (sgd), a.b.c 2, use_amp false; train loss 0.8 0.5,
         evaluate accuracy 0.85, then test accuracy 0.97 (captured last, so the run's accuracy)
  gamma  failed; team nlp; lr "0.001" (text); train loss NaN then 0.7
  delta  completed; no tags, no config, no metrics
Project q holds another alpha (team nlp, evaluate accuracy 0.5).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contexta import Contexta
from contexta.errors import NotFoundError, ValidationError
from contexta.query import (
    RunFilter,
    RunsTable,
    get_runs_table,
    list_runs,
    parse_run_filter,
    parse_sort,
    tag_filter,
)
from contexta.query._filter_parse import AllOf


def _capture(workspace: Path) -> None:
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        with ctx.run(
            "alpha",
            tags={"team": "nlp", "seed": 3},
            config_snapshot={"optimizer": {"lr": 0.01, "name": "adam"}, "a.b": {"c": 1}, "use_amp": True},
        ) as run:
            with run.stage("train") as stage:
                for loss in (0.9, 0.4, 0.6):
                    stage.metric("loss", loss)
            with run.stage("evaluate") as stage:
                with stage.batch("holdout") as batch:
                    batch.metric("accuracy", 0.91)  # a series of its own, captured first
                stage.metric("accuracy", 0.93)
                stage.metric("macro.f1", 0.88)
        with ctx.run(
            "beta",
            tags={"team": "vision"},
            config_snapshot={"optimizer": {"lr": 0.1, "name": "sgd"}, "a.b": {"c": 2}, "use_amp": False},
        ) as run:
            with run.stage("train") as stage:
                for loss in (0.8, 0.5):
                    stage.metric("loss", loss)
            with run.stage("evaluate") as stage:
                stage.metric("accuracy", 0.85)
            with run.stage("test") as stage:
                stage.metric("accuracy", 0.97)
        try:
            with (
                ctx.run("gamma", tags={"team": "nlp"}, config_snapshot={"optimizer": {"lr": "0.001"}}) as run,
                run.stage("train") as stage,
            ):
                stage.metric("loss", math.nan)
                stage.metric("loss", 0.7)
                raise RuntimeError("diverged")
        except RuntimeError:
            pass
        with ctx.run("delta"):
            pass
    with (
        Contexta(workspace=workspace, config={"project_name": "q"}) as ctx,
        ctx.run("alpha", tags={"team": "nlp"}) as run,
        run.stage("evaluate") as stage,
    ):
        stage.metric("accuracy", 0.5)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contexta]:
    workspace = tmp_path_factory.mktemp("search") / "ws"
    _capture(workspace)
    with Contexta(workspace=workspace, config={"project_name": "p"}) as reader:
        yield reader


def _names(ctx: Contexta, expression: str | RunFilter | None = None, **options: Any) -> list[str]:
    return [run.name for run in ctx.list_runs("p", filter=expression, **options)]


# -- the language -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("metrics.accuracy = 0.93", ["alpha"]),
        ("metrics.accuracy != 0.93", ["beta"]),  # runs without accuracy are not "different"
        ("metrics.accuracy < 0.97", ["alpha"]),
        ("metrics.accuracy <= 0.97", ["alpha", "beta"]),
        ("metrics.accuracy > 0.93", ["beta"]),
        ("metrics.accuracy >= 0.93", ["alpha", "beta"]),
        ("metrics.accuracy == 0.93", ["alpha"]),
        ("name ~ amm", ["gamma"]),
        ('params.optimizer.name ~ "da"', ["alpha"]),
        ("metrics.accuracy ~ 9", []),  # contains is for text
    ],
)
def test_each_operator(ctx: Contexta, expression: str, expected: list[str]) -> None:
    assert _names(ctx, expression) == expected


def test_not_binds_tighter_than_and_and_and_than_or(ctx: Contexta) -> None:
    assert _names(ctx, "tags.team = nlp or tags.team = vision and metrics.accuracy > 0.9") == [
        "alpha",
        "beta",
        "gamma",
    ]
    assert _names(ctx, "(tags.team = nlp or tags.team = vision) and metrics.accuracy > 0.9") == [
        "alpha",
        "beta",
    ]
    assert _names(ctx, "not tags.team = nlp and status = completed") == ["beta", "delta"]
    assert _names(ctx, "not (tags.team = nlp and status = completed)") == ["beta", "gamma", "delta"]
    assert _names(ctx, "NOT not name = alpha AND (name = alpha OR name = beta)") == ["alpha"]


def test_the_issue_example(ctx: Contexta) -> None:
    expression = (
        'metrics.accuracy > 0.9 and (params.optimizer.lr <= 0.01 or tags.team = "nlp") and status = completed'
    )
    assert _names(ctx, expression) == ["alpha"]


def test_backquotes_keep_dots_inside_a_segment(ctx: Contexta) -> None:
    assert _names(ctx, "metrics.`macro.f1` > 0.8") == ["alpha"]
    assert _names(ctx, "metrics.macro.f1 > 0.8") == ["alpha"]  # a metric key is the rest of the word
    assert _names(ctx, "params.`a.b`.c = 2") == ["beta"]
    assert _names(ctx, "params.a.b.c = 2") == []  # no param a with b with c


def test_a_metric_is_its_latest_value_in_any_stage_or_in_the_stage_named(ctx: Contexta) -> None:
    assert _names(ctx, "metrics.accuracy > 0.95") == ["beta"]  # test's 0.97 came last
    assert _names(ctx, "metrics.evaluate:accuracy > 0.95") == []
    assert _names(ctx, "metrics.evaluate:accuracy = 0.85") == ["beta"]
    assert _names(ctx, "metrics.evaluate:accuracy = 0.93") == ["alpha"]  # after its batch's 0.91
    assert _names(ctx, "metrics.loss = 0.6") == ["alpha"]
    assert _names(ctx, "metrics.evaluate:loss") == []


def test_min_and_max_are_over_every_point_nan_left_out(ctx: Contexta) -> None:
    assert _names(ctx, "min(metrics.loss) < 0.45") == ["alpha"]
    assert _names(ctx, "max(metrics.train:loss) >= 0.8") == ["alpha", "beta"]
    assert _names(ctx, "min(metrics.loss) = 0.7") == ["gamma"]
    assert _names(ctx, "max(metrics.loss) = 0.7") == ["gamma"]
    assert _names(ctx, "max(metrics.`accuracy`) > 0.96") == ["beta"]
    assert _names(ctx, "min(metrics.evaluate:accuracy) = 0.91") == ["alpha"]  # its batch counts
    assert _names(ctx, "max(metrics.evaluate:accuracy) = 0.93") == ["alpha"]
    assert _names(ctx, "min(metrics.accuracy) < 0.92") == ["alpha", "beta"]


def test_params_compare_by_type_with_numbers_in_text_read_as_numbers(ctx: Contexta) -> None:
    assert _names(ctx, "params.optimizer.lr < 0.05") == ["alpha", "gamma"]  # gamma's lr is "0.001"
    assert _names(ctx, "params.use_amp = true") == ["alpha"]
    assert _names(ctx, "params.use_amp = false") == ["beta"]
    assert _names(ctx, 'params.optimizer = "{\\"lr\\":0.1,\\"name\\":\\"sgd\\"}"') == ["beta"]
    assert _names(ctx, "params.optimizer.name > adam") == ["beta"]  # text by code point


def test_tags_by_value_and_by_presence(ctx: Contexta) -> None:
    assert _names(ctx, "tags.seed = 3") == ["alpha"]
    assert _names(ctx, "tags.seed = '3'") == ["alpha"]
    assert _names(ctx, "tags.team") == ["alpha", "beta", "gamma"]
    assert _names(ctx, "not tags.team") == ["delta"]
    assert [run.run_id for run in ctx.list_runs(filter="tags.team = nlp and name = alpha")] == [
        "run:p.alpha",
        "run:q.alpha",
    ]


def test_text_equalities_beside_a_metric_bound_keep_every_run_whose_value_reads_as_that_text(
    ctx: Contexta,
) -> None:
    """On PostgreSQL these comparisons are narrowed in the server before the filter runs: a number,
    a bool, a mapping or a stage's latest value must still be read by the filter's own rules."""
    bound = "metrics.accuracy > 0.5 and "
    assert _names(ctx, bound + "tags.seed = '3'") == ["alpha"]  # an int against numeric text
    assert _names(ctx, bound + "params.optimizer.lr = '0.10'") == ["beta"]  # not the text stored
    assert _names(ctx, bound + "params.use_amp = 'true'") == ["alpha"]
    assert _names(ctx, bound + 'params.optimizer = "{\\"lr\\":0.1,\\"name\\":\\"sgd\\"}"') == ["beta"]
    assert _names(ctx, bound + "tags.team = 'vision' and params.optimizer.name = sgd") == ["beta"]
    assert _names(ctx, bound + "tags.team = 'Vision'") == []
    table = ctx.get_runs_table(
        "p",
        filter="metrics.loss < 0.65 and tags.team = nlp",
        sort="-metrics.evaluate:accuracy",
        columns="name,metrics.evaluate:accuracy,metrics.loss,metrics.`macro.f1`",
    )
    assert table.rows == [("alpha", 0.93, 0.6, 0.88)]


def test_a_missing_value_makes_every_comparison_false_and_not_negates_that(ctx: Contexta) -> None:
    assert _names(ctx, "metrics.accuracy != 0.5") == ["alpha", "beta"]
    assert _names(ctx, "not metrics.accuracy = 0.5") == ["alpha", "beta", "gamma", "delta"]
    assert _names(ctx, "params.nothing.here < 1 or tags.nothing = x") == []


def test_numbers_against_text_are_false_never_an_error(ctx: Contexta) -> None:
    assert _names(ctx, "name > 3") == []
    assert _names(ctx, "metrics.accuracy = high") == []
    assert _names(ctx, "metrics.accuracy < '1'") == ["alpha", "beta"]  # text that is a number


def test_status_name_time_and_duration(ctx: Contexta) -> None:
    runs = {run.name: run for run in ctx.list_runs("p")}
    beta_start = runs["beta"].started_at

    assert _names(ctx, "status = failed") == ["gamma"]
    assert _names(ctx, "name = 'beta' or name = \"delta\"") == ["beta", "delta"]
    assert _names(ctx, "started_at > 2000-01-01") == ["alpha", "beta", "gamma", "delta"]
    assert _names(ctx, "started_at < 2000-01-01T12:00:00+02:00") == []
    assert _names(ctx, f"started_at >= {beta_start}") == ["beta", "gamma", "delta"]
    assert _names(ctx, f'started_at = "{beta_start}"') == ["beta"]
    assert _names(ctx, "duration >= 0") == ["alpha", "beta", "gamma", "delta"]
    assert _names(ctx, "duration > 3600") == []


def test_an_open_run_has_no_duration(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx:
        with ctx.run("done"):
            pass
        with ctx.run("running"):
            assert _names(ctx, "duration >= 0") == ["done"]
            assert _names(ctx, "not duration >= 0") == ["running"]
            assert _names(ctx, "status = open") == ["running"]


# -- errors point at what to fix ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "column", "marked", "problem"),
    [
        ("acuracy > 0.9", 1, "acuracy", "unknown field 'acuracy'"),
        ("metrics.accuracy > 0.9 and", 27, " ", "expected a field"),
        ("metrics.accuracy >", 19, " ", "expected a value after '>'"),
        ("(name = a", 1, "(", "never closed"),
        ("name = a)", 9, ")", "expected 'and', 'or' or the end"),
        ("name = a b", 10, "b", "expected 'and', 'or' or the end"),
        ('name = "a', 8, '"', 'unclosed "'),
        ("metrics.`macro.f1 > 1", 9, "`", "unclosed `"),
        ("name ! a", 6, "!", "'!' must be followed by '='"),
        ("started_at > yesterday", 14, "yesterday", "ISO date"),
        ("duration > long", 12, "long", "number of seconds"),
        ("status = done", 10, "done", "status is one of"),
        ("min(name) > 1", 5, "name", "takes a metric"),
        ("max(metrics.loss > 1", 18, ">", "expected ')'"),
        ("metrics.:loss > 1", 1, "metrics.:loss", "metrics.STAGE:KEY"),
        ("params.a..b = 1", 1, "params.a..b", "empty segment"),
        ("", 1, " ", "empty filter"),
        ("name = a and or", 14, "or", "expected a field before 'or'"),
    ],
)
def test_a_malformed_filter_points_at_its_fault(
    ctx: Contexta, expression: str, column: int, marked: str, problem: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ctx.list_runs(filter=expression)

    error = caught.value
    assert error.code == "filter_invalid"
    first, shown, caret = error.message.split("\n")
    assert f"at column {column}:" in first and problem in first
    assert error.details["column"] == column
    assert shown == f"  {expression}"
    assert caret.strip() and set(caret.strip()) == {"^"}
    start = caret.index("^") - 2
    assert start == column - 1
    assert (expression + " ")[start : start + len(caret.strip())] == marked


def test_a_malformed_sort_or_column_list_points_at_its_fault(ctx: Contexta) -> None:
    with pytest.raises(ValidationError) as sort_error:
        ctx.list_runs(sort="name, -bogus")
    with pytest.raises(ValidationError) as column_error:
        ctx.get_runs_table(columns="name,,status")

    assert sort_error.value.code == "sort_invalid"
    assert sort_error.value.message.splitlines()[2] == "  " + " " * 7 + "^" * 5
    assert column_error.value.code == "columns_invalid"
    assert "at column 6" in column_error.value.message


def test_sort_and_columns_may_be_lists(ctx: Contexta) -> None:
    assert _names(ctx, sort=["-tags.team", parse_sort("name")[0]]) == ["beta", "alpha", "gamma", "delta"]
    assert ctx.get_runs_table("p", columns=["name", "tags.team"], limit=1).rows == [("delta", None)]
    with pytest.raises(ValidationError) as sort_error:
        ctx.list_runs(sort=[3])  # type: ignore[list-item]
    with pytest.raises(ValidationError) as column_error:
        ctx.get_runs_table(columns=["name", None])  # type: ignore[list-item]
    assert (sort_error.value.code, column_error.value.code) == ("sort_invalid", "columns_invalid")


def test_limit_and_offset_must_be_counts(ctx: Contexta) -> None:
    with pytest.raises(ValidationError) as caught:
        ctx.list_runs(offset=-1)
    assert caught.value.code == "offset_invalid"
    with pytest.raises(ValidationError):
        ctx.list_runs(sort="name", limit=0)


# -- sorting and paging ---------------------------------------------------------------------------


def test_sort_puts_runs_without_the_value_last_in_both_directions(ctx: Contexta) -> None:
    assert _names(ctx, sort="-metrics.accuracy") == ["beta", "alpha", "gamma", "delta"]
    assert _names(ctx, sort="metrics.accuracy") == ["alpha", "beta", "gamma", "delta"]
    assert _names(ctx, sort="min(metrics.loss)") == ["alpha", "beta", "gamma", "delta"]
    assert _names(ctx, sort="-max(metrics.train:loss)") == ["alpha", "beta", "gamma", "delta"]


def test_later_sort_fields_break_ties(ctx: Contexta) -> None:
    assert _names(ctx, sort="tags.team, -name") == ["gamma", "alpha", "beta", "delta"]
    assert _names(ctx, sort="status,name") == ["alpha", "beta", "delta", "gamma"]
    assert _names(ctx, sort="-started_at") == ["delta", "gamma", "beta", "alpha"]


def test_sort_with_limit_and_offset_pages_through_the_sorted_order(ctx: Contexta) -> None:
    assert _names(ctx, sort="-name", limit=2) == ["gamma", "delta"]
    assert _names(ctx, sort="-name", limit=2, offset=2) == ["beta", "alpha"]
    assert _names(ctx, sort="-name", offset=3) == ["alpha"]


def test_without_sort_limit_keeps_the_most_recent_and_offset_skips_the_most_recent(ctx: Contexta) -> None:
    assert _names(ctx, limit=2) == ["gamma", "delta"]
    assert _names(ctx, limit=2, offset=1) == ["beta", "gamma"]
    assert _names(ctx, "tags.team", limit=2) == ["beta", "gamma"]


def test_filter_and_sort_agree_with_status_project_and_all_executions(ctx: Contexta) -> None:
    assert _names(ctx, "tags.team = nlp", status="completed") == ["alpha"]
    assert [run.run_id for run in ctx.list_runs(filter="name = alpha", sort="-metrics.accuracy")] == [
        "run:p.alpha",
        "run:q.alpha",
    ]
    assert _names(ctx, "name = delta", all_executions=True) == ["delta"]


def test_a_parsed_filter_and_sort_can_be_reused_and_combined(ctx: Contexta) -> None:
    nlp = parse_run_filter("tags.team = nlp")
    combined = nlp & tag_filter("seed", "3")

    assert _names(ctx, nlp, sort=parse_sort("-name")) == ["gamma", "alpha"]
    assert _names(ctx, combined) == ["alpha"]
    assert _names(ctx, tag_filter("team")) == ["alpha", "beta", "gamma"]


def test_a_filter_nested_too_deeply_is_a_validation_error_not_a_crash(ctx: Contexta) -> None:
    """Hundreds of parentheses or `not`s (a filter built by a program) are refused with an error
    pointing at the nesting, never a RecursionError; filters joined with `&` any number of times
    stay one flat `and`."""
    assert _names(ctx, "(" * 50 + "name = alpha" + ")" * 50) == ["alpha"]
    assert _names(ctx, "not " * 50 + "name = alpha") == ["alpha"]
    for deep in ("(" * 2000 + "name = alpha" + ")" * 2000, "not " * 2000 + "name = alpha"):
        with pytest.raises(ValidationError, match="nested") as raised:
            _names(ctx, deep)
        assert raised.value.code == "filter_invalid"
    combined = parse_run_filter("name ~ a")
    for _ in range(2000):
        combined = combined & parse_run_filter("tags.team")
    assert _names(ctx, combined) == ["alpha", "beta", "gamma"]
    assert isinstance(combined.node, AllOf)
    assert len(combined.node.operands) == 2001


def test_a_long_flat_filter_of_equalities_is_answered(ctx: Contexta) -> None:
    """A thousand `status = ...` / `name = ...` terms joined by `and` (generated by a program) are
    not all handed to SQLite, which refuses an expression that deep (it was a StoreError)."""
    expression = "name ~ a" + " and status = completed" * 1500 + " and name = beta" * 1500
    assert _names(ctx, expression) == ["beta"]
    assert _names(ctx, "name = alpha and name = beta" + " and status = completed" * 1500) == []


# -- runs tables ----------------------------------------------------------------------------------


def test_runs_table_has_the_columns_asked_for_one_row_per_run(ctx: Contexta) -> None:
    table = ctx.get_runs_table(
        "p",
        filter="tags.team",
        sort="-metrics.accuracy",
        columns="name,status,params.optimizer.lr,metrics.accuracy,min(metrics.train:loss),tags.team,"
        "params.use_amp",
    )

    assert isinstance(table, RunsTable)
    assert table.columns == [
        "name",
        "status",
        "params.optimizer.lr",
        "metrics.accuracy",
        "min(metrics.train:loss)",
        "tags.team",
        "params.use_amp",
    ]
    assert table.rows == [
        ("beta", "completed", 0.1, 0.97, 0.5, "vision", False),
        ("alpha", "completed", 0.01, 0.93, 0.4, "nlp", True),
        ("gamma", "failed", "0.001", None, 0.7, "nlp", None),
    ]
    assert table.table_columns() == {
        name: [row[index] for row in table.rows] for index, name in enumerate(table.columns)
    }


def test_runs_table_defaults_and_paging(ctx: Contexta) -> None:
    store = ctx._reads()
    table = get_runs_table(store, "p", sort="name", limit=2, offset=1)
    runs = {run.name: run for run in list_runs(store, "p")}

    assert table.columns == ["run_id", "name", "status", "started_at", "duration"]
    assert [row[:4] for row in table.rows] == [
        ("run:p.beta", "beta", "completed", runs["beta"].started_at),
        ("run:p.delta", "delta", "completed", runs["delta"].started_at),
    ]
    assert all(isinstance(row[4], float) and row[4] >= 0 for row in table.rows)
    empty = get_runs_table(store, "p", filter="name = nobody", columns=["name", "params.`a.b`.c"])
    assert empty.rows == [] and empty.table_columns() == {"name": [], "params.`a.b`.c": []}


# -- random filters against a brute-force reading of the same runs --------------------------------


@dataclass(frozen=True)
class _Run:
    name: str
    values: dict[str, Any]  # a field as written -> the run's value, as a user would read it


_FIELDS = [
    "name",
    "status",
    "started_at",
    "duration",
    "metrics.accuracy",
    "metrics.loss",
    "metrics.evaluate:accuracy",
    "metrics.train:loss",
    "min(metrics.loss)",
    "max(metrics.loss)",
    "max(metrics.accuracy)",
    "min(metrics.evaluate:accuracy)",
    "max(metrics.train:loss)",
    "metrics.`macro.f1`",
    "params.optimizer.lr",
    "params.optimizer.name",
    "params.use_amp",
    "params.`a.b`.c",
    "tags.team",
    "tags.seed",
]
_OPERATORS = ["=", "!=", "<", "<=", ">", ">=", "~"]
_LITERALS = ["0.5", "0.93", "0.01", "3", "-1", "nlp", "'vision'", '"adam"', "completed", "true", "a", "0.001"]
_TIMES = ["2000-01-01", "2100-01-01T00:00:00Z"]
_NUMBER_FIELDS = ("duration",)


def _points(ctx: Contexta, run: str, key: str, stage: str | None = None) -> list[float]:
    try:
        series = ctx.get_metric_series(run, key, stage)
    except NotFoundError:  # the run never recorded the key (there)
        return []
    return [point.value for point in series.points]


def _last(points: list[float]) -> float | None:
    return points[-1] if points else None


def _brute_runs(ctx: Contexta) -> list[_Run]:
    """Every field of every run of p, read through the point-level queries, not the search."""
    runs = []
    for record in ctx.list_runs("p"):
        run_id = record.run_id
        config = record.config_snapshot or {}
        tags = record.tags or {}
        started = datetime.fromisoformat(record.started_at)
        ended = None if record.ended_at is None else datetime.fromisoformat(record.ended_at)
        loss, accuracy = _points(ctx, run_id, "loss"), _points(ctx, run_id, "accuracy")
        stages = {stage.name for stage in ctx.list_stages(run_id)}

        def finite(points: list[float]) -> list[float]:
            return [value for value in points if not math.isnan(value)]

        values = {
            "name": record.name,
            "status": record.status,
            "started_at": started,
            "duration": None if ended is None else (ended - started).total_seconds(),
            "metrics.accuracy": _last(accuracy),
            "metrics.loss": _last(loss),
            "metrics.evaluate:accuracy": _last(_points(ctx, run_id, "accuracy", "evaluate"))
            if "evaluate" in stages
            else None,
            "metrics.train:loss": _last(_points(ctx, run_id, "loss", "train")) if "train" in stages else None,
            "min(metrics.loss)": min(finite(loss), default=None),
            "max(metrics.loss)": max(finite(loss), default=None),
            "max(metrics.accuracy)": max(finite(accuracy), default=None),
            "min(metrics.evaluate:accuracy)": min(
                finite(_points(ctx, run_id, "accuracy", "evaluate")), default=None
            )
            if "evaluate" in stages
            else None,
            "max(metrics.train:loss)": max(finite(_points(ctx, run_id, "loss", "train")), default=None)
            if "train" in stages
            else None,
            "metrics.`macro.f1`": _last(_points(ctx, run_id, "macro.f1")),
            "params.optimizer.lr": config.get("optimizer", {}).get("lr"),
            "params.optimizer.name": config.get("optimizer", {}).get("name"),
            "params.use_amp": config.get("use_amp"),
            "params.`a.b`.c": config.get("a.b", {}).get("c"),
            "tags.team": tags.get("team"),
            "tags.seed": tags.get("seed"),
        }
        runs.append(_Run(record.name, values))
    return runs


def _literal_value(text: str) -> Any:
    if text[0] in "'\"":
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _brute_compare(value: Any, operator: str, literal: Any) -> bool:
    """The documented rules, written out again the plain way."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    if value is None:
        return False
    if operator == "~":
        return isinstance(value, str) and str(literal) in value
    if isinstance(value, datetime) or isinstance(literal, datetime):
        if not (isinstance(value, datetime) and isinstance(literal, datetime)):
            return False
        left, right = value, literal
    elif isinstance(value, str) and isinstance(literal, str):
        left, right = value, literal  # type: ignore[assignment]
    else:
        number_left, number_right = _as_number(value), _as_number(literal)
        if number_left is None or number_right is None or math.isnan(number_left) or math.isnan(number_right):
            return False
        left, right = number_left, number_right  # type: ignore[assignment]
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[operator]


Predicate = Callable[[_Run], bool]


@st.composite
def _comparisons(draw: st.DrawFn) -> tuple[str, int, Predicate]:
    field = draw(st.sampled_from(_FIELDS))
    if draw(st.integers(0, 5)) == 0:
        return field, 4, lambda run: run.values[field] is not None
    operator = draw(st.sampled_from(_OPERATORS))
    if field == "started_at":
        text = draw(st.sampled_from(_TIMES))
        literal: Any = datetime.fromisoformat(text).replace(tzinfo=None).replace(tzinfo=UTC)
        if operator == "~":
            literal = text
    elif field in _NUMBER_FIELDS:
        text = draw(st.sampled_from(["0", "0.5", "3600", "-1"]))
        literal = _literal_value(text)
    elif field == "status":
        text = draw(st.sampled_from(["completed", "failed", "'open'"]))
        literal = _literal_value(text)
    else:
        text = draw(st.sampled_from(_LITERALS))
        literal = _literal_value(text)
    spaces = draw(st.sampled_from(["", " ", "  "]))
    return (
        f"{field}{spaces}{operator}{spaces or ' '}{text}",
        4,
        lambda run: _brute_compare(run.values[field], operator, literal),
    )


def _combine(
    children: st.SearchStrategy[tuple[str, int, Predicate]],
) -> st.SearchStrategy[tuple[str, int, Predicate]]:
    """and / or / not over smaller expressions, written with only the parentheses precedence needs
    (and sometimes more)."""

    def wrap(part: tuple[str, int, Predicate], needed: int, extra: bool) -> str:
        text, level, _ = part
        return f"({text})" if level < needed or extra else text

    def binary(keyword: str, level: int) -> st.SearchStrategy[tuple[str, int, Predicate]]:
        def build(
            left: tuple[str, int, Predicate], right: tuple[str, int, Predicate], extra: bool, upper: bool
        ) -> tuple[str, int, Predicate]:
            word = keyword.upper() if upper else keyword
            text = f"{wrap(left, level, extra)} {word} {wrap(right, level, False)}"
            if keyword == "and":
                return text, level, lambda run: left[2](run) and right[2](run)
            return text, level, lambda run: left[2](run) or right[2](run)

        return st.builds(build, children, children, st.booleans(), st.booleans())

    def negate(part: tuple[str, int, Predicate], extra: bool) -> tuple[str, int, Predicate]:
        return f"not {wrap(part, 3, extra)}", 3, lambda run: not part[2](run)

    return st.one_of(binary("and", 2), binary("or", 1), st.builds(negate, children, st.booleans()))


_EXPRESSIONS = st.recursive(_comparisons(), _combine, max_leaves=6)


@pytest.fixture(scope="module")
def brute(ctx: Contexta) -> list[_Run]:
    return _brute_runs(ctx)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(expression=_EXPRESSIONS)
def test_random_filters_select_what_a_brute_force_reading_selects(
    ctx: Contexta, brute: list[_Run], expression: tuple[str, int, Predicate]
) -> None:
    text, _, predicate = expression

    selected = _names(ctx, text)

    assert selected == [run.name for run in brute if predicate(run)], text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(
        alphabet=st.sampled_from(list("metrics.params.tags:`'\"()=!<>~ andornot0123456789-_minmax")),
        max_size=40,
    )
)
def test_any_text_is_a_filter_or_a_validation_error(ctx: Contexta, text: str) -> None:
    try:
        ctx.list_runs(filter=text)
    except ValidationError as error:
        assert error.code == "filter_invalid"
        assert "^" in error.message.splitlines()[-1]


def _as_schema_three(store: Path) -> None:
    """Take from a store what schemas 4 and 5 added (series extremes, the index by key; the columns
    of run changes), as a store written before them would be."""
    connection = sqlite3.connect(store, isolation_level=None)
    try:
        for column in ("tag_edits", "notes", "archived_at"):
            connection.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        connection.execute("DROP INDEX metric_series_by_key")
        for column in ("min_value", "max_value", "extremes_known"):
            connection.execute(f"ALTER TABLE metric_series DROP COLUMN {column}")
        connection.execute("ALTER TABLE metric_chunks DROP COLUMN summary")  # and schema 6's
        connection.execute("PRAGMA user_version=3")
    finally:
        connection.close()


@pytest.mark.sqlite_only("rewrites the SQLite file as an older schema")
def test_min_and_max_of_series_stored_before_schema_4_are_read_from_their_points(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        for name, losses in (("old", (0.9, math.nan, 0.2, 0.6)), ("other", (0.5, 0.4))):
            with ctx.run(name) as run, run.stage("train") as stage:
                for loss in losses:
                    stage.metric("loss", loss)
    _as_schema_three(workspace / "metadata" / "contexta.db")

    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:  # migrates to schema 5
        with ctx.run("old", resume=True) as run, run.stage("train") as stage:
            stage.metric("loss", 0.95)  # joins a series whose earlier extremes were never recorded

        assert _names(ctx, "min(metrics.loss) = 0.2") == ["old"]
        assert _names(ctx, "max(metrics.train:loss) = 0.95") == ["old"]
        assert _names(ctx, sort="min(metrics.loss)") == ["old", "other"]
        assert ctx.get_runs_table(columns="name,min(metrics.loss),max(metrics.loss)").rows == [
            ("old", 0.2, 0.95),
            ("other", 0.4, 0.5),
        ]


def test_extremes_are_kept_across_the_batches_a_series_is_stored_in(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx:
        with ctx.run("r") as run, run.stage("train") as stage:
            stage.metric("loss", math.nan)
            ctx.flush()  # a batch of NaN only: nothing to order yet
            stage.metric("loss", 0.3)
            stage.metric("loss", 0.1)
            ctx.flush()
            stage.metric("loss", math.inf)
            stage.metric("diverged", math.nan)

        table = ctx.get_runs_table(
            columns="min(metrics.loss),max(metrics.loss),min(metrics.diverged),metrics.loss"
        )

        assert table.rows == [(0.1, math.inf, None, math.inf)]
        assert _names(ctx, "max(metrics.loss) > 1e308 and min(metrics.loss) < 0.2") == ["r"]
        assert _names(ctx, "min(metrics.diverged) or metrics.diverged = 0") == []


def test_params_and_tags_whose_names_sqlite_cannot_quote_are_still_found(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx:
        with ctx.run("quoted", tags={'say "hi"': "yes"}, config_snapshot={"a\\b": {'c"d': 2}}):
            pass
        with ctx.run("plain", config_snapshot={"a": 1}):
            pass

        assert _names(ctx, 'params.`a\\b`.`c"d` = 2') == ["quoted"]
        assert _names(ctx, 'tags.`say "hi"` = yes') == ["quoted"]
        assert ctx.get_runs_table(columns='name,params.`a\\b`.`c"d`').rows == [("quoted", 2), ("plain", None)]
