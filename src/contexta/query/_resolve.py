"""Turning what a person types (a full ref or a bare name) into what a query needs.

A run is one of its executions: `run:p.r` and a bare name mean the latest, `...@2` the second (by
start), `...@<execution id>` that one. A bare name matches the name as typed (`"Linear SVM"`), else
its ref component (`linear-svm`, or a typed name's hashed one), else its normalised form, so refs
and names printed anywhere can be typed back. A name that fits several subjects is refused with the
candidates, never guessed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from contexta.contract._refs import (
    REF_KINDS,
    ParsedRef,
    is_component,
    is_execution_id,
    normalize_name,
    parse_ref,
    project_ref,
    ref_component,
)
from contexta.errors import ConflictError, NotFoundError, ValidationError
from contexta.query._reading import reading
from contexta.query._suggest import closest_names, did_you_mean
from contexta.store import StoreDatabase, execution_by_number, latest_execution_id

__all__ = [
    "RunTarget",
    "check_run_ids",
    "find_batch_ref",
    "find_project_ref",
    "find_run",
    "find_runs",
    "find_stage_ref",
    "project_filter_ref",
    "refs_by_name",
    "resolve_batch",
    "resolve_project",
    "resolve_run",
    "resolve_run_target",
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


def project_filter_ref(project: str, connection: sqlite3.Connection | None = None) -> str:
    """The project ref a list filter means (`project:x`, or a name as configured); existence is not
    required. With a connection, a name is matched as the store knows it: the project whose name as
    typed it is, else its ref component, else (a project a previous version stored, with no typed
    name) its normalised form."""
    text = _text(project, "project")
    if text.startswith("project:"):
        return parse_ref(text, "project").ref
    ref = project_ref(text)
    if connection is None:
        return ref
    typed = connection.execute(
        "SELECT project_ref FROM projects WHERE display_name = ? ORDER BY rowid LIMIT 1", (project,)
    ).fetchone()
    if typed is not None:
        return str(typed[0])
    if _project_exists(connection, ref):
        return ref
    try:
        legacy = f"project:{normalize_name(text, 'project')}"
    except ValidationError:
        return ref
    untyped = connection.execute(
        "SELECT 1 FROM projects WHERE project_ref = ? AND display_name IS NULL", (legacy,)
    ).fetchone()
    return legacy if untyped is not None else ref


def _project_exists(connection: sqlite3.Connection, ref: str) -> bool:
    # A project exists once it is put, or once a run or deployment names it.
    return any(
        connection.execute(f"SELECT 1 FROM {table} WHERE project_ref = ? LIMIT 1", (ref,)).fetchone()
        for table in ("projects", "runs", "deployments")
    )


def find_project_ref(connection: sqlite3.Connection, project: str) -> str:
    ref = project_filter_ref(project, connection)
    if _project_exists(connection, ref):
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
    with reading(db) as connection:
        return find_project_ref(connection, project)


# -- runs ------------------------------------------------------------------------------------------


class RunTarget(NamedTuple):
    """One execution of a run, as a query found it."""

    execution_id: str
    run_ref: str
    number: int  # the order it was stored in among the run's executions, from 1
    latest: bool  # whether it started last (the run ref names it)
    chosen: bool = False  # whether the id named this execution (`@n`, `@<id>`), not the run

    @property
    def run_id(self) -> str:
        """How queries name it: the run ref for the latest execution, `ref@n` for an earlier one."""
        return self.run_ref if self.latest else f"{self.run_ref}@{self.number}"


def _component_levels(text: str) -> list[tuple[str, bool]]:
    """The ref components a bare name can mean, most exact first, each with whether it may match a
    subject whose name was typed: the name itself in ref form, its `ref_component` (a typed name's
    hashed one); last, its lossy normalised form, which only finds subjects stored without a typed
    name (written by hand, or before typed names were kept), so a near miss never reads another
    run that has a name of its own."""
    levels: list[tuple[str, bool]] = []
    builders = ((lambda name: name if is_component(name) else None, True), (ref_component, True))
    for build, typed_too in (*builders, (normalize_name, False)):
        try:
            component = build(text)
        except ValidationError:
            component = None
        if component is not None and component not in [known for known, _ in levels]:
            levels.append((component, typed_too))
    return levels


def refs_by_name(rows: list[tuple[str, str | None]], text: str) -> list[str]:
    """The refs among (ref, name as typed or None) rows that a bare name means: those whose typed name
    it is, else the first of its components (see `_component_levels`) some ref ends in."""
    exact = [ref for ref, typed in rows if typed == text]
    if exact:
        return exact
    for component, typed_too in _component_levels(text):
        matches = [
            ref for ref, typed in rows if ref.rpartition(".")[2] == component and (typed_too or typed is None)
        ]
        if matches:
            return matches
    return []


def _runs_typed(connection: sqlite3.Connection, text: str) -> list[str]:
    """Run refs whose name as typed is exactly `text` (which may hold '@', ':' or spaces)."""
    return [
        row[0]
        for row in connection.execute(
            "SELECT DISTINCT run_ref FROM runs WHERE display_name = ? ORDER BY run_ref", (text,)
        )
    ]


def _refs_named(connection: sqlite3.Connection, text: str) -> list[str]:
    """Run refs a bare name (or `name@n`'s name) can mean: runs whose typed name it is, else runs
    whose ref ends in one of its components (see `_component_levels`), the first level with any."""
    found = _runs_typed(connection, text)
    if found:
        return found
    for component, typed_too in _component_levels(text):
        found = [
            row[0]
            for row in connection.execute(
                # Run refs have one dot: `run:project.name`.
                "SELECT DISTINCT run_ref FROM runs WHERE substr(run_ref, instr(run_ref, '.') + 1) = ? "
                f"{'' if typed_too else 'AND display_name IS NULL '}ORDER BY run_ref",
                (component,),
            )
        ]
        if found:
            return found
    return []


def _stored_run_ref(connection: sqlite3.Connection, text: str) -> tuple[str, str | None] | None:
    """(run ref, execution selector) when `text` is the full ref of a stored run, with or without
    `@...`: a ref always means its run, even if some run was typed with that text as its name."""
    if not text.startswith("run:"):
        return None
    base, at, after = text.rpartition("@") if "@" in text else (text, "", "")
    try:
        ref = parse_ref(base.strip(), "run").ref
    except ValidationError:
        return None
    if connection.execute("SELECT 1 FROM runs WHERE run_ref = ? LIMIT 1", (ref,)).fetchone() is None:
        return None
    return ref, (after.strip() if at else None)


def _looks_like_a_ref(text: str) -> bool:
    """`kind:...` with a kind refs have (a typed name such as `lr:0.1` is a name, not a ref)."""
    kind, colon, _ = text.partition(":")
    return bool(colon) and kind in REF_KINDS


def _chosen(connection: sqlite3.Connection, candidates: list[str], original: str, project: str | None) -> str:
    if project is not None and len(candidates) > 1:
        project_part = project_filter_ref(project, connection).partition(":")[2]
        preferred = [ref for ref in candidates if ref.partition(":")[2].partition(".")[0] == project_part]
        if len(preferred) == 1:
            return preferred[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise _run_not_found(original)
    raise ConflictError(
        f"run name {original!r} matches several runs ({_listing(candidates)}); pass the full ref",
        code="run_ambiguous",
        details={"run": original, "candidates": candidates},
    )


def _find_run_ref(connection: sqlite3.Connection, text: str, original: str, project: str | None) -> str:
    if _looks_like_a_ref(text):
        ref = parse_ref(text, "run").ref
        if connection.execute("SELECT 1 FROM runs WHERE run_ref = ? LIMIT 1", (ref,)).fetchone():
            return ref
        raise _run_not_found(original)
    return _chosen(connection, _refs_named(connection, text), original, project)


def _execution(connection: sqlite3.Connection, run_ref: str, selector: str | None, original: str) -> str:
    """The execution id `selector` picks among the executions of `run_ref` (None: the latest)."""
    if selector is None:
        found = latest_execution_id(connection, run_ref)
    elif selector.isdigit():
        found = execution_by_number(connection, run_ref, int(selector))
    elif is_execution_id(selector):
        row = connection.execute(
            "SELECT execution_id FROM runs WHERE execution_id = ? AND run_ref = ?", (selector, run_ref)
        ).fetchone()
        found = None if row is None else str(row[0])
    else:
        raise ValidationError(
            f"{original!r}: after '@' give an execution's number (1 is the first) or its id",
            code="id_invalid",
            details={"run": original},
        )
    if found is None:
        (count,) = connection.execute("SELECT count(*) FROM runs WHERE run_ref = ?", (run_ref,)).fetchone()
        raise NotFoundError(
            f"{run_ref} has no execution {selector!r} (it has {count}; list them with "
            "`contexta runs --all` or ctx.list_runs(all_executions=True))",
            code="run_not_found",
            details={"run": original},
        )
    return found


def find_run(connection: sqlite3.Connection, run_id: str, project: str | None = None) -> RunTarget:
    """The execution `run_id` names: a run's name as typed, `run:p.r` or a bare ref component (the
    latest execution), `...@n` (the n-th stored, from 1) or `...@<execution id>`."""
    text = _text(run_id, "run id")
    stored_ref = _stored_run_ref(connection, text)
    # A name as typed is matched whole next: it may itself hold '@', ':' or surrounding spaces.
    typed = (
        []
        if stored_ref
        else _runs_typed(connection, run_id) or (_runs_typed(connection, text) if text != run_id else [])
    )
    if stored_ref is not None:
        run_ref, selector = stored_ref
    elif typed:
        run_ref, selector = _chosen(connection, typed, text, project), None
    else:
        base, at, after = text.rpartition("@") if "@" in text else (text, "", "")
        run_ref, selector = (
            _find_run_ref(connection, base.strip(), text, project),
            after.strip() if at else None,
        )
    execution_id = _execution(connection, run_ref, selector, text)
    number, latest = connection.execute(
        "SELECT execution_number, latest FROM runs WHERE execution_id = ?", (execution_id,)
    ).fetchone()
    return RunTarget(execution_id, run_ref, int(number), bool(latest), selector is not None)


def check_run_ids(run_ids: Iterable[str]) -> None:
    """Refuse one string where a collection of run ids belongs (it would be read letter by letter)."""
    if isinstance(run_ids, str):
        raise ValidationError(
            "run_ids must be a collection of run ids, not one string; wrap it in a list",
            code="run_ids_invalid",
        )


def find_runs(
    connection: sqlite3.Connection, run_ids: Iterable[str], project: str | None, *, needed_for: str | None
) -> list[RunTarget]:
    """The executions `run_ids` name, in the order given, duplicates dropped; with `needed_for`, an
    empty collection is refused (`give at least one run <needed_for>`)."""
    targets = list(
        {
            target.execution_id: target
            for target in (find_run(connection, run_id, project) for run_id in run_ids)
        }.values()
    )
    if not targets and needed_for is not None:
        raise ValidationError(f"give at least one run {needed_for}", code="run_ids_empty")
    return targets


def _run_not_found(run_id: str) -> NotFoundError:
    return NotFoundError(
        f"no run {run_id!r} in this store; list runs with `contexta runs` or ctx.list_runs()",
        code="run_not_found",
        details={"run": run_id},
    )


def resolve_run(db: StoreDatabase, run_id: str, project: str | None = None) -> str:
    """How queries name the execution `run_id` means: the full run ref for the latest execution of a
    run, `run:p.r@n` for an earlier one.

    A bare name is looked up in `project` first, then in every project; `NotFoundError(run_not_found)`
    when nothing matches, `ConflictError(run_ambiguous)` when several runs have such a name.
    """
    with reading(db) as connection:
        return find_run(connection, run_id, project).run_id


def resolve_run_target(db: StoreDatabase, run_id: str, project: str | None = None) -> RunTarget:
    """The execution `run_id` names, with its run ref and whether the id chose that execution
    (`...@n`) or named the run (then it is the latest): what a change to runs acts on."""
    with reading(db) as connection:
        return find_run(connection, run_id, project)


# -- stages and batches ----------------------------------------------------------------------------


def _check_child(child: ParsedRef, parent_ref: str, what: str, parent_what: str) -> None:
    if not child.extends(parse_ref(parent_ref)):
        raise NotFoundError(
            f"{what} {child.ref!r} is not part of {parent_what} {parent_ref!r}",
            code=f"{what}_not_found",
            details={what: child.ref, parent_what: parent_ref},
        )


def find_stage_ref(connection: sqlite3.Connection, run: RunTarget, stage_id: str) -> str:
    text = _text(stage_id, "stage id")
    stages: list[tuple[str, str | None, str]] = [
        (row[0], row[1], row[2])
        for row in connection.execute(
            "SELECT stage_ref, display_name, name FROM stages WHERE execution_id = ? "
            "ORDER BY order_index, rowid",
            (run.execution_id,),
        )
    ]
    typed = [ref for ref, display_name, _ in stages if display_name == stage_id]
    if typed:
        matches = typed
    elif _looks_like_a_ref(text):
        parsed = parse_ref(text, "stage")
        _check_child(parsed, run.run_ref, "stage", "run")
        matches = [ref for ref, _, _ in stages if ref == parsed.ref]
    else:
        matches = refs_by_name([(ref, display_name) for ref, display_name, _ in stages], text)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConflictError(
            f"stage name {text!r} matches several stages of {run.run_id} ({_listing(matches)}); pass the "
            "full stage ref",
            code="stage_ambiguous",
            details={"stage": text, "candidates": matches},
        )
    names = [display_name or name for _, display_name, name in stages]
    raise NotFoundError(
        f"run {run.run_id!r} has no stage {stage_id!r}; {did_you_mean(text, names)}"
        f"its stages: {_listing(names)}",
        code="stage_not_found",
        details={"run": run.run_id, "stage": stage_id, "closest": closest_names(text, names)},
    )


def resolve_stage(db: StoreDatabase, run_id: str, stage_id: str, project: str | None = None) -> str:
    """The full stage ref of `stage_id` (a full ref or a bare stage name) within the run `run_id`
    (itself a full ref or a bare run name, optionally `@n` for an earlier execution)."""
    with reading(db) as connection:
        return find_stage_ref(connection, find_run(connection, run_id, project), stage_id)


def find_batch_ref(
    connection: sqlite3.Connection, run: RunTarget, batch_id: str, stage_ref: str | None = None
) -> str:
    text = _text(batch_id, "batch id")
    owner = stage_ref if stage_ref is not None else run.run_ref
    sql = "SELECT batch_ref, display_name FROM batches WHERE execution_id = ?"
    parameters = [run.execution_id]
    if stage_ref is not None:
        sql += " AND stage_ref = ?"
        parameters.append(stage_ref)
    batches: list[tuple[str, str | None]] = [(row[0], row[1]) for row in connection.execute(sql, parameters)]
    typed = sorted(ref for ref, display_name in batches if display_name == batch_id)
    if typed:
        candidates = typed
    elif _looks_like_a_ref(text):
        parsed = parse_ref(text, "batch")
        _check_child(parsed, owner, "batch", "stage" if stage_ref is not None else "run")
        candidates = [ref for ref, _ in batches if ref == parsed.ref]
    else:
        candidates = sorted(refs_by_name(batches, text))
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise ConflictError(
            f"batch name {text!r} matches batches in several stages of {run.run_id!r} "
            f"({_listing(candidates)}); pass the stage or the full batch ref",
            code="batch_ambiguous",
            details={"batch": text, "candidates": candidates},
        )
    raise NotFoundError(
        f"{owner!r} has no batch {batch_id!r}; list its batches with ctx.list_batches({run.run_id!r})",
        code="batch_not_found",
        details={"batch": batch_id, "owner": owner},
    )


def resolve_batch(
    db: StoreDatabase, run_id: str, batch_id: str, stage_id: str | None = None, project: str | None = None
) -> str:
    """The full batch ref of `batch_id` (a full ref or a bare batch name) within a run, or one of its
    stages; `ConflictError(batch_ambiguous)` when a bare name is used in several stages."""
    with reading(db) as connection:
        run = find_run(connection, run_id, project)
        stage_ref = None if stage_id is None else find_stage_ref(connection, run, stage_id)
        return find_batch_ref(connection, run, batch_id, stage_ref)
