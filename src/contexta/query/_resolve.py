"""Turning what a person types (a full ref or a bare name) into the full ref a query needs.

A bare name is normalised the way capture normalises names (`"Linear SVM"` finds `run:p.linear-svm`).
A name that fits several subjects is refused with the candidates, never guessed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from contexta.contract._refs import ParsedRef, normalize_name, parse_ref, project_ref
from contexta.errors import ConflictError, NotFoundError, ValidationError
from contexta.store._database import StoreDatabase

__all__ = [
    "find_batch_ref",
    "find_project_ref",
    "find_run_ref",
    "find_stage_ref",
    "project_filter_ref",
    "resolve_batch",
    "resolve_project",
    "resolve_run",
    "resolve_stage",
]

_SHOWN_CANDIDATES = 10


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"{what} must be a non-empty string (a full ref or a bare name), got {value!r}",
            code="id_invalid",
            details={"what": what},
        )
    return value.strip()


def _bare_name(text: str, what: str) -> str | None:
    """The ref component a bare name stands for, or None when it cannot name anything."""
    try:
        return normalize_name(text, what)
    except ValidationError:
        return None


def _listing(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:_SHOWN_CANDIDATES])
    return shown if len(names) <= _SHOWN_CANDIDATES else f"{shown}, … ({len(names)} in all)"


# -- projects --------------------------------------------------------------------------------------


def project_filter_ref(project: str) -> str:
    """The project ref a list filter means (a name or `project:x`); existence is not required."""
    text = _text(project, "project")
    if text.startswith("project:"):
        return parse_ref(text, "project").ref
    return project_ref(text)


def find_project_ref(connection: sqlite3.Connection, project: str) -> str:
    ref = project_filter_ref(project)
    # A project exists once it is put, or once a run or deployment names it.
    for table in ("projects", "runs", "deployments"):
        if connection.execute(f"SELECT 1 FROM {table} WHERE project_ref = ? LIMIT 1", (ref,)).fetchone():
            return ref
    known = [row[0] for row in connection.execute("SELECT name FROM projects ORDER BY name")]
    raise NotFoundError(
        f"no project {project!r} in this store (known projects: {_listing(known)}); "
        "list them with `contexta runs` or ctx.list_projects()",
        code="project_not_found",
        details={"project": project},
    )


def resolve_project(db: StoreDatabase, project: str) -> str:
    """The full ref (`project:x`) of a project given by name or ref; `NotFoundError` when unknown."""
    with db.read() as connection:
        return find_project_ref(connection, project)


# -- runs ------------------------------------------------------------------------------------------


def find_run_ref(connection: sqlite3.Connection, run_id: str, project: str | None = None) -> str:
    text = _text(run_id, "run id")
    if ":" in text:
        ref = parse_ref(text, "run").ref
        if connection.execute("SELECT 1 FROM runs WHERE run_ref = ?", (ref,)).fetchone():
            return ref
        raise _run_not_found(text)
    name = _bare_name(text, "run name")
    if name is None:
        raise _run_not_found(text)
    # Run refs have one dot: `run:project.name`.
    candidates: list[str] = [
        row[0]
        for row in connection.execute(
            "SELECT run_ref FROM runs WHERE substr(run_ref, instr(run_ref, '.') + 1) = ? ORDER BY run_ref",
            (name,),
        )
    ]
    if project is not None:
        preferred = f"run:{project_filter_ref(project).partition(':')[2]}.{name}"
        if preferred in candidates:
            return preferred
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise _run_not_found(text)
    raise ConflictError(
        f"run name {text!r} matches runs in several projects ({_listing(candidates)}); pass the full ref",
        code="run_ambiguous",
        details={"run": text, "candidates": candidates},
    )


def check_run_ids(run_ids: Iterable[str]) -> None:
    """Refuse one string where a collection of run ids belongs (it would be read letter by letter)."""
    if isinstance(run_ids, str):
        raise ValidationError(
            "run_ids must be a collection of run ids, not one string; wrap it in a list",
            code="run_ids_invalid",
        )


def find_run_refs(
    connection: sqlite3.Connection, run_ids: Iterable[str], project: str | None, *, needed_for: str | None
) -> list[str]:
    """The refs of `run_ids` in the order given, duplicates dropped; with `needed_for`, an empty
    collection is refused (`give at least one run <needed_for>`)."""
    run_refs = list(dict.fromkeys(find_run_ref(connection, run_id, project) for run_id in run_ids))
    if not run_refs and needed_for is not None:
        raise ValidationError(f"give at least one run {needed_for}", code="run_ids_empty")
    return run_refs


def _run_not_found(run_id: str) -> NotFoundError:
    return NotFoundError(
        f"no run {run_id!r} in this store; list runs with `contexta runs` or ctx.list_runs()",
        code="run_not_found",
        details={"run": run_id},
    )


def resolve_run(db: StoreDatabase, run_id: str, project: str | None = None) -> str:
    """The full run ref for `run:p.r` or a bare run name.

    A bare name is looked up in `project` first, then in every project; `NotFoundError(run_not_found)`
    when nothing matches, `ConflictError(run_ambiguous)` when several projects have such a run.
    """
    with db.read() as connection:
        return find_run_ref(connection, run_id, project)


# -- stages and batches ----------------------------------------------------------------------------


def _check_child(child: ParsedRef, parent_ref: str, what: str, parent_what: str) -> None:
    if not child.extends(parse_ref(parent_ref)):
        raise NotFoundError(
            f"{what} {child.ref!r} is not part of {parent_what} {parent_ref!r}",
            code=f"{what}_not_found",
            details={what: child.ref, parent_what: parent_ref},
        )


def find_stage_ref(connection: sqlite3.Connection, run_ref: str, stage_id: str) -> str:
    text = _text(stage_id, "stage id")
    stages = [
        row[0]
        for row in connection.execute(
            "SELECT stage_ref FROM stages WHERE run_ref = ? ORDER BY order_index, rowid", (run_ref,)
        )
    ]
    if ":" in text:
        parsed = parse_ref(text, "stage")
        _check_child(parsed, run_ref, "stage", "run")
        ref: str | None = parsed.ref
    else:
        name = _bare_name(text, "stage name")
        ref = None if name is None else f"stage:{run_ref.partition(':')[2]}.{name}"
    if ref in stages:
        assert ref is not None
        return ref
    names = [stage.rpartition(".")[2] for stage in stages]
    raise NotFoundError(
        f"run {run_ref!r} has no stage {stage_id!r} (its stages: {_listing(names)})",
        code="stage_not_found",
        details={"run": run_ref, "stage": stage_id},
    )


def resolve_stage(db: StoreDatabase, run_id: str, stage_id: str, project: str | None = None) -> str:
    """The full stage ref of `stage_id` (a full ref or a bare stage name) within the run `run_id`
    (itself a full ref or a bare run name)."""
    with db.read() as connection:
        return find_stage_ref(connection, find_run_ref(connection, run_id, project), stage_id)


def find_batch_ref(
    connection: sqlite3.Connection, run_ref: str, batch_id: str, stage_ref: str | None = None
) -> str:
    text = _text(batch_id, "batch id")
    owner = stage_ref if stage_ref is not None else run_ref
    if ":" in text:
        parsed = parse_ref(text, "batch")
        _check_child(parsed, owner, "batch", "stage" if stage_ref is not None else "run")
        if connection.execute("SELECT 1 FROM batches WHERE batch_ref = ?", (parsed.ref,)).fetchone():
            return parsed.ref
        candidates: list[str] = []
    else:
        name = _bare_name(text, "batch name")
        sql, parameters = "SELECT batch_ref FROM batches WHERE run_ref = ?", [run_ref]
        if stage_ref is not None:
            sql += " AND stage_ref = ?"
            parameters.append(stage_ref)
        candidates = sorted(
            row[0] for row in connection.execute(sql, parameters) if row[0].rpartition(".")[2] == name
        )
        if len(candidates) == 1:
            return candidates[0]
    if candidates:
        raise ConflictError(
            f"batch name {text!r} matches batches in several stages of {run_ref!r} "
            f"({_listing(candidates)}); pass the stage or the full batch ref",
            code="batch_ambiguous",
            details={"batch": text, "candidates": candidates},
        )
    raise NotFoundError(
        f"{owner!r} has no batch {batch_id!r}; list its batches with ctx.list_batches({run_ref!r})",
        code="batch_not_found",
        details={"batch": batch_id, "owner": owner},
    )


def resolve_batch(
    db: StoreDatabase, run_id: str, batch_id: str, stage_id: str | None = None, project: str | None = None
) -> str:
    """The full batch ref of `batch_id` (a full ref or a bare batch name) within a run, or one of its
    stages; `ConflictError(batch_ambiguous)` when a bare name is used in several stages."""
    with db.read() as connection:
        run_ref = find_run_ref(connection, run_id, project)
        stage_ref = None if stage_id is None else find_stage_ref(connection, run_ref, stage_id)
        return find_batch_ref(connection, run_ref, batch_id, stage_ref)
