"""Alert rules files: TOML (read with the standard library's `tomllib`) or JSON, one table per rule.

    # alerts.toml
    [[rules]]
    name = "train loss regressed"   # optional; default: the condition written out
    metric = "loss"                 # required: the metric key
    stage = "train"                 # optional; default: every stage of the run, and the run itself
    aggregation = "latest"          # optional: latest (default), min, max, mean, p50, p95, count
    op = ">"                        # required: > >= < <= == !=
    threshold = 0.5                 # required: a finite number
    fire_on_no_data = false         # optional: a run without the metric fires too (default false)

JSON holds the same: `{"rules": [{"metric": "loss", "op": ">", "threshold": 0.5}]}`. Reading is
strict, because a misspelt key silently ignored is an alert that never fires: an unknown key, a
missing field, a bad operator or a threshold that is not a number raises `ValidationError` naming the
file, the rule (its position, and its name when it has one) and the field.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contexta.errors import NotFoundError, ValidationError
from contexta.query._alert_models import AlertRule

__all__ = ["RULE_FIELDS", "alert_rules_from_mapping", "load_alert_rules"]

RULE_FIELDS = ("name", "metric", "stage", "aggregation", "op", "threshold", "fire_on_no_data")
_REQUIRED = ("metric", "op", "threshold")


def load_alert_rules(path: str | os.PathLike[str]) -> list[AlertRule]:
    """The rules of a `.toml` or `.json` rules file, in the order written (see the module's doc)."""
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ValidationError(
            f"{source}: an alert rules file is TOML or JSON; name it *.toml or *.json",
            code="alert_rules_format",
            details={"path": str(source)},
        )
    try:
        text = source.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise NotFoundError(
            f"no alert rules file at {source}", code="alert_rules_not_found", details={"path": str(source)}
        ) from None
    except UnicodeDecodeError as error:
        raise _unreadable(source, f"it is not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise _unreadable(source, str(error)) from None
    return alert_rules_from_mapping(data, source=str(source))


def _unreadable(source: Path, reason: str) -> ValidationError:
    return ValidationError(
        f"{source}: the alert rules file does not parse: {reason}",
        code="alert_rules_unreadable",
        details={"path": str(source)},
    )


def _error(source: str, where: str, field: str | None, problem: str) -> ValidationError:
    subject = where if field is None else f"{where}, field {field!r}"
    return ValidationError(
        f"{source}: {subject}: {problem}",
        code="alert_rule_invalid",
        details={"source": source, "rule": where, "field": field},
    )


def alert_rules_from_mapping(data: object, *, source: str = "alert rules") -> list[AlertRule]:
    """The rules of parsed rules-file content (`{"rules": [{...}, ...]}`), checked as strictly as a
    file is; `source` names it in error messages."""
    if not isinstance(data, Mapping):
        raise _error(source, "the file", None, 'it must be a table holding "rules" (a list of rules)')
    extra = sorted(str(key) for key in data if key != "rules")
    if extra:
        raise _error(source, "the file", extra[0], 'unknown top-level key; only "rules" is allowed')
    entries = data.get("rules")
    if not isinstance(entries, list) or not entries:
        raise _error(
            source, "the file", "rules", "define at least one rule ([[rules]] in TOML, a list in JSON)"
        )
    rules: list[AlertRule] = []
    seen: dict[str, str] = {}
    for number, entry in enumerate(entries, start=1):
        rule = _rule(source, number, entry)
        where = _where(number, entry)
        if rule.rule_name in seen:
            raise _error(
                source, where, "name", f"{rule.rule_name!r} is also the name of {seen[rule.rule_name]}"
            )
        seen[rule.rule_name] = where
        rules.append(rule)
    return rules


def _where(number: int, entry: object) -> str:
    name = entry.get("name") if isinstance(entry, Mapping) else None
    return f"rule {number}" + (f" ({name!r})" if isinstance(name, str) and name else "")


def _rule(source: str, number: int, entry: object) -> AlertRule:
    where = _where(number, entry)
    if not isinstance(entry, Mapping):
        raise _error(source, where, None, f"a rule is a table of fields, got {type(entry).__name__}")
    for key in entry:
        if key not in RULE_FIELDS:
            raise _error(source, where, str(key), f"unknown field; the fields are {', '.join(RULE_FIELDS)}")
    for key in _REQUIRED:
        if key not in entry:
            raise _error(source, where, key, "missing; every rule needs metric, op and threshold")
    fields: dict[str, Any] = dict(entry)
    try:
        return AlertRule(**fields)
    except ValidationError as error:
        field = error.details.get("field")
        problem = error.details.get("problem", error.message)
        raise _error(source, where, field, str(problem)) from None
