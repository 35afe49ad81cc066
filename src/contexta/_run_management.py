"""Managing runs after capture, on the facade: tag, untag, note, archive, unarchive, delete.

A mixin of `Contexta` (the writable facade; the read-only `Workspace` has none of it). Each verb
resolves the run the way every query does, then makes its change with `store.change_runs`: checked
again under the store's write lock, applied, and written to the run journal (so a store rebuilt from
the capture log keeps it) in one transaction.

What a run id names here:
- `tag_run`, `untag_run`, `add_run_note` change one execution: the latest for a run's ref or name,
  or the one `name@n` names. Tags are the execution's own (captured ones live on each execution);
  earlier executions keep theirs.
- `archive_run`, `unarchive_run`, `delete_run` act on the run, every execution of it, unless the id
  names one execution (`name@n`): archiving or deleting only the latest would leave an earlier
  execution behind as the run.
Changes to a run a process is still capturing are safe: tags and notes outlive its later writes
(its close writes its captured tags again; the edits are re-applied). Deleting one is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from contexta.config import UnifiedConfig
from contexta.contract import utc_now
from contexta.errors import ConflictError, NotFoundError, ValidationError
from contexta.store import (
    AppliedChange,
    DeletedRun,
    RunAction,
    RunChange,
    StoreDatabase,
    TagValue,
    capturing_process,
    change_runs,
    loads_or_none,
)

if TYPE_CHECKING:
    from contexta import query
    from contexta.capture._scopes._session import CaptureSession
    from contexta.query import RunRecord, RunTarget
else:
    from contexta._on_first_use import on_first_use

    query = on_first_use("contexta.query")

__all__ = ["RunManagement"]

_TAG_TYPES = (str, int, float, bool)


class RunManagement:
    _database: StoreDatabase
    _config: UnifiedConfig
    _session: CaptureSession

    def _reads(self) -> StoreDatabase:
        raise NotImplementedError  # the facade's: the store once this process's captures reached it

    # -- verbs ---------------------------------------------------------------------------------

    def tag_run(
        self, run_id: str, tags: Mapping[str, TagValue] | None = None, /, **named: TagValue
    ) -> RunRecord:
        """Set tags on a run's execution (the latest unless `run_id` is `name@n`), replacing a tag of
        the same name; the run as it is now. Names that are not Python identifiers go in `tags`
        (`ctx.tag_run("r", {"team/owner": "ana"}, reviewed=True)`). Values are text, numbers or
        booleans; secrets in them are redacted like captured tags."""
        checked = self._checked_tags({**(tags or {}), **named})
        target = self._target(run_id)
        self._change(target, "tag", tags=checked)
        return self._run_now(target)

    def untag_run(self, run_id: str, *names: str) -> RunRecord:
        """Remove tags from a run's execution (the latest unless `run_id` is `name@n`); a name it
        does not have is refused, so a typo never passes as done. The run as it is now."""
        if not names or not all(isinstance(name, str) and name for name in names):
            raise ValidationError(
                f"give the names of the tags to remove, got {names!r}", code="tag_names_invalid"
            )
        target = self._target(run_id)

        def refuse_missing(connection: sqlite3.Connection, executions: tuple[str, ...]) -> None:
            (stored,) = connection.execute(
                "SELECT tags FROM runs WHERE execution_id = ?", (executions[0],)
            ).fetchone()
            current = loads_or_none(stored) or {}
            missing = [name for name in names if name not in current]
            if missing:
                raise NotFoundError(
                    f"{target.run_id} has no tag {', '.join(map(repr, missing))} (its tags: "
                    f"{', '.join(sorted(current)) or 'none'})",
                    code="tag_not_found",
                    details={"run": target.run_id, "tags": missing},
                )

        self._change(target, "untag", check=refuse_missing, names=tuple(dict.fromkeys(names)))
        return self._run_now(target)

    def add_run_note(self, run_id: str, text: str) -> RunRecord:
        """Add a note to a run's execution (the latest unless `run_id` is `name@n`), after the notes
        it has; secrets in it are redacted like captured text. The run as it is now."""
        if not isinstance(text, str) or not text.strip():
            raise ValidationError(f"a note must be non-empty text, got {text!r}", code="note_invalid")
        note = self._session.text(text.strip())
        target = self._target(run_id)
        self._change(target, "note", text=note)
        return self._run_now(target)

    def archive_run(self, run_id: str) -> RunRecord:
        """Hide a run (every execution, or the one `name@n` names) from `list_runs` and `contexta
        runs` unless archived ones are asked for; every query that names it still finds it."""
        target = self._target(run_id)
        self._change(target, "archive", whole=True)
        return self._run_now(target)

    def unarchive_run(self, run_id: str) -> RunRecord:
        """List an archived run again (every execution, or the one `name@n` names)."""
        target = self._target(run_id)
        self._change(target, "unarchive", whole=True)
        return self._run_now(target)

    def delete_run(self, run_id: str, *, dry_run: bool = False) -> DeletedRun:
        """Delete a run from the store: every execution of it, or the one `name@n` names, with their
        stages, records, metric points, artifact manifests and environment. `contexta gc` then takes
        their lines out of the capture log and removes the workspace's artifact copies nothing else
        uses (never a file outside the workspace). A run a process is still capturing into is
        refused (`ConflictError(run_live)`). A deleted execution's number may be given again to the
        next execution of its name. With `dry_run`, nothing changes: what it would delete."""
        target = self._target(run_id)
        live_dir = self._config.workspace.live_dir

        def refuse_live(connection: sqlite3.Connection, executions: tuple[str, ...]) -> None:
            for execution in executions:
                process = capturing_process(connection, execution, live_dir if live_dir.is_dir() else None)
                if process is not None:
                    raise ConflictError(
                        f"{target.run_ref} is still being captured by {process}; delete it once that "
                        "process has closed the run (or stop the process)",
                        code="run_live",
                        details={"run": target.run_id, "execution_id": execution, "process": process},
                    )

        return DeletedRun.from_applied(
            self._change(target, "delete", whole=True, check=refuse_live, dry_run=dry_run)
        )

    # -- the shared steps ----------------------------------------------------------------------

    def _target(self, run_id: str) -> RunTarget:
        return query.resolve_run_target(self._reads(), run_id, self._config.project_name)

    def _change(
        self,
        target: RunTarget,
        action: RunAction,
        *,
        whole: bool = False,
        check: Callable[[sqlite3.Connection, tuple[str, ...]], None] | None = None,
        dry_run: bool = False,
        **fields: Any,
    ) -> AppliedChange:
        """Make `action` (with `fields` of `RunChange`) on the executions the target names (with
        `whole`, every execution of its run unless it chose one), under the store's write lock,
        after `check` (which raises to refuse): an execution deleted since it was resolved is
        reported, not silently skipped."""

        def plan(connection: sqlite3.Connection) -> RunChange:
            if whole and not target.chosen:
                executions = tuple(
                    str(row[0])
                    for row in connection.execute(
                        "SELECT execution_id FROM runs WHERE run_ref = ? ORDER BY execution_number",
                        (target.run_ref,),
                    )
                )
            else:
                executions = (target.execution_id,)
            if (
                not executions
                or not connection.execute(
                    "SELECT 1 FROM runs WHERE execution_id = ?", (executions[0],)
                ).fetchone()
            ):
                raise NotFoundError(
                    f"{target.run_id} is no longer in the store (deleted meanwhile?); list runs with "
                    "`contexta runs`",
                    code="run_not_found",
                    details={"run": target.run_id},
                )
            if check is not None:
                check(connection, executions)
            return RunChange(action, target.run_ref, executions, utc_now(), **fields)

        return change_runs(self._database, plan, dry_run=dry_run)

    def _run_now(self, target: RunTarget) -> RunRecord:
        return query.get_run(self._database, f"{target.run_ref}@{target.execution_id}")

    def _checked_tags(self, tags: Mapping[str, Any]) -> dict[str, TagValue]:
        if not tags:
            raise ValidationError("give at least one tag to set (name=value)", code="tags_invalid")
        checked = self._session.attributes(tags, "tags") or {}
        for name, value in checked.items():
            if not name or not isinstance(value, _TAG_TYPES):
                raise ValidationError(
                    f"tag {name!r} must have a non-empty name and a text, number or boolean value, got "
                    f"{value!r}",
                    code="tags_invalid",
                    details={"tag": name},
                )
        return checked
