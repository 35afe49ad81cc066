"""`capture.retention`: which earlier executions `contexta gc` may reclaim.

The default keeps everything: a workspace is a record of experiments, and nothing is deleted unless
someone asked for it. A policy is a set of limits, each enforced on its own (an execution goes when
any limit says so, as journald's size and age limits both apply):

- `age`: executions that ended more than this long ago (`30d`, `12h`, `90m`, `2w`, `45s`);
- `size`: the oldest executions, until the workspace is estimated to be under this many bytes
  (`50GB`, `500MiB`, or a plain number of bytes);
- `executions`: keep the latest N executions of each run name.

Whatever the limits say, gc never reclaims an execution that is open or that some process still
captures, nor the latest execution of a name (what `run:project.name` and `resume=True` mean), nor the
highest-numbered one (the next execution would be given its number, and `name@n` would change meaning).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contexta.errors import ConfigurationError

__all__ = ["RetentionPolicy", "format_bytes", "parse_age", "parse_size", "retention_policy"]

_AGE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_QUANTITY = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")
_KEYS = ("age", "size", "executions")
_KEEP_ALL = ("", "keep", "all", "none", "forever")


def _invalid(key: str, message: str) -> ConfigurationError:
    return ConfigurationError(message, code="config_value_invalid", details={"key": key})


def parse_age(value: object, key: str = "capture.retention.age") -> float:
    """Seconds from `30d`, `12h`, `90m`, `2w`, `45s`, or a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _QUANTITY.fullmatch(value)) is not None:
        unit = match[2].lower()
        if unit not in _AGE_UNITS:
            raise _invalid(key, f"{key} needs a unit: s, m, h, d or w (such as 30d or 12h), got {value!r}")
        seconds = float(match[1]) * _AGE_UNITS[unit]
    else:
        raise _invalid(key, f"{key} must be a duration such as 30d, 12h or 90m, got {value!r}")
    if not seconds > 0:
        raise _invalid(key, f"{key} must be longer than zero, got {value!r}")
    return seconds


def parse_size(value: object, key: str = "capture.retention.size") -> int:
    """Bytes from `50GB` (powers of 1000), `500MiB` (powers of 1024), or a number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _QUANTITY.fullmatch(value)) is not None:
        unit = match[2].lower()
        if unit not in _SIZE_UNITS:
            raise _invalid(
                key, f"{key} takes B, KB, MB, GB, TB, KiB, MiB, GiB or TiB (such as 50GB), got {value!r}"
            )
        size = int(float(match[1]) * _SIZE_UNITS[unit])
    else:
        raise _invalid(key, f"{key} must be a size such as 50GB or 500MiB, got {value!r}")
    if size < 1:
        raise _invalid(key, f"{key} must be at least one byte, got {value!r}")
    return size


def _parse_count(value: object, key: str = "capture.retention.executions") -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if type(value) is not int or value < 1:
        raise _invalid(
            key,
            f"{key} must be a whole number of at least 1 (the latest execution of a name is always "
            f"kept), got {value!r}",
        )
    return value


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Limits `contexta gc` enforces; None is no limit, and no limits (the default) keeps everything."""

    max_age_s: float | None = None
    max_bytes: int | None = None
    keep_executions: int | None = None

    def __post_init__(self) -> None:
        if self.max_age_s is not None:
            object.__setattr__(self, "max_age_s", parse_age(self.max_age_s))
        if self.max_bytes is not None:
            object.__setattr__(self, "max_bytes", parse_size(self.max_bytes))
        if self.keep_executions is not None:
            object.__setattr__(self, "keep_executions", _parse_count(self.keep_executions))

    @property
    def keeps_everything(self) -> bool:
        return self.max_age_s is None and self.max_bytes is None and self.keep_executions is None

    def overridden(
        self,
        *,
        max_age_s: float | None = None,
        max_bytes: int | None = None,
        keep_executions: int | None = None,
    ) -> RetentionPolicy:
        """This policy with the limits given here (not None) in place of its own."""
        return RetentionPolicy(
            self.max_age_s if max_age_s is None else max_age_s,
            self.max_bytes if max_bytes is None else max_bytes,
            self.keep_executions if keep_executions is None else keep_executions,
        )

    def describe(self) -> str:
        """The policy in the form `retention_policy` reads (`keep` when it keeps everything)."""
        parts = []
        if self.max_age_s is not None:
            parts.append(f"age={_format_age(self.max_age_s)}")
        if self.max_bytes is not None:
            parts.append(f"size={self.max_bytes}")
        if self.keep_executions is not None:
            parts.append(f"executions={self.keep_executions}")
        return ",".join(parts) or "keep"


def _format_age(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def retention_policy(value: object, key: str = "capture.retention") -> RetentionPolicy:
    """A policy from a RetentionPolicy, a mapping (`{"age": "30d", "size": "50GB", "executions": 5}`),
    a string (`"age=30d,size=50GB,executions=5"`, or `keep` for no limits), or None (no limits)."""
    if value is None:
        return RetentionPolicy()
    if isinstance(value, RetentionPolicy):
        return value
    if isinstance(value, str):
        if value.strip().lower() in _KEEP_ALL:
            return RetentionPolicy()
        items: dict[str, Any] = {}
        for part in value.split(","):
            name, equals, setting = part.partition("=")
            name = name.strip().lower()
            if not equals or not setting.strip():
                raise _invalid(
                    key,
                    f"{key}: expected name=value pairs such as age=30d,size=50GB,executions=5, "
                    f"got {part.strip()!r}",
                )
            if name in items:
                raise _invalid(key, f"{key}: {name} is given twice in {value!r}")
            items[name] = setting.strip()
        value = items
    if not isinstance(value, Mapping):
        raise _invalid(
            key,
            f"{key} must be a string such as 'age=30d,size=50GB,executions=5' or a mapping, got {value!r}",
        )
    unknown = [str(name) for name in value if name not in _KEYS]
    if unknown:
        raise _invalid(
            key, f"{key}: unknown limit {', '.join(unknown)}; the limits are age, size and executions"
        )
    return RetentionPolicy(
        max_age_s=None if value.get("age") is None else parse_age(value["age"], f"{key}.age"),
        max_bytes=None if value.get("size") is None else parse_size(value["size"], f"{key}.size"),
        keep_executions=(
            None
            if value.get("executions") is None
            else _parse_count(value["executions"], f"{key}.executions")
        ),
    )


def format_bytes(size: float) -> str:
    """`1.5 GiB`, `312 KiB`, `17 B`: sizes for people."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(size) >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"
