"""`contexta runs` (the runs of a workspace) and `contexta run show RUN` (one run in full)."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
from typing import Any

from contexta.cli import _cells as cells
from contexta.cli._output import Output
from contexta.cli._tables import Column, render_fields, render_table
from contexta.cli._terminal import terminal_safe
from contexta.cli._workspace import open_workspace
from contexta.query import DiagnosticsResult, EnvironmentRecord, RunRecord, RunSnapshot

__all__ = ["list_runs_command", "show_run_command"]


def list_runs_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta runs`: a table of runs, oldest first (json: their records)."""
    with open_workspace(args) as ctx:
        runs = ctx.list_runs(
            args.project, status=args.status, limit=args.limit, all_executions=args.all_executions
        )
        where = ctx.workspace
    if args.format == "json":
        output.json([run.to_dict() for run in runs])
        return 0
    if not runs:
        scope = "" if args.project is None else f" of project {args.project}"
        status = "" if args.status is None else f" with status {args.status}"
        output.line(f"No runs{scope}{status} in {where}.")
        return 0
    columns = [
        Column("name"),
        *([Column("execution", keep=True)] if args.all_executions else []),
        Column("status", keep=True),
        Column("started", keep=True),
        Column("ended", keep=True),
        Column("duration", numeric=True),
        Column("project"),
    ]
    rows = [
        [
            run.name,
            *([_execution_label(run)] if args.all_executions else []),
            run.status,
            cells.moment(run.started_at),
            cells.end_moment(run.started_at, run.ended_at),
            cells.duration(run.started_at, run.ended_at),
            run.project_name,
        ]
        for run in runs
    ]
    output.lines(render_table(columns, rows, output.width))
    return 0


def _execution_label(run: RunRecord) -> str:
    """`@2`, and `@3 latest` for the one the run's ref names."""
    return f"@{run.execution_number}{' latest' if run.latest else ''}"


# -- run show --------------------------------------------------------------------------------------


def _ending_text(run: RunRecord) -> str:
    """Why the run ended, when it did not simply complete: the reason and the exception, if any."""
    parts = [run.end_reason] if run.end_reason else []
    if run.failure:
        parts.append(f"{run.failure.get('type')}: {run.failure.get('message')}")
    return "; ".join(part for part in parts if part) or cells.NOTHING


def _environment_text(environment: EnvironmentRecord | None) -> str:
    if environment is None:
        return "not recorded"
    parts = [f"Python {environment.python_version}", environment.platform]
    if environment.git_revision:
        parts.append(f"git {environment.git_revision}")
    if environment.packages:
        parts.append(f"{len(environment.packages)} packages")
    return ", ".join(parts)


def _summary_fields(snapshot: RunSnapshot) -> list[tuple[str, str]]:
    run: RunRecord = snapshot.run
    return [
        ("name", run.name),
        ("project", run.project_name),
        ("execution", f"{_execution_label(run)} ({run.execution_id})"),
        ("status", run.status),
        ("ended because", _ending_text(run)),
        ("started", cells.moment(run.started_at)),
        ("ended", cells.moment(run.ended_at)),
        ("duration", cells.duration(run.started_at, run.ended_at)),
        ("dataset_ref", run.dataset_ref or cells.NOTHING),
        ("code_revision", run.code_revision or cells.NOTHING),
        ("tags", cells.mapping(run.tags)),
        ("metadata", cells.mapping(run.metadata)),
        ("config", cells.mapping(run.config_snapshot)),
        ("environment", _environment_text(snapshot.environment)),
        ("records", str(len(snapshot.records))),
        ("samples", str(len(snapshot.samples))),
    ]


def _section(output: Output, title: str, columns: list[Column], rows: list[list[str]]) -> None:
    output.line()
    if not rows:
        output.line(f"{title}: none")
        return
    output.line(f"{title} ({len(rows)})")
    output.lines(render_table(columns, rows, output.width))


def _diagnostics_text(diagnosis: DiagnosticsResult) -> str:
    if not diagnosis.issues:
        return "Diagnostics: no issues."
    counts: dict[str, int] = {}
    for issue in diagnosis.issues:
        counts[issue.severity] = counts.get(issue.severity, 0) + 1
    summary = ", ".join(
        f"{counts[severity]} {severity}{'' if counts[severity] == 1 else 's'}"
        for severity in ("error", "warning", "info")
        if severity in counts
    )
    codes = ", ".join(dict.fromkeys(issue.code for issue in diagnosis.issues))
    return f"Diagnostics: {summary} ({codes}); details: contexta diagnose {diagnosis.run_id}"


def _show_text(snapshot: RunSnapshot, diagnosis: DiagnosticsResult, output: Output) -> None:
    output.line(f"Run {snapshot.run.run_id}")
    output.lines(render_fields(_summary_fields(snapshot), output.width))
    stage_names = {stage.stage_id: stage.name for stage in snapshot.stages}
    _section(
        output,
        "Stages",
        [
            Column("name"),
            Column("status", keep=True),
            Column("started", keep=True),
            Column("duration", numeric=True),
        ],
        [
            [
                stage.name,
                stage.status,
                cells.moment(stage.started_at),
                cells.duration(stage.started_at, stage.ended_at),
            ]
            for stage in snapshot.stages
        ],
    )
    _section(
        output,
        "Batches",
        [
            Column("stage"),
            Column("name"),
            Column("status", keep=True),
            Column("started", keep=True),
            Column("duration", numeric=True),
        ],
        [
            [
                stage_names.get(batch.stage_id or "", batch.stage_id or cells.NOTHING),
                batch.name,
                batch.status,
                cells.moment(batch.started_at),
                cells.duration(batch.started_at, batch.ended_at),
            ]
            for batch in snapshot.batches
        ],
    )
    _section(
        output,
        "Deployments",
        [Column("name"), Column("status", keep=True), Column("started", keep=True), Column("artifact")],
        [
            [
                deployment.name,
                deployment.status,
                cells.moment(deployment.started_at),
                deployment.artifact_ref or cells.NOTHING,
            ]
            for deployment in snapshot.deployments
        ],
    )
    _section(
        output,
        "Artifacts",
        [
            Column("kind"),
            Column("binding", keep=True),
            Column("size", numeric=True),
            Column("blake3", keep=True),
            Column("ref"),
        ],
        [
            [
                artifact.kind,
                artifact.binding_status,
                cells.size(artifact.size_bytes),
                cells.digest(artifact.hash_value),
                artifact.artifact_ref,
            ]
            for artifact in snapshot.artifacts
        ],
    )
    _failures_text(snapshot, output)
    output.line()
    output.lines(textwrap.wrap(_diagnostics_text(diagnosis), output.width, break_on_hyphens=False))


def _failures_text(snapshot: RunSnapshot, output: Output) -> None:
    """The exceptions that ended the run and its scopes, with their short tracebacks."""
    scopes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("run", snapshot.run.name, snapshot.run.failure),
        *(("stage", stage.name, stage.failure) for stage in snapshot.stages),
        *(("batch", batch.name, batch.failure) for batch in snapshot.batches),
        *(("sample", sample.name, sample.failure) for sample in snapshot.samples),
    ]
    failed = [(kind, name, failure) for kind, name, failure in scopes if failure]
    for kind, name, failure in failed[:_SHOWN_FAILURES]:
        assert failure is not None
        output.line()
        # Escaped before wrapping, so a line break in the message shows as `\n` and wraps like text.
        header = terminal_safe(f"Failure of {kind} {name}: {failure.get('type')}: {failure.get('message')}")
        output.lines(textwrap.wrap(header, output.width, subsequent_indent="  ", break_on_hyphens=False))
        # A traceback is lines of its own (each indented under the failure); only a line feed ends one.
        for line in str(failure.get("traceback") or "").rstrip().split("\n"):
            output.lines(
                textwrap.wrap(
                    terminal_safe(line),
                    output.width,
                    initial_indent="  ",
                    subsequent_indent="    ",
                    break_on_hyphens=False,
                )
            )
    if len(failed) > _SHOWN_FAILURES:
        output.line()
        output.line(
            f"... and {len(failed) - _SHOWN_FAILURES} more failures (contexta run show --format json)"
        )


_SHOWN_FAILURES = 5


def _plain(item: Any) -> Any:
    if hasattr(item, "to_dict"):
        return item.to_dict()
    if isinstance(item, tuple | list):
        return [_plain(part) for part in item]
    return item


def _snapshot_document(snapshot: RunSnapshot) -> dict[str, Any]:
    """`snapshot.to_dict()` with `records` replaced by their count: a run may hold millions, and
    reading them all to print them is never what a look at a run needs."""
    document = {
        field.name: _plain(getattr(snapshot, field.name))
        for field in dataclasses.fields(snapshot)
        if field.name != "records"
    }
    document["records"] = {"total": len(snapshot.records), **(snapshot.record_counts or {})}
    return document


def show_run_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta run show RUN`: the run's arguments, stages, batches, deployments, artifacts and a
    diagnostics summary (json: the snapshot, records counted rather than listed)."""
    with open_workspace(args) as ctx:
        snapshot = ctx.get_run_snapshot(args.run)
        diagnosis = None if args.format == "json" else ctx.diagnose_run(snapshot.run.run_id)
    if diagnosis is None:
        output.json(_snapshot_document(snapshot))
    else:
        _show_text(snapshot, diagnosis, output)
    return 0
