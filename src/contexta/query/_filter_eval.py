"""What a run filter and a sort mean, over columns of field values (one value per run).

Rules, chosen so that no filter can fail on the data it meets:

- A comparison with a missing value (a run without that metric, param or tag, an open run's duration)
  is false, whatever the operator, `!=` included; `not` negates the result, so `not metrics.f1 > 0.5`
  holds for runs without f1 too. A field alone (`tags.team`) holds when the run has a value for it.
- Numbers compare as numbers, text as text (by code point, case-sensitive), instants as instants.
  A number against text compares as numbers when the text is a number (tag "3" = 3), and is false
  otherwise. NaN compares false with everything. `~` holds when the field's value is text containing
  the value's text.
- Params and tags: true/false compare as the words `true` / `false`; a list or mapping as its JSON.
- Sorting puts numbers, then text, then instants, each in the order asked; runs without a value (or
  with NaN) go last in both directions, in their listing order.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from contexta.contract import parse_timestamp
from contexta.errors import ContextaError
from contexta.query._filter_parse import AllOf, Comparison, FilterNode, Negation, SortKey
from contexta.query._run_fields import RunField

__all__ = ["comparable", "comparable_column", "compare", "matching_rows", "sorted_rows"]

Comparable = float | int | str | datetime | None


def _number_of(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number


def comparable(field: RunField, raw: Any) -> Comparable:
    """A stored value as the filter compares it (see the module docstring); None when missing."""
    if raw is None:
        return None
    if field.kind == "started_at":
        try:
            return parse_timestamp(raw)
        except ContextaError:
            return None
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float | str):
        return raw
    return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS).decode()


_ORDERED: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compare(value: Comparable, op: str, literal: float | int | str | datetime) -> bool:
    """One comparison, by the rules above."""
    if value is None:
        return False
    kind, literal_kind = type(value), type(literal)
    if op == "~":
        return kind is str and str(literal) in value  # type: ignore[operator]  # value is a str here
    if kind in _NUMBERS and literal_kind in _NUMBERS:  # the common case first
        return value == value and _ORDERED[op](value, literal)  # noqa: PLR0124  # NaN is never equal
    if kind is str and literal_kind is str:
        return _ORDERED[op](value, literal)
    if isinstance(value, datetime) or isinstance(literal, datetime):
        return isinstance(value, datetime) and isinstance(literal, datetime) and _ORDERED[op](value, literal)
    left = _number_of(value) if isinstance(value, str) else value
    right = _number_of(literal) if isinstance(literal, str) else literal
    if left is None or right is None or math.isnan(left) or math.isnan(right):
        return False
    return _ORDERED[op](left, right)


_NUMBERS = (int, float)
_AS_STORED = frozenset(("name", "status", "run_id", "project", "duration", "metric"))


def comparable_column(field: RunField, raw: Sequence[Any]) -> Sequence[Comparable]:
    """A column of stored values as the filter compares them: as they are for the fields whose values
    are already numbers or text, converted one by one for params, tags and instants."""
    if field.kind in _AS_STORED:
        return raw
    return [comparable(field, value) for value in raw]


Columns = Mapping[RunField, Sequence[Comparable]]


def _holds(node: FilterNode, columns: Columns) -> list[bool]:
    """The filter's answer for every row, a column at a time: one tight loop per comparison instead
    of a walk down the tree per run (a third of the time over 10,000 runs)."""
    if isinstance(node, Comparison):
        column = columns[node.field]
        if node.operator is None:
            return [value is not None for value in column]
        op, literal = node.operator, node.value
        assert literal is not None  # an operator always comes with its value
        return [value is not None and compare(value, op, literal) for value in column]
    if isinstance(node, Negation):
        return [not holds for holds in _holds(node.operand, columns)]
    answers = [_holds(operand, columns) for operand in node.operands]
    combine = all if isinstance(node, AllOf) else any
    return [combine(row) for row in zip(*answers, strict=True)]


def matching_rows(node: FilterNode, columns: Columns, count: int) -> list[int]:
    """The rows (0..count-1) the filter holds for, in order; `columns` has every field it reads."""
    if count == 0:
        return []
    return [row for row, holds in enumerate(_holds(node, columns)) if holds]


def _group(value: Comparable) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 3
    if isinstance(value, str):
        return 1
    return 2 if isinstance(value, datetime) else 0


def sorted_rows(rows: list[int], keys: Sequence[SortKey], columns: Columns) -> list[int]:
    """`rows` ordered by `keys` (the first decides, later ones break ties; ties keep `rows`' order)."""
    ordered = list(rows)
    for key in reversed(keys):  # stable passes, least significant first
        column = columns[key.field]
        groups: list[list[int]] = [[], [], [], []]
        for row in ordered:
            groups[_group(column[row])].append(row)
        value: Callable[[int], Any] = column.__getitem__
        for present in groups[:3]:
            present.sort(key=value, reverse=key.descending)
        ordered = [row for group in groups for row in group]
    return ordered
