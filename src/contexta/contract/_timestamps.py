"""Timestamps: ISO-8601 UTC strings ending in `Z`, compared as instants rather than as text."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from contexta.errors import ValidationError

__all__ = ["format_ns", "instant_key", "normalize_timestamp", "parse_timestamp", "utc_now"]

_second_cache: tuple[int, str] = (-1, "")


def format_ns(epoch_ns: int) -> str:
    """`2026-01-02T03:04:05.123456Z` for a `time.time_ns()` value.

    The writer formats hundreds of thousands of these a second, so the date-and-seconds part is
    cached per second and only the microseconds are formatted each time.
    """
    global _second_cache
    seconds, remainder = divmod(epoch_ns, 1_000_000_000)
    cached_second, prefix = _second_cache
    if seconds != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_cache = (seconds, prefix)
    return f"{prefix}.{remainder // 1000:06d}Z"


def utc_now() -> str:
    """The current instant as a contract timestamp."""
    return format_ns(time.time_ns())


def parse_timestamp(value: str | datetime, field: str = "timestamp") -> datetime:
    """An aware UTC datetime for a contract timestamp; raises `ValidationError` for anything else."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(
                f"{field} is a naive datetime; pass an aware one (datetime.now(timezone.utc))",
                code="timestamp_invalid",
                details={"field": field},
            )
        return value.astimezone(UTC)
    if not isinstance(value, str) or not value.endswith("Z"):
        raise ValidationError(
            f"{field} must be an ISO-8601 UTC timestamp ending in 'Z' (like 2025-01-01T00:00:00Z), "
            f"got {value!r}",
            code="timestamp_invalid",
            details={"field": field},
        )
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        raise ValidationError(
            f"{field} {value!r} is not an ISO-8601 timestamp (like 2025-01-01T00:00:00Z)",
            code="timestamp_invalid",
            details={"field": field},
        ) from None
    return parsed


def normalize_timestamp(value: str | datetime, field: str = "timestamp") -> str:
    """The contract form of a timestamp: strings are kept as written once checked; datetimes are formatted."""
    parsed = parse_timestamp(value, field)
    if isinstance(value, str):
        return value
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def instant_key(value: str | datetime) -> str:
    """A fixed-width form of a contract timestamp whose text order is its instant order
    (`2025-01-01T00:00:00Z` and `2025-01-01T00:00:00.5Z` do not sort as instants as they are written).
    """
    parsed = parse_timestamp(value)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%f")
