"""Values capture calls and the pipeline hand back: results, statistics and flush reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ACCEPTED", "DROPPED", "CaptureResult", "CaptureStats", "FlushReport"]


@dataclass(frozen=True, slots=True)
class CaptureResult:
    """What happened to one capture call: `accepted` (queued) or `dropped` (overflow policy)."""

    status: str
    payload: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


# Metric and event calls return one of these shared values, so the hot path allocates nothing for them.
ACCEPTED = CaptureResult("accepted")
DROPPED = CaptureResult("dropped")


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """Counters of one pipeline since it started (or since the fork that created this process).

    Every counter but `batches` counts records, in one unit: a `metrics({...})` call is one record
    per key, an opening or closing of a scope is one record, and so is each marker the writer adds
    for records it lost. `queued` counts records accepted into the pipeline (still queued, being
    written, or written), `written` records every sink accepted, `failed` records in batches some
    sink refused (parked in the outbox, or `lost` if the outbox could not keep them) and records no
    sink could encode (`lost` too; a degraded marker was written in the place of each), `dropped`
    records refused by the overflow policy, `pending` records still queued. Once a `flush()` has
    returned, `queued == written + failed`. `blocked_calls` counts capture calls that waited for room
    in a full queue (`overflow="block"`) and `blocked_s` how long they waited in all: what a writer
    that falls behind the callers cost them (sync calls; an awaiting async call is not counted).
    """

    queued: int
    written: int
    dropped: int
    failed: int
    batches: int
    pending: int = 0
    outboxed: int = 0
    lost: int = 0
    sink_failures: Mapping[str, int] = field(default_factory=dict)
    blocked_calls: int = 0
    blocked_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["sink_failures"] = dict(self.sink_failures)
        return result


@dataclass(frozen=True, slots=True)
class FlushReport:
    """What a `flush()` or `close()` found: whether everything reached the sinks, and what did not."""

    complete: bool
    stats: CaptureStats
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing was dropped, failed or lost since the previous report."""
        return self.complete and not self.errors
