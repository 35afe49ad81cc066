"""How stored values read in a terminal cell: instants, durations, numbers, sizes, mappings."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from contexta.contract import parse_timestamp
from contexta.errors import ContextaError

__all__ = [
    "NOTHING",
    "clock",
    "digest",
    "duration",
    "end_moment",
    "instant",
    "mapping",
    "moment",
    "number",
    "seconds",
    "signed",
    "size",
    "value",
]

NOTHING = "-"


def instant(timestamp: str | None) -> datetime | None:
    """The aware UTC datetime of a stored timestamp, or None when it is missing or unreadable."""
    if timestamp is None:
        return None
    try:
        return parse_timestamp(timestamp)
    except ContextaError:
        return None


def moment(timestamp: str | None) -> str:
    """`2025-01-01 12:00:00` (UTC, to the second), the text itself when it does not parse."""
    parsed = instant(timestamp)
    if parsed is None:
        return NOTHING if timestamp is None else timestamp
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def end_moment(started_at: str | None, ended_at: str | None) -> str:
    """When something ended: only the time of day when it ended on the day it started (short enough
    for a start and an end to share an 80-column row), else the full `moment`."""
    start, end = instant(started_at), instant(ended_at)
    if start is not None and end is not None and start.date() == end.date():
        return end.strftime("%H:%M:%S")
    return moment(ended_at)


def clock(timestamp: str | None) -> str:
    """`12:00:00.123` (UTC time of day, to the millisecond), for lines that stream by."""
    parsed = instant(timestamp)
    if parsed is None:
        return NOTHING if timestamp is None else timestamp
    return parsed.strftime("%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}"


def duration(started_at: str | None, ended_at: str | None) -> str:
    """`0.25s`, `12.5s`, `4m 05s`, `2h 03m` or `3d 04h`; `-` while unfinished."""
    start, end = instant(started_at), instant(ended_at)
    if start is None or end is None:
        return NOTHING
    return seconds((end - start).total_seconds())


def seconds(length_s: float | int | None) -> str:
    """A length of time given in seconds, as `duration` writes it; `-` for none."""
    if length_s is None:
        return NOTHING
    if length_s < 10:
        return f"{length_s:.2f}s"
    if length_s < 60:
        return f"{length_s:.1f}s"
    whole = int(length_s)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


def number(amount: float | int | None) -> str:
    """An int as it is, a float to six significant digits (`nan`, `inf`, `-inf` as such), `-` for
    nothing."""
    if amount is None:
        return NOTHING
    if isinstance(amount, float):
        return f"{amount:.6g}"
    return str(amount)


def signed(amount: float | int | None) -> str:
    """A difference, always with its sign (`+0.02`, `-3`); `nan` has none (NaN minus anything)."""
    if amount is None:
        return NOTHING
    if isinstance(amount, float):
        return "nan" if math.isnan(amount) else f"{amount:+.6g}"
    return f"{amount:+d}"


def size(size_bytes: int | None) -> str:
    """`512 B`, `1.5 KiB`, `3.2 MiB`, ..."""
    if size_bytes is None:
        return NOTHING
    amount = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{size_bytes} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def digest(hash_value: str | None) -> str:
    """The first 12 hex digits of a digest: enough to tell two files apart at a glance."""
    return NOTHING if hash_value is None else hash_value[:12]


def value(item: Any) -> str:
    """Any stored value as short text: strings as they are, numbers shortened, the rest as JSON."""
    if item is None:
        return NOTHING
    if isinstance(item, str):
        return item
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int | float):
        return number(item)
    return orjson.dumps(item, default=str).decode()


def mapping(items: Mapping[str, Any] | None) -> str:
    """`key=value, key=value`, or `-` when empty."""
    if not items:
        return NOTHING
    return ", ".join(f"{key}={value(item)}" for key, item in items.items())
