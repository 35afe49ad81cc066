"""Evaluating alert rules on one run, or on every selected run (the fleet)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from contexta.errors import ValidationError
from contexta.query._aggregations import check_aggregation
from contexta.query._alert_models import AlertReport, AlertResult, AlertRule
from contexta.query._lists import get_run
from contexta.query._metric_names import unrecorded_across_runs
from contexta.query._models import RunRecord
from contexta.query._observe import observe, recorded_anywhere, stage_refs_named
from contexta.query._reading import reading
from contexta.query._run_selection import runs_for
from contexta.store import StoreDatabase

__all__ = ["evaluate_alerts"]


def _checked_rules(rules: Iterable[AlertRule]) -> tuple[AlertRule, ...]:
    if isinstance(rules, str | bytes | AlertRule) or not isinstance(rules, Iterable):
        raise ValidationError(
            "rules must be a list of AlertRule; read a rules file with load_alert_rules(path)",
            code="alert_rules_invalid",
        )
    checked = tuple(rules)
    if not checked:
        raise ValidationError("give at least one alert rule to evaluate", code="alert_rules_invalid")
    names: set[str] = set()
    for rule in checked:
        if not isinstance(rule, AlertRule):
            raise ValidationError(
                f"rules must be AlertRule objects, got {type(rule).__name__}; "
                "read a rules file with load_alert_rules(path)",
                code="alert_rules_invalid",
            )
        if rule.rule_name in names:
            raise ValidationError(
                f"two rules are named {rule.rule_name!r}; give each rule a name of its own",
                code="alert_rule_invalid",
                details={"rule": rule.rule_name, "field": "name"},
            )
        names.add(rule.rule_name)
    return checked


def _evaluate(connection: sqlite3.Connection, run: RunRecord, rule: AlertRule) -> AlertResult:
    assert run.execution_id is not None  # every listed run has one
    stage_refs = None if rule.stage is None else stage_refs_named(connection, run.execution_id, rule.stage)
    aggregation = check_aggregation(rule.aggregation)
    found = observe(connection, run.execution_id, rule.metric, stage_refs, aggregation)
    if found is None:
        return AlertResult(rule, run.run_id, run.name, "no_data", rule.fire_on_no_data, None)
    fired = rule.fires_on(found.value)
    return AlertResult(
        rule,
        run.run_id,
        run.name,
        "fired" if fired else "ok",
        fired,
        found.value,
        found.step,
        found.point_count,
    )


def evaluate_alerts(
    db: StoreDatabase,
    rules: Iterable[AlertRule],
    *,
    run: str | None = None,
    project: str | None = None,
    filter: str | None = None,
) -> AlertReport:
    """Every rule on the run `run` (a ref or a bare name, looked up in `project` first), or, without
    `run`, on every run of `project` (every project when None) that `filter` keeps.

    Each result is `fired`, `ok` or `no_data` (see `AlertRule`). A rule for a metric no run in the store
    recorded (in that stage) raises `NotFoundError(metric_not_found)` naming the closest keys (a
    misspelt rule must not pass a CI job), unless it says `fire_on_no_data`; `AlertReport.any_fired` is what a
    CI job fails on. A run is judged on the value its metric trend shows (`get_metric_trend` with the
    rule's metric, stage and aggregation).
    """
    checked = _checked_rules(rules)
    if run is not None and filter is not None:
        raise ValidationError(
            "give a run or a filter, not both: a filter selects the runs to evaluate when no run is named",
            code="alert_scope_invalid",
        )
    with reading(db) as connection:
        runs = runs_for(db, project, filter) if run is None else [get_run(db, run, project=project)]
        results = [_evaluate(connection, record, rule) for record in runs for rule in checked]
        for index, rule in enumerate(checked):
            judged = results[index :: len(checked)]
            if (
                runs
                and not rule.fire_on_no_data
                and all(result.outcome == "no_data" for result in judged)
                and not recorded_anywhere(connection, rule.metric, rule.stage)
            ):
                error = unrecorded_across_runs(connection, rule.metric, rule.stage, runs)
                raise type(error)(
                    f"alert rule {rule.rule_name!r}: {error.message} (set fire_on_no_data to alert "
                    "on a metric no run has yet)",
                    code=error.code,
                    details=error.details,
                )
    return AlertReport(checked, tuple(record.run_id for record in runs), tuple(results))
