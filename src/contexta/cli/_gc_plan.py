"""Which executions a retention policy reclaims, and why each of the others is kept.

Protections come first and no limit overrides them: an open execution, one a process still holds
(its owner lock), the latest of its name (what `run:p.name` and `resume=True` mean) and the
highest-numbered of its name (the next execution would get its number: `name@n` would change
meaning). Then each limit is applied on its own: age (ended longer ago than the limit), executions
(beyond the latest N of a name), and last size (the oldest remaining ones, until the workspace is
estimated to be under the limit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from contexta._retention import RetentionPolicy, format_bytes
from contexta.contract import parse_timestamp
from contexta.store import ExecutionSummary

__all__ = ["Decision", "plan_reclaim", "protection"]


@dataclass(frozen=True, slots=True)
class Decision:
    execution: ExecutionSummary
    reclaim: bool
    reason: str


def protection(execution: ExecutionSummary) -> str | None:
    """Why `execution` may not be reclaimed whatever the policy says, or None."""
    if execution.live:
        return "live: a process holds its owner lock"
    if execution.open:
        return "open (never closed; a Contexta opened on the workspace closes it if its process is gone)"
    if execution.latest:
        return "latest execution of its name"
    if execution.highest_number:
        return "highest-numbered execution of its name (its number would be given again)"
    return None


def plan_reclaim(
    executions: list[ExecutionSummary],
    policy: RetentionPolicy,
    now: datetime,
    *,
    total_bytes: int = 0,
    size_of: Callable[[str], float] | None = None,
) -> list[Decision]:
    """A decision for every execution, oldest first. `size_of` (an execution's reclaimable bytes,
    estimated) and `total_bytes` are needed by the size limit only."""
    reasons: dict[str, str] = {}
    if policy.max_age_s is not None:
        for execution in executions:
            if execution.ended_at is not None:
                age = (now - parse_timestamp(execution.ended_at)).total_seconds()
                if age > policy.max_age_s:
                    reasons[execution.execution_id] = (
                        f"ended {_days(age)} ago (limit {_days(policy.max_age_s)})"
                    )
    if policy.keep_executions is not None:
        by_name: dict[str, list[ExecutionSummary]] = {}
        for execution in executions:  # oldest first: the newest are last
            by_name.setdefault(execution.run_ref, []).append(execution)
        for group in by_name.values():
            for execution in group[: max(len(group) - policy.keep_executions, 0)]:
                reasons.setdefault(
                    execution.execution_id, f"beyond the latest {policy.keep_executions} of its name"
                )
    eligible = {e.execution_id for e in executions if protection(e) is None}
    if policy.max_bytes is not None and size_of is not None:
        remaining = total_bytes - sum(size_of(e) for e in reasons if e in eligible)
        for execution in executions:
            if remaining <= policy.max_bytes:
                break
            if execution.execution_id in eligible and execution.execution_id not in reasons:
                reasons[execution.execution_id] = (
                    f"oldest while the workspace is over {format_bytes(policy.max_bytes)}"
                )
                remaining -= size_of(execution.execution_id)
    decisions = []
    for execution in executions:
        protected = protection(execution)
        if protected is not None:
            decisions.append(Decision(execution, False, protected))
        elif execution.execution_id in reasons:
            decisions.append(Decision(execution, True, reasons[execution.execution_id]))
        else:
            kept = "the policy keeps everything" if policy.keeps_everything else "within the policy's limits"
            decisions.append(Decision(execution, False, kept))
    return decisions


def _days(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds:.0f} seconds"
