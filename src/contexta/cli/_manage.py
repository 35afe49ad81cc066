"""`contexta tag`, `untag`, `note`, `archive`, `unarchive` and `delete`: changing runs after capture.

Each opens the workspace for writing and calls the facade's verb of the same name
(`contexta/_run_management.py` says which executions each acts on). `delete` says what it will
delete first, and asks: on a terminal it waits for `y`; elsewhere (a script, CI) it deletes only
with `--yes`, so a pipeline cannot delete a run by accident.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from contexta.cli import _cells as cells
from contexta.cli._output import CommandError, Output, UsageError
from contexta.cli._workspace import open_workspace_for_writing

if TYPE_CHECKING:
    from contexta import Contexta
    from contexta.query import RunRecord
    from contexta.store import DeletedRun

__all__ = [
    "archive_command",
    "delete_command",
    "note_command",
    "tag_command",
    "unarchive_command",
    "untag_command",
]


def _tags_text(run: RunRecord) -> str:
    return cells.mapping(run.tags) if run.tags else "with nothing"


def _changed(output: Output, args: argparse.Namespace, run: RunRecord, sentence: str) -> int:
    if args.format == "json":
        output.json(run.to_dict())
    else:
        output.line(sentence)
    return 0


def _assignments(texts: list[str]) -> dict[str, str]:
    """`KEY=VALUE` arguments as tags (values are text; the first `=` separates)."""
    tags: dict[str, str] = {}
    for text in texts:
        name, equals, value = text.partition("=")
        if not equals or not name:
            raise UsageError(f"expected KEY=VALUE, got {text!r}")
        tags[name] = value
    return tags


def tag_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta tag RUN KEY=VALUE...`: set tags on the run's execution."""
    tags = _assignments(args.tags)
    with open_workspace_for_writing(args) as ctx:
        run = ctx.tag_run(args.run, tags)
    return _changed(output, args, run, f"{run.run_id} is tagged {_tags_text(run)}.")


def untag_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta untag RUN KEY...`: remove tags from the run's execution."""
    with open_workspace_for_writing(args) as ctx:
        run = ctx.untag_run(args.run, *args.names)
    return _changed(output, args, run, f"{run.run_id} is tagged {_tags_text(run)}.")


def note_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta note RUN TEXT`: add a note to the run's execution."""
    with open_workspace_for_writing(args) as ctx:
        run = ctx.add_run_note(args.run, args.text)
    return _changed(output, args, run, f"Added note {len(run.notes)} to {run.run_id}.")


def archive_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta archive RUN`: hide the run from `contexta runs` (still found by name everywhere)."""
    with open_workspace_for_writing(args) as ctx:
        run = ctx.archive_run(args.run)
    return _changed(
        output,
        args,
        run,
        f"Archived {run.run_id}: `contexta runs` lists it only with --archived; commands still find it.",
    )


def unarchive_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta unarchive RUN`: list the run again."""
    with open_workspace_for_writing(args) as ctx:
        run = ctx.unarchive_run(args.run)
    return _changed(output, args, run, f"{run.run_id} is listed by `contexta runs` again.")


def _describe(output: Output, ctx: Contexta, preview: DeletedRun) -> None:
    output.line(f"This deletes {len(preview.executions)} execution(s) of {preview.run_ref} from the store:")
    for execution in preview.executions:
        run = ctx.get_run(f"{preview.run_ref}@{execution}")
        output.line(
            f"  @{run.execution_number} {run.status}, started {cells.moment(run.started_at)}"
            f"{', archived' if run.archived else ''}"
        )
    copies = f" and {len(preview.artifact_files)} artifact copie(s)" if preview.artifact_files else ""
    output.line(
        f"({sum(preview.rows.values())} store rows, {preview.metric_points} metric points); "
        f"`contexta gc` then removes their capture-log lines{copies} from the workspace."
    )


def _confirmed() -> bool:
    try:
        answer = input("Delete? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def delete_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta delete RUN [--yes]`: delete the run (or the execution RUN@N) from the store."""
    with open_workspace_for_writing(args) as ctx:
        if not args.yes:
            preview = ctx.delete_run(args.run, dry_run=True)
            if args.format == "text":
                _describe(output, ctx, preview)
            if not sys.stdin.isatty():
                raise CommandError(
                    f"not deleting {preview.run_ref} without --yes (stdin is not a terminal to ask on)"
                )
            output.flush()
            if not _confirmed():
                output.line("Nothing deleted.")
                return 1
        deleted = ctx.delete_run(args.run)
    if args.format == "json":
        output.json(
            {
                "run_ref": deleted.run_ref,
                "executions": list(deleted.executions),
                "rows": deleted.rows,
                "metric_points": deleted.metric_points,
                "artifact_files_for_gc": list(deleted.artifact_files),
            }
        )
        return 0
    output.line(
        f"Deleted {len(deleted.executions)} execution(s) of {deleted.run_ref} "
        f"({sum(deleted.rows.values())} store rows, {deleted.metric_points} metric points)."
    )
    output.line(
        "Run `contexta gc` to remove their capture-log lines"
        + (f" and {len(deleted.artifact_files)} unused artifact copie(s)." if deleted.artifact_files else ".")
    )
    return 0
