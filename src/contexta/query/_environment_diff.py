"""Comparing the environments two runs executed in: Python, platform, git revision and packages.

`compare_runs` folds environment fields into its list of differences; this answers the narrower
question "why does this run behave differently on that machine", with packages split into added,
removed and changed versions, the way a lock-file diff reads.
"""

from __future__ import annotations

import sqlite3

from contexta.errors import NotFoundError
from contexta.query._fetch import fetch_environment
from contexta.query._lineage_models import EnvironmentComparison, PackageChange
from contexta.query._models import EnvironmentRecord, FieldDifference
from contexta.query._reading import reading
from contexta.query._resolve import find_run
from contexta.store import StoreDatabase

__all__ = ["compare_environments"]

_FIELDS = ("python_version", "platform", "git_revision")


def _environment_of(
    connection: sqlite3.Connection, run: str, project: str | None
) -> tuple[str, EnvironmentRecord]:
    target = find_run(connection, run, project)
    environment = fetch_environment(connection, target.execution_id)
    if environment is None:
        raise NotFoundError(
            f"run {target.run_id!r} has no environment snapshot to compare (it was written without "
            "capture, or captured before environments were recorded)",
            code="environment_not_found",
            details={"run": target.run_id},
        )
    return target.run_id, environment


def _versions(environment: EnvironmentRecord) -> dict[str, str | None]:
    return {
        name: None if version is None else str(version)
        for name, version in (environment.packages or {}).items()
    }


def compare_environments(
    db: StoreDatabase, left: str, right: str, *, project: str | None = None
) -> EnvironmentComparison:
    """How run `right`'s environment differs from run `left`'s (each a full ref, a bare name or
    `name@n`). `NotFoundError(environment_not_found)` when either run has no environment snapshot."""
    with reading(db) as connection:
        left_id, left_environment = _environment_of(connection, left, project)
        right_id, right_environment = _environment_of(connection, right, project)
    differences = tuple(
        FieldDifference(name, getattr(left_environment, name), getattr(right_environment, name))
        for name in _FIELDS
        if getattr(left_environment, name) != getattr(right_environment, name)
    )
    old, new = _versions(left_environment), _versions(right_environment)
    return EnvironmentComparison(
        left_run_id=left_id,
        right_run_id=right_id,
        left=left_environment,
        right=right_environment,
        differences=differences,
        packages_added=tuple(
            PackageChange(name, None, new[name]) for name in sorted(new.keys() - old.keys())
        ),
        packages_removed=tuple(
            PackageChange(name, old[name], None) for name in sorted(old.keys() - new.keys())
        ),
        packages_changed=tuple(
            PackageChange(name, old[name], new[name])
            for name in sorted(old.keys() & new.keys())
            if old[name] != new[name]
        ),
    )
