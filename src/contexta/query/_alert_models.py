"""Alert rules and what evaluating them found: a rule is a condition on one run's value of a metric
(the value a metric trend shows for that run), and it *fires* when the condition holds.

Three outcomes are kept apart on purpose: `fired`, `ok`, and `no_data` (the run has no point of the
metric there). A rule over a metric a run never recorded has proven nothing, so it is never reported
as ok; whether it fires is the rule's choice (`fire_on_no_data`, default False), and its outcome
stays `no_data` either way. A NaN observation fires every rule: a value that compares with nothing
cannot show the run is fine.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contexta.errors import ValidationError
from contexta.query._aggregations import AGGREGATIONS
from contexta.query._frames import Tabular
from contexta.query._models import ReadModel

__all__ = ["ALERT_OPERATORS", "ALERT_OUTCOMES", "AlertReport", "AlertResult", "AlertRule"]

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
ALERT_OPERATORS: tuple[str, ...] = tuple(_COMPARISONS)
ALERT_OUTCOMES = ("fired", "ok", "no_data")


def _invalid(rule: str, field: str, problem: str) -> ValidationError:
    return ValidationError(
        f"alert rule {rule}: {field} {problem}",
        code="alert_rule_invalid",
        details={"rule": rule, "field": field, "problem": problem},
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class AlertRule(ReadModel):
    """Fire when a run's `aggregation` of `metric` (in the stage named `stage`, else the whole run)
    compares to `threshold` by `op` (one of > >= < <= == !=): `AlertRule("loss", ">", 0.5,
    stage="train")` fires for a run whose latest train loss is above 0.5.

    `name` (default: the condition written out) names the rule in results and must be unique among
    the rules evaluated together; `fire_on_no_data` makes a run without the metric fire too.
    Invalid fields raise `ValidationError(alert_rule_invalid)` naming the rule and the field.
    """

    metric: str
    op: str
    threshold: float | int
    stage: str | None = None
    aggregation: str = "latest"
    name: str | None = None
    fire_on_no_data: bool = False

    def __post_init__(self) -> None:
        label = repr(self.name) if isinstance(self.name, str) and self.name else f"on {self.metric!r}"
        if not isinstance(self.metric, str) or not self.metric:
            raise _invalid(label, "metric", f"must be a metric key (a non-empty string), got {self.metric!r}")
        if not isinstance(self.op, str) or self.op not in _COMPARISONS:
            raise _invalid(label, "op", f"must be one of {' '.join(ALERT_OPERATORS)}, got {self.op!r}")
        if not _is_number(self.threshold) or not math.isfinite(self.threshold):
            raise _invalid(label, "threshold", f"must be a finite number, got {self.threshold!r}")
        if self.stage is not None and (not isinstance(self.stage, str) or not self.stage):
            raise _invalid(label, "stage", f"must be a stage's name (a non-empty string), got {self.stage!r}")
        if not isinstance(self.aggregation, str) or self.aggregation not in AGGREGATIONS:
            raise _invalid(
                label, "aggregation", f"must be one of {', '.join(AGGREGATIONS)}, got {self.aggregation!r}"
            )
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise _invalid(label, "name", f"must be a non-empty string, got {self.name!r}")
        if not isinstance(self.fire_on_no_data, bool):
            raise _invalid(label, "fire_on_no_data", f"must be true or false, got {self.fire_on_no_data!r}")
        if self.name is None:
            object.__setattr__(self, "name", self.condition)

    @property
    def rule_name(self) -> str:
        """The rule's name (given, or its condition written out)."""
        return self.name or self.condition

    @property
    def condition(self) -> str:
        """The condition as text: `latest(loss in train) > 0.5`."""
        where = "" if self.stage is None else f" in {self.stage}"
        short = f"{self.threshold:g}"
        threshold = short if float(short) == self.threshold else repr(self.threshold)  # every digit
        return f"{self.aggregation}({self.metric}{where}) {self.op} {threshold}"

    def fires_on(self, observed: float | int) -> bool:
        """Whether an observed value makes the rule fire (NaN always does)."""
        if math.isnan(observed):
            return True
        return _COMPARISONS[self.op](observed, self.threshold)


@dataclass(frozen=True, slots=True)
class AlertResult(ReadModel):
    """One rule evaluated on one run: the value observed (None for `no_data`), the step of the point
    it is (see `MetricTrendPoint`), the outcome (`fired`, `ok`, `no_data`) and whether it fired
    (`no_data` fires only for a rule with `fire_on_no_data`)."""

    rule: AlertRule
    run_id: str
    run_name: str
    outcome: str
    fired: bool
    observed: float | int | None
    step: int | None = None
    point_count: int = 0

    @property
    def rule_name(self) -> str:
        return self.rule.rule_name


@dataclass(frozen=True, slots=True)
class AlertReport(ReadModel, Tabular):
    """Every rule evaluated on every selected run: results by run (oldest first), then rule order."""

    rules: tuple[AlertRule, ...]
    run_ids: tuple[str, ...]
    results: tuple[AlertResult, ...]

    @property
    def any_fired(self) -> bool:
        """True when some rule fired on some run (what a CI job fails on)."""
        return any(result.fired for result in self.results)

    @property
    def fired(self) -> tuple[AlertResult, ...]:
        return tuple(result for result in self.results if result.fired)

    @property
    def no_data(self) -> tuple[AlertResult, ...]:
        return tuple(result for result in self.results if result.outcome == "no_data")

    @property
    def outcome_counts(self) -> dict[str, int]:
        """outcome -> how many results have it (every outcome present, zeros included)."""
        counts = Counter(result.outcome for result in self.results)
        return {outcome: counts.get(outcome, 0) for outcome in ALERT_OUTCOMES}

    def table_columns(self) -> dict[str, list[Any]]:
        """Column name -> values, one row per result, in the order the columns read."""
        results = self.results
        return {
            "rule": [result.rule_name for result in results],
            "run_id": [result.run_id for result in results],
            "run_name": [result.run_name for result in results],
            "metric": [result.rule.metric for result in results],
            "stage": [result.rule.stage for result in results],
            "aggregation": [result.rule.aggregation for result in results],
            "op": [result.rule.op for result in results],
            "threshold": [result.rule.threshold for result in results],
            "observed": [result.observed for result in results],
            "step": [result.step for result in results],
            "outcome": [result.outcome for result in results],
            "fired": [result.fired for result in results],
        }
