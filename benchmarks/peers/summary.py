"""From the repeats of each tool to one row: the median of every measure, and what went wrong.

A row keeps every repeat's raw result too (they go into peers.json), so a median can always be
checked against the numbers it came from.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from launch import Outcome
from tools import Tool


@dataclass(slots=True)
class ToolRecord:
    """Everything measured for one tool in this run: its environment and each repeat's outcome."""

    tool: Tool
    versions: dict[str, str] = field(default_factory=dict)
    install_failure: str | None = None
    sync: list[Outcome] = field(default_factory=list)
    asynchronous: list[Outcome] = field(default_factory=list)
    service: list[Outcome] = field(default_factory=list)


def _median(results: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for result in results:
        value: Any = result
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values) if values else None


def _counts(results: list[dict[str, Any]]) -> list[int]:
    return [int(result["read_back"]) for result in results]


def _failures(outcomes: list[Outcome], mode: str) -> list[str]:
    return [f"{mode} repeat {index + 1}: {o.error}" for index, o in enumerate(outcomes) if o.error]


def summarise(record: ToolRecord) -> dict[str, Any]:
    """One table row: medians over the repeats that succeeded, plus status and failures."""
    tool = record.tool
    sync = [o.result for o in record.sync if o.result is not None]
    asynchronous = [o.result for o in record.asynchronous if o.result is not None]
    service = [o.result for o in record.service if o.result is not None]
    failures = (
        _failures(record.sync, "sync")
        + _failures(record.asynchronous, "async")
        + _failures(record.service, "service")
    )
    if record.install_failure is not None:
        status = f"did not install: {record.install_failure}"
    elif not sync and not asynchronous and not service:
        status = f"did not run: {failures[0].split(': ', 1)[1]}" if failures else "not run"
    else:
        status = "measured"
    return {
        "name": tool.name,
        "label": tool.label,
        "note": tool.note,
        "status": status,
        "versions": record.versions,
        "failures": failures,
        "calls": sync[0]["calls"] if sync else None,
        "repeats": len(sync),
        "per_call_us": {
            stat: (value / 1000 if (value := _median(sync, "per_call_ns", stat)) is not None else None)
            for stat in ("mean", "p50", "p99")
        },
        "empty_call_p50_us": (v / 1000 if (v := _median(sync, "empty_call_ns", "p50")) is not None else None),
        "durable_s": _median(sync, "durable_s"),
        "calls_s": _median(sync, "calls_s"),
        "records_per_s": _median(sync, "records_per_s"),
        "peak_rss_mib": _median(sync, "peak_rss_mib"),
        "cpu_s": _median(sync, "cpu_s"),
        "read_back": _counts(sync),
        "async_calls": asynchronous[0]["calls"] if asynchronous else None,
        "async_tasks": asynchronous[0]["tasks"] if asynchronous else None,
        "async_repeats": len(asynchronous),
        "async_records_per_s": _median(asynchronous, "records_per_s"),
        "async_worst_lateness_calls_ms": _median(asynchronous, "worst_lateness_calls_ms"),
        "async_worst_lateness_finish_ms": _median(asynchronous, "worst_lateness_finish_ms"),
        "async_p99_lateness_calls_ms": _median(asynchronous, "p99_lateness_calls_ms"),
        "async_read_back": _counts(asynchronous),
        "service_calls": service[0]["calls"] if service else None,
        "service_repeats": len(service),
        "service_p99_lateness_calls_ms": _median(service, "p99_lateness_calls_ms"),
        "service_worst_lateness_calls_ms": _median(service, "worst_lateness_calls_ms"),
        "service_worst_lateness_finish_ms": _median(service, "worst_lateness_finish_ms"),
        "service_read_back": _counts(service),
    }
