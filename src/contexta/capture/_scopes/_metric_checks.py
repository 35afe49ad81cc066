"""The rules a metric is checked by before it is queued, each written once.

One function per rule: the key (`checked_key`, which remembers the keys that passed), the value
(`contract._checks.metric_number`), the step (`contract._checks.check_step`), the unit
(`checked_unit`) and the less common options (`checked_metric_options`). `checked_metric` applies
them to one `metric()` call and `checked_pairs` to the pairs of a `metrics()` call. Every path
calls these:

- `Scope.metric`, the Python method, behind one inline guard that lets the common call (a key
  seen before, a finite float, no step or a valid one, no other option) skip the call;
- the compiled call (capture/_scopes/_metric_call.c), which takes only that same common call and
  hands every other, unchanged, to `Scope.metric`;
- the async facade, through the scope's `metric_item` (`checked_metric`, unguarded);
- `metrics()` in both facades, through the scope's `metrics_item`: `check_step`, `checked_unit`,
  and `checked_pairs` behind one guard that lets a mapping of known keys to finite floats skip it;
- the compiled `metrics()` call (the same C file), which takes only a plain dict of known str keys
  to finite floats or 64-bit ints, with a valid step or none and no unit, and hands every other
  call, unchanged, to `Scope.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from contexta.contract._checks import (
    check_choice,
    check_metric_key,
    check_step,
    metric_number,
    plain_text,
    short_repr,
)
from contexta.contract._records import AGGREGATION_SCOPES
from contexta.errors import ValidationError

if TYPE_CHECKING:
    from contexta.capture._scopes._session import CaptureSession

__all__ = [
    "KNOWN_KEYS",
    "checked_key",
    "checked_metric",
    "checked_metric_options",
    "checked_pairs",
    "checked_unit",
]

_MAX_REMEMBERED_KEYS = 16_384
# Keys (metric and event keys) that passed `check_metric_key`: a key in here needs no check again.
# Shared by every scope of the process, and read directly by the compiled call.
KNOWN_KEYS: set[str] = set()


def checked_key(key: str) -> str:
    """`key`, checked (`check_metric_key`) and remembered in `KNOWN_KEYS`."""
    check_metric_key(key)
    if len(KNOWN_KEYS) < _MAX_REMEMBERED_KEYS:
        KNOWN_KEYS.add(key)
    return key


def checked_unit(unit: Any) -> str:
    """The unit as stored: a non-empty string (unpaired surrogates replaced, see `plain_text`)."""
    if type(unit) is not str or not unit:
        raise ValidationError(
            f"unit must be a non-empty string, got {short_repr(unit)}", code="metric_unit_invalid"
        )
    return unit if unit.isascii() else plain_text(unit)


def checked_metric_options(
    session: CaptureSession, unit: Any, aggregation_scope: Any, tags: Mapping[str, Any] | None
) -> tuple[str | None, dict[str, Any] | None]:
    """The less common metric options, checked (tags copied as JSON-safe attributes)."""
    if unit is not None:
        unit = checked_unit(unit)
    if aggregation_scope != "step":
        check_choice(aggregation_scope, AGGREGATION_SCOPES, "aggregation_scope")
    return unit, None if tags is None else session.attributes(tags, "tags")


def checked_metric(
    session: CaptureSession,
    key: str,
    value: Any,
    unit: Any,
    step: Any,
    aggregation_scope: Any,
    tags: Mapping[str, Any] | None,
) -> tuple[float | int, str | None, dict[str, Any] | None]:
    """One `metric()` call's arguments checked by every rule: its value, unit and tags as they are
    queued, or `ValidationError` for the first rule it breaks (in this order: key, value, step,
    options). Each rule is skipped where a cheap test shows it holds."""
    if key not in KNOWN_KEYS:
        checked_key(key)
    if type(value) is not float or value - value != 0.0:
        value = metric_number(value, key, allow_non_finite=session.record_non_finite)
    if step is not None and (type(step) is not int or not 0 <= step < 2**63):
        check_step(step)
    if unit is not None or aggregation_scope != "step" or tags is not None:
        unit, tags = checked_metric_options(session, unit, aggregation_scope, tags)
    return value, unit, tags


def checked_pairs(
    values: Any, allow_non_finite: bool
) -> tuple[tuple[tuple[str, float | int], ...], ValidationError | None]:
    """The valid (key, value) pairs of a `metrics()` mapping, each checked (and each value converted),
    and the error naming the pairs refused, or None.

    A bad pair never costs the good ones: they are recorded, then the call raises (see `Scope.metrics`).
    """
    if not isinstance(values, Mapping) or not values:
        raise ValidationError(
            "metrics() takes a non-empty mapping of metric key to value", code="metrics_invalid"
        )
    pairs = []
    refused: list[tuple[Any, ValidationError]] = []
    for key, value in values.items():
        try:
            if key not in KNOWN_KEYS:
                checked_key(key)
            if type(value) is not float or value - value != 0.0:
                value = metric_number(value, key, allow_non_finite=allow_non_finite)
        except ValidationError as error:
            refused.append((key, error))
            continue
        pairs.append((key, value))
    return tuple(pairs), None if not refused else _refusal(refused, [key for key, _ in pairs])


_NAMED_REFUSALS = 5  # refused keys named in the message; the details list all of them


def _refusal(refused: list[tuple[Any, ValidationError]], recorded: list[str]) -> ValidationError:
    """The error a `metrics()` call raises after recording its valid pairs: which keys were refused
    and why, and whether the others were recorded. One bad pair alone raises its own error, the
    same `metric()` would."""
    if len(refused) == 1 and not recorded:
        return refused[0][1]
    names = ", ".join(short_repr(key) for key, _ in refused[:_NAMED_REFUSALS])
    if len(refused) > _NAMED_REFUSALS:
        names += f" and {len(refused) - _NAMED_REFUSALS} more"
    outcome = f"the other {len(recorded)} were recorded" if recorded else "nothing of this call was recorded"
    return ValidationError(
        f"metrics() refused {len(refused)} of {len(refused) + len(recorded)} keys ({names}); {outcome}. "
        f"First refusal: {refused[0][1].message}",
        code="metrics_partly_invalid" if recorded else "metrics_invalid",
        details={
            "refused": [
                {
                    "key": key if isinstance(key, str) else short_repr(key),
                    "code": error.code,
                    "message": error.message,
                }
                for key, error in refused
            ],
            "recorded": recorded,
        },
    )
