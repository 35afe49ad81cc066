"""Alert rules over a fleet captured live (see fleet_workspace.py): evaluated on one run or every
run, `no_data` kept apart from `ok`, and rules files read strictly."""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_workspace import GOOD_RUNS, PROJECT, Fleet, capture_fleet

from contexta import Contexta
from contexta.errors import NotFoundError, ValidationError
from contexta.query import AlertRule, alert_rules_from_mapping, evaluate_alerts, load_alert_rules

TRAINED = [name for name, _ in GOOD_RUNS] + ["gd-regressed", "smoke"]
LOSS_ABOVE = AlertRule("loss", ">", 0.5, stage="train", name="train loss above 0.5")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return capture_fleet(tmp_path_factory.mktemp("fleet"))


@pytest.fixture
def ctx(fleet: Fleet) -> Iterator[Contexta]:
    context = Contexta(workspace=fleet.workspace, config={"project_name": PROJECT})
    yield context
    context.close()


def test_a_rule_fires_on_the_runs_whose_value_breaks_it(ctx: Contexta, fleet: Fleet) -> None:
    report = ctx.evaluate_alerts([LOSS_ABOVE], project=PROJECT)
    assert report.run_ids == tuple(f"run:{PROJECT}.{name}" for name in TRAINED)
    assert [result.run_name for result in report.results] == TRAINED
    fired = {result.run_name for result in report.fired}
    assert fired == {name for name in TRAINED if fleet.train_losses[name][-1] > 0.5}
    assert "gd-regressed" in fired and "gd-5" not in fired
    regressed = report.results[TRAINED.index("gd-regressed")]
    assert (regressed.outcome, regressed.fired) == ("fired", True)
    assert regressed.observed == fleet.train_losses["gd-regressed"][-1]
    assert regressed.step == 80 and regressed.rule_name == "train loss above 0.5"
    assert report.any_fired
    assert report.outcome_counts == {"fired": len(fired), "ok": len(TRAINED) - len(fired), "no_data": 0}


def test_one_run_is_evaluated_alone(ctx: Contexta, fleet: Fleet) -> None:
    report = ctx.evaluate_alerts([LOSS_ABOVE], run="gd-5")
    (result,) = report.results
    assert (result.run_id, result.outcome, result.fired) == (f"run:{PROJECT}.gd-5", "ok", False)
    assert result.observed == fleet.train_losses["gd-5"][-1]
    assert not report.any_fired
    with pytest.raises(NotFoundError):
        ctx.evaluate_alerts([LOSS_ABOVE], run="no-such-run")


def test_a_run_without_the_metric_is_no_data_not_ok(ctx: Contexta) -> None:
    quiet = AlertRule("mse", ">", 1.0, stage="evaluate", name="quiet")
    loud = AlertRule("mse", ">", 1.0, stage="evaluate", name="loud", fire_on_no_data=True)
    report = ctx.evaluate_alerts([quiet, loud], run="smoke")
    assert [(r.rule_name, r.outcome, r.fired, r.observed) for r in report.results] == [
        ("quiet", "no_data", False, None),
        ("loud", "no_data", True, None),
    ]
    assert report.any_fired and report.no_data == report.results
    assert report.outcome_counts == {"fired": 0, "ok": 0, "no_data": 2}


@pytest.mark.parametrize("op", [">", ">=", "<", "<=", "==", "!="])
def test_every_operator_compares_observed_with_threshold(ctx: Contexta, fleet: Fleet, op: str) -> None:
    observed = fleet.holdout_loss["gd-3"]
    compare = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
    compare |= {"==": operator.eq, "!=": operator.ne}
    for threshold in (observed, observed + 1, observed - 1):
        rule = AlertRule("mse", op, threshold, stage="evaluate")
        (result,) = ctx.evaluate_alerts([rule], run="gd-3").results
        assert result.fired is compare[op](observed, threshold), (op, threshold)
        assert result.outcome == ("fired" if result.fired else "ok")


def test_a_rule_aggregates_as_the_trend_does(ctx: Contexta) -> None:
    rule = AlertRule("loss", ">=", 1.0, stage="train", aggregation="p95")
    trend = ctx.get_metric_trend("loss", stage="train", project=PROJECT, aggregation="p95")
    report = ctx.evaluate_alerts([rule], project=PROJECT)
    assert [result.observed for result in report.results] == trend.values
    assert [result.fired for result in report.results] == [value >= 1.0 for value in trend.values]
    assert rule.rule_name == "p95(loss in train) >= 1"


def test_a_nan_observation_fires_whatever_the_operator(tmp_path: Path) -> None:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "nan"}) as ctx:
        with ctx.run("diverged") as run, run.stage("train") as stage:
            stage.metric("loss", math.nan, step=1)
        rules = [AlertRule("loss", op, 1.0, name=op) for op in ("<", ">", "==")]
        report = ctx.evaluate_alerts(rules)
        assert [result.fired for result in report.results] == [True, True, True]
        assert all(math.isnan(result.observed or 0.0) for result in report.results)


def test_evaluate_alerts_refuses_what_is_not_a_list_of_rules(ctx: Contexta) -> None:
    db = ctx._reads()
    for rules, code in (
        ([], "alert_rules_invalid"),
        ("rules.toml", "alert_rules_invalid"),
        ([{"metric": "loss"}], "alert_rules_invalid"),
        ([LOSS_ABOVE, LOSS_ABOVE], "alert_rule_invalid"),
    ):
        with pytest.raises(ValidationError) as caught:
            evaluate_alerts(db, rules)  # type: ignore[arg-type]
        assert caught.value.code == code
    with pytest.raises(ValidationError) as caught:
        evaluate_alerts(db, [LOSS_ABOVE], run="gd-1", filter="metrics.loss > 1")
    assert caught.value.code == "alert_scope_invalid"
    with pytest.raises(ValidationError) as caught:
        evaluate_alerts(db, [LOSS_ABOVE], filter="metrics.loss >> 1")
    assert caught.value.code == "filter_invalid"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"op": "=>"}, "op"),
        ({"threshold": "0.5"}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"threshold": math.inf}, "threshold"),
        ({"metric": ""}, "metric"),
        ({"aggregation": "median"}, "aggregation"),
        ({"stage": ""}, "stage"),
        ({"fire_on_no_data": "yes"}, "fire_on_no_data"),
    ],
)
def test_an_invalid_rule_names_its_field(fields: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"metric": "loss", "op": ">", "threshold": 0.5, "name": "r"} | fields
    with pytest.raises(ValidationError) as caught:
        AlertRule(**arguments)
    assert caught.value.code == "alert_rule_invalid"
    assert caught.value.details["field"] == field
    assert field in caught.value.message


RULES_TOML = """
[[rules]]
name = "train loss regressed"
metric = "loss"
stage = "train"
op = ">"
threshold = 0.5

[[rules]]
metric = "mse"
stage = "evaluate"
aggregation = "max"
op = ">="
threshold = 2
fire_on_no_data = true
"""


def test_a_toml_rules_file_and_its_json_twin_give_the_same_rules(tmp_path: Path) -> None:
    toml_file = tmp_path / "alerts.toml"
    toml_file.write_text(RULES_TOML)
    rules = load_alert_rules(toml_file)
    assert rules == [
        AlertRule("loss", ">", 0.5, stage="train", name="train loss regressed"),
        AlertRule("mse", ">=", 2, stage="evaluate", aggregation="max", fire_on_no_data=True),
    ]
    assert rules[1].rule_name == "max(mse in evaluate) >= 2"
    json_file = tmp_path / "alerts.json"
    json_file.write_text(json.dumps({"rules": [rule.to_dict() for rule in rules]}))
    assert load_alert_rules(json_file) == rules


def _problem(tmp_path: Path, text: str, suffix: str = ".toml") -> ValidationError:
    path = tmp_path / f"alerts{suffix}"
    path.write_text(text)
    with pytest.raises(ValidationError) as caught:
        load_alert_rules(path)
    assert str(path) in caught.value.message
    return caught.value


def _toml(*rules: dict[str, Any], top: str = "") -> str:
    """A rules file holding `rules` (values written as JSON, which TOML reads the same for these)."""
    tables = [
        "[[rules]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in rule.items())
        for rule in rules
    ]
    return top + "\n".join(tables)


GOOD = {"metric": "loss", "op": ">", "threshold": 1}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (_toml({"name": "a", **GOOD, "threshhold": 2}), ("rule 1 ('a')", "'threshhold'", "unknown field")),
        (_toml(GOOD | {"op": "=>"}), ("rule 1", "'op'", "=>")),
        (_toml(GOOD | {"threshold": "high"}), ("rule 1", "'threshold'", "finite number")),
        (_toml({"metric": "loss", "op": ">"}), ("rule 1", "'threshold'", "missing")),
        (_toml(GOOD, GOOD | {"op": "<", "stage": 3}), ("rule 2", "'stage'")),
        ("rules = []\n", ("define at least one rule",)),
        (_toml(GOOD, top="version = 2\n"), ("'version'", "unknown top-level key")),
        (_toml({"name": "x", **GOOD}, {"name": "x", **GOOD}), ("rule 2 ('x')", "also the name of rule 1")),
    ],
)
def test_a_bad_rules_file_names_the_rule_and_field(tmp_path: Path, text: str, words: tuple[str, ...]) -> None:
    error = _problem(tmp_path, text)
    assert error.code == "alert_rule_invalid"
    for word in words:
        assert word in error.message


def test_unreadable_or_missing_rules_files_say_so(tmp_path: Path) -> None:
    assert _problem(tmp_path, "[[rules]\nmetric =").code == "alert_rules_unreadable"
    assert _problem(tmp_path, '{"rules": [', ".json").code == "alert_rules_unreadable"
    assert _problem(tmp_path, "rules: []", ".yaml").code == "alert_rules_format"
    with pytest.raises(NotFoundError) as caught:
        load_alert_rules(tmp_path / "absent.toml")
    assert caught.value.code == "alert_rules_not_found"
    with pytest.raises(ValidationError) as invalid:
        alert_rules_from_mapping([{"metric": "loss", "op": ">", "threshold": 1}])
    assert "rules" in invalid.value.message


def test_a_rules_default_name_keeps_every_digit_of_its_threshold() -> None:
    assert AlertRule("loss", "<", 0.1234567).rule_name == "latest(loss) < 0.1234567"
    assert AlertRule("loss", "<", 1.0).rule_name == "latest(loss) < 1"
    close = [{"metric": "loss", "op": "<", "threshold": value} for value in (0.1234567, 0.1234568)]
    assert len(alert_rules_from_mapping({"rules": close})) == 2  # two names, not one name twice
