"""Which runs a trend or an alert evaluation looks at: the one place they are chosen.

Every question across runs (`get_*_trend`, `evaluate_alerts` over the fleet) asks `runs_for`, so a
selection rule (a project, a filter expression) means the same thing in all of them.
"""

from __future__ import annotations

from contexta.query._lists import list_runs
from contexta.query._models import RunRecord
from contexta.query._resolve import resolve_project
from contexta.store import StoreDatabase

__all__ = ["runs_for"]


def runs_for(db: StoreDatabase, project: str | None, filter: str | None) -> list[RunRecord]:
    """The latest execution of every run (of `project`, when given: `NotFoundError` when it does not
    exist), oldest first by start, kept when the filter expression `filter` holds for it (see
    `list_runs`; a malformed one raises `ValidationError(filter_invalid)` pointing at the fault)."""
    project_ref = None if project is None else resolve_project(db, project)
    return list_runs(db, project_ref, filter=filter)
