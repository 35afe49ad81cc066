"""How the facts of runs read in report cells and sentences, wherever several reports say the same
thing: a duration, a run's issues counted, a column label per run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from contexta.contract import parse_timestamp
from contexta.errors import ContextaError
from contexta.query import DiagnosticIssue, RunRecord

__all__ = ["duration_s", "ending_text", "issue_counts", "mapping_text", "number_text", "run_labels"]


def number_text(value: float | int) -> str:
    """A float to six significant digits, an int as it is."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def mapping_text(mapping: Mapping[str, Any] | None) -> str | None:
    """`key=value, key=value`, or None when there is nothing to show."""
    if not mapping:
        return None
    return ", ".join(f"{key}={value}" for key, value in mapping.items())


def duration_s(started_at: str | None, ended_at: str | None) -> float | None:
    """Seconds from start to end; None while unfinished (or when a time does not read)."""
    if started_at is None or ended_at is None:
        return None
    try:
        return (parse_timestamp(ended_at) - parse_timestamp(started_at)).total_seconds()
    except ContextaError:
        return None


def ending_text(end_reason: str | None, failure: Mapping[str, Any] | None) -> str | None:
    """Why a scope ended when it did not simply complete: the reason and the exception, if any."""
    parts = [end_reason] if end_reason else []
    if failure:
        parts.append(f"{failure.get('type')}: {failure.get('message')}")
    return "; ".join(parts) or None


def issue_counts(issues: Iterable[DiagnosticIssue]) -> str:
    """`2 errors, 1 warning`, most severe first; `none` for a clean run."""
    counts: dict[str, int] = {}
    for issue in issues:
        counts[issue.severity] = counts.get(issue.severity, 0) + 1
    parts = [
        f"{counts[severity]} {severity}{'' if counts[severity] == 1 else 's'}"
        for severity in ("error", "warning", "info")
        if severity in counts
    ]
    return ", ".join(parts) or "none"


def run_labels(runs: Iterable[RunRecord]) -> list[str]:
    """Column labels: each run's name, or its full ref when two of the runs share a name."""
    listed = list(runs)
    names = [run.name for run in listed]
    return [run.name if names.count(run.name) == 1 else run.run_id for run in listed]
