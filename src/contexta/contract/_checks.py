"""Field checks shared by the contract models and the capture calls, so one rule has one home."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from contexta.contract._refs import ParsedRef, is_component, parse_ref
from contexta.contract._timestamps import normalize_timestamp, parse_timestamp
from contexta.errors import ValidationError

STATUSES = ("open", "completed", "failed", "cancelled")
TERMINAL_STATUSES = frozenset(("completed", "failed", "cancelled"))
METRIC_KEY_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
MAX_METRIC_KEY_LENGTH = 200
MAX_ATTRIBUTE_DEPTH = 32
MAX_SHOWN_CHARACTERS = 60  # of a refused value quoted in an error message
# Ints stored as JSON numbers: the range of SQLite integers and of metric values. Beyond it an
# attribute int is stored as its decimal digits (`json_attributes`), which every reader keeps whole.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def short_repr(value: Any, limit: int = MAX_SHOWN_CHARACTERS) -> str:
    """`repr(value)` cut to `limit` characters: error messages quote what they refuse, never all of it."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def describe_value(value: Any) -> str:
    """A bounded description of a refused value: an array by its type and shape, a collection by its
    length, anything else by a short repr and its type (a million-element array is never printed)."""
    kind = type(value)
    module = kind.__module__.partition(".")[0]
    name = kind.__name__ if module == "builtins" else f"{module}.{kind.__qualname__}"
    shape = getattr(value, "shape", None)
    if shape is not None and not callable(shape):
        try:
            dimensions = tuple(int(size) for size in shape)
        except (TypeError, ValueError):
            dimensions = None
        if dimensions:  # a 0-d array that got here is shown as its value
            return f"a {name} of shape {dimensions}"
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return f"a {name} of {len(value)} items"
    return f"value {short_repr(value)} (a {name})"


def plain_text(text: str) -> str:
    """`text` as a plain `str` that UTF-8 can encode: each unpaired surrogate becomes U+FFFD.

    A lone surrogate is half of a UTF-16 pair, not a character: `json.loads` returns one for a JSON
    string cut inside an escaped emoji (an LLM answer truncated at a token limit), and no UTF-8 file,
    SQLite text or terminal can hold it. It is replaced by U+FFFD, the character Unicode reserves for
    text that could not be decoded (the one lossy step: which half-character it was is not kept);
    two halves that make a pair become the character they encode. Every other character is kept, so
    text without surrogates is returned as it is (a `str` subclass, such as a `StrEnum` member, as
    its plain value).
    """
    if not text.isascii() and _SURROGATE.search(text) is not None:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text if type(text) is str else str.__str__(text)


def check_ref(value: Any, kind: str, field: str) -> ParsedRef:
    try:
        return parse_ref(value, kind)
    except ValidationError as error:
        raise ValidationError(
            f"{field}: {error.message}", code=error.code, details={"field": field}
        ) from None


def check_optional_ref(value: Any, kind: str, field: str) -> ParsedRef | None:
    return None if value is None else check_ref(value, kind, field)


def check_child_ref(child: ParsedRef, parent: ParsedRef, child_field: str, parent_field: str) -> None:
    if not child.extends(parent):
        raise ValidationError(
            f"{child_field} {child.ref!r} does not belong to {parent_field} {parent.ref!r}",
            code="ref_parent_mismatch",
            details={"field": child_field},
        )


def check_component(value: Any, field: str) -> None:
    if not isinstance(value, str) or not is_component(value):
        raise ValidationError(
            f"{field} must be a normalised name (lower-case letters and digits joined by '-', no '.'), "
            f"got {short_repr(value)}",
            code="name_invalid",
            details={"field": field},
        )


def check_text(value: Any, field: str, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValidationError(
            f"{field} must be a string, got {type(value).__name__}",
            code="field_invalid",
            details={"field": field},
        )


def check_choice(value: Any, choices: tuple[str, ...] | frozenset[str], field: str) -> None:
    if value not in choices:
        raise ValidationError(
            f"{field} must be one of {', '.join(sorted(choices))}; got {short_repr(value)}",
            code=f"{field}_invalid",
            details={"field": field},
        )


def check_timestamp(value: Any, field: str) -> str:
    return normalize_timestamp(value, field)


def check_optional_timestamp(value: Any, field: str) -> str | None:
    return None if value is None else normalize_timestamp(value, field)


def check_lifecycle(status: Any, started_at: str, ended_at: str | None) -> None:
    """Status and end time agree, and the end is not before the start (compared as instants)."""
    check_choice(status, STATUSES, "status")
    if status == "open":
        if ended_at is not None:
            raise ValidationError(
                "an open subject cannot have ended_at; close it with a terminal status",
                code="lifecycle_invalid",
            )
        return
    if ended_at is None:
        raise ValidationError(f"status {status!r} needs ended_at", code="lifecycle_invalid")
    if parse_timestamp(ended_at, "ended_at") < parse_timestamp(started_at, "started_at"):
        raise ValidationError(
            f"ended_at {ended_at} is before started_at {started_at}", code="lifecycle_invalid"
        )


def check_step(step: Any) -> None:
    """Steps are stored as SQLite integers and written as JSON numbers: 0 up to 2**63 - 1."""
    if step is not None and (type(step) is not int or not 0 <= step < 2**63):
        raise ValidationError(
            f"step must be an int from 0 to 2**63 - 1, got {short_repr(step)}", code="metric_step_invalid"
        )


def check_order_index(value: Any) -> None:
    if value is not None and (type(value) is not int or value < 0):
        raise ValidationError(
            f"order_index must be a non-negative int, got {short_repr(value)}",
            code="field_invalid",
            details={"field": "order_index"},
        )


def check_metric_key(key: Any) -> str:
    if not isinstance(key, str) or len(key) > MAX_METRIC_KEY_LENGTH or not METRIC_KEY_PATTERN.fullmatch(key):
        raise ValidationError(
            f"metric key {short_repr(key)} is not valid: use letters, digits, '_', '.', '/' or '-' "
            f"(not first), at most {MAX_METRIC_KEY_LENGTH} characters, "
            "e.g. 'val_loss', 'train/loss', 'macro.f1'",
            code="metric_key_invalid",
            details={"key": key if isinstance(key, str) else short_repr(key)},
        )
    return key


def metric_number(value: Any, key: str, *, allow_non_finite: bool = False) -> int | float:
    """The plain Python number for a metric value, or `ValidationError` saying why it is refused.

    NumPy scalars and 0-d tensors arrive through `.item()`; bools are refused because `True` logged
    as a metric is almost always a mistake for `1.0`. NaN and infinities are numbers a diverging job
    really produced: kept with `allow_non_finite` (capture's default, and every contract model),
    refused otherwise (`capture.non_finite = "raise"`).
    """
    kind = type(value)
    if kind is float:
        if allow_non_finite or math.isfinite(value):
            return float(value)
        raise ValidationError(
            f"metric {key!r} has value {value!r}, which is not finite, and capture.non_finite is 'raise'; "
            "fix the computation, or set capture.non_finite = 'record' to record NaN and infinities",
            code="metric_value_invalid",
            details={"key": key},
        )
    if kind is int:
        if -(2**63) <= value < 2**63:
            return int(value)
        raise ValidationError(
            f"metric {key!r} has an int of {value.bit_length()} bits, outside the 64-bit range; "
            "log it as a float",
            code="metric_value_invalid",
            details={"key": key},
        )
    if kind is not bool and not isinstance(value, (str, bytes)):
        item = getattr(value, "item", None)
        if callable(item) and getattr(value, "ndim", 0) == 0:
            try:
                converted = item()
            except (TypeError, ValueError, RuntimeError):
                converted = None
            if type(converted) in (int, float) and kind.__name__ != "bool_":
                return metric_number(converted, key, allow_non_finite=allow_non_finite)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value) if isinstance(value, float) else int(value)
            return metric_number(number, key, allow_non_finite=allow_non_finite)
    if kind is bool or kind.__name__ in ("bool", "bool_"):  # NumPy 2 names its bool scalar "bool"
        advice = "log 1.0 or 0.0 if a number is meant"
    else:
        advice = "log one number per key (NumPy scalars and 0-d tensors are converted, e.g. `loss.item()`)"
    raise ValidationError(
        f"metric {key!r} has {describe_value(value)}; metric values are single ints or floats: {advice}",
        code="metric_value_invalid",
        details={"key": key},
    )


def json_attributes(value: Any, field: str = "attributes") -> dict[str, Any] | None:
    """A detached, JSON-ready copy of an attribute mapping, or `ValidationError` naming the bad path.

    What JSON or UTF-8 cannot carry as given is stored in a documented form rather than breaking the
    writer later: text with lone surrogates as `plain_text` gives it, an int beyond the 64-bit range
    as a string of its decimal digits (`numpy.random.SeedSequence().entropy` keeps every digit), a
    `str` or `int` subclass (enum members among them) as its plain value, keys included.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{field} must be a mapping, got {type(value).__name__}",
            code="attributes_invalid",
            details={"field": field},
        )
    converted = _json_value(value, field, 0)
    assert isinstance(converted, dict)
    return converted


def _json_value(value: Any, path: str, depth: int) -> Any:
    if depth > MAX_ATTRIBUTE_DEPTH:
        raise ValidationError(
            f"{path} is nested deeper than {MAX_ATTRIBUTE_DEPTH} levels (or refers to itself)",
            code="attributes_invalid",
            details={"path": path},
        )
    kind = type(value)
    if kind is str:
        return value if value.isascii() else plain_text(value)
    if value is None or kind is bool:
        return value
    if kind is int:
        return value if INT64_MIN <= value <= INT64_MAX else _int_digits(value, path)
    if kind is float:
        if math.isfinite(value):
            return value
        raise ValidationError(
            f"{path} is {value!r}; attribute numbers must be finite",
            code="attributes_invalid",
            details={"path": path},
        )
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        converted = False  # once a key was converted, two keys may have become one text
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                key = _json_key(key, path)
                converted = True
            if converted and key in result:
                raise ValidationError(
                    f"{path} has two keys that are the same text {short_repr(key)} once converted "
                    "(an enum member's value, unpaired surrogates replaced); make them distinct",
                    code="attributes_invalid",
                    details={"path": path},
                )
            result[key] = _json_value(item, f"{path}.{key}", depth + 1)
        return result
    if isinstance(value, (list, tuple)):
        return [_json_value(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)]
    if isinstance(value, datetime):
        return normalize_timestamp(value, path)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return _json_value(item(), path, depth)
    # Subclasses such as enum.StrEnum, IntEnum or numpy.float64: their plain value, never the
    # subclass's own str() (a `(str, Enum)` member's is "Color.RED").
    if isinstance(value, str):
        return _json_value(str.__str__(value), path, depth)
    if isinstance(value, float):
        return _json_value(float.__float__(value), path, depth)
    if isinstance(value, int):
        return _json_value(int.__int__(value), path, depth)
    raise ValidationError(
        f"{path} is a {kind.__name__}, which is not JSON; use strings, numbers, booleans, lists or mappings",
        code="attributes_invalid",
        details={"path": path},
    )


def _json_key(key: Any, path: str) -> str:
    """An attribute key as plain text: a `str` subclass (a `StrEnum` member) is its value; a key
    that is not text at all is refused (JSON keys are strings, and `1` and `"1"` must not merge)."""
    if not isinstance(key, str):
        raise ValidationError(
            f"{path} has the key {short_repr(key)} (a {type(key).__name__}); attribute keys must be "
            "strings: convert it, e.g. str(key)",
            code="attributes_invalid",
            details={"path": path},
        )
    return plain_text(key)


def _int_digits(value: int, path: str) -> str:
    """An int beyond the 64-bit range as its decimal digits (JSON readers, orjson among them, would
    turn it into a float or refuse it); refused only when Python will not print it."""
    try:
        return str(value)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        raise ValidationError(
            f"{path} is an int of {value.bit_length()} bits, too large to store even as text; "
            "store a hash or a string of it",
            code="attributes_invalid",
            details={"path": path},
        ) from None
