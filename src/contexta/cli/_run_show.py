"""`contexta run show RUN`: the snapshot report (`reports.build_snapshot_report`) laid out for a
terminal.

The report decides what a run shows; this module only chooses, per section, what fits a glance at a
terminal's width: the Run Summary as aligned fields (whether the run is archived among them), the
notes added to it after capture, the Stages, Artifacts, Batches and Deployments tables with the
columns that matter there, the Samples counted, the exceptions that ended the run or its scopes with
their tracebacks, and the Diagnostics as one line. `--format json` prints the run's
snapshot (`get_run_snapshot`) instead, its records counted rather than listed.
"""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contexta import Workspace
from contexta.cli import _cells as cells
from contexta.cli._metric_tables import show_metric_tables
from contexta.cli._output import Output
from contexta.cli._tables import Column, render_fields, render_table
from contexta.cli._terminal import terminal_safe
from contexta.cli._workspace import open_workspace
from contexta.query import MetricSummary, RunRecord, RunSnapshot
from contexta.reports import Cell, ReportDocument, ReportSection

__all__ = ["show_run_command"]

Row = Mapping[str, Cell]  # a row of a report table, by column name
Failure = tuple[str, str, Mapping[str, Any]]  # (scope kind, scope name, {"type", "message", "traceback"})

_SHOWN_FAILURES = 5


# A report cell as the terminal formatters take it (a cell of another kind counts as none).


def _text(value: Cell) -> str | None:
    return value if isinstance(value, str) else None


def _whole(value: Cell) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _length(value: Cell) -> float | int | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _cell(name: str) -> Callable[[Row], str]:
    """The column `name` as short text (`-` for none)."""
    return lambda row: cells.value(row[name])


def _moment(name: str) -> Callable[[Row], str]:
    """The timestamp in column `name`, to the second."""
    return lambda row: cells.moment(_text(row[name]))


@dataclass(frozen=True, slots=True)
class _Shown:
    """A terminal column: its title and how it gives way, and how its text comes from a report row."""

    column: Column
    text: Callable[[Row], str]


# Per report section: the columns a terminal shows, in order (the report has them all).
_TABLES: dict[str, tuple[_Shown, ...]] = {
    "Stages": (
        _Shown(Column("name"), _cell("stage")),
        _Shown(Column("status", keep=True), _cell("status")),
        _Shown(Column("started", keep=True), _moment("started_at")),
        _Shown(Column("duration", numeric=True), lambda row: cells.seconds(_length(row["duration_s"]))),
        _Shown(Column("metrics", wrap=True), _cell("metrics")),
    ),
    "Artifacts": (
        _Shown(Column("kind"), _cell("kind")),
        _Shown(Column("binding", keep=True), _cell("binding_status")),
        _Shown(Column("size", numeric=True), lambda row: cells.size(_whole(row["size_bytes"]))),
        _Shown(Column("blake3", keep=True), lambda row: cells.digest(_text(row["blake3"]))),
        _Shown(Column("ref"), _cell("artifact")),
    ),
    "Batches": (
        _Shown(Column("stage"), _cell("stage")),
        _Shown(Column("name"), _cell("batch")),
        _Shown(Column("status", keep=True), _cell("status")),
        _Shown(Column("started", keep=True), _moment("started_at")),
        _Shown(
            Column("duration", numeric=True),
            lambda row: cells.duration(_text(row["started_at"]), _text(row["ended_at"])),
        ),
    ),
    "Deployments": (
        _Shown(Column("name"), _cell("deployment")),
        _Shown(Column("status", keep=True), _cell("status")),
        _Shown(Column("started", keep=True), _moment("started_at")),
        _Shown(Column("artifact"), _cell("artifact_ref")),
    ),
}


def _rows(section: ReportSection) -> list[Row]:
    table = section.table
    return [] if table is None else [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def _summary(document: ReportDocument) -> dict[str, Cell]:
    """The Run Summary's fields by name."""
    table = document.section("Run Summary").table
    return {} if table is None else {str(field): value for field, value in table.rows}


def _environment_text(summary: Row) -> str:
    if summary["python"] is None:
        return "not recorded"
    parts = [f"Python {summary['python']}", cells.value(summary["platform"])]
    if summary["git_revision"] is not None:
        parts.append(f"git {summary['git_revision']}")
    if summary["packages"] is not None:
        parts.append(f"packages: {summary['packages']}")
    return ", ".join(parts)


def _samples_text(samples: Sequence[Row], run_id: str) -> str:
    """`200 (4 failed: contexta samples RUN --failed)`, or the count alone when none failed."""
    failed = sum(1 for sample in samples if sample["status"] == "failed")
    if not failed:
        return str(len(samples))
    return f"{len(samples)} ({failed} failed: contexta samples {run_id} --failed)"


def _summary_fields(summary: Row, samples_text: str, run: RunRecord) -> list[tuple[str, str]]:
    return [
        ("name", cells.value(summary["name"])),
        ("project", cells.value(summary["project"])),
        ("execution", cells.value(summary["execution"])),
        ("status", cells.value(summary["status"])),
        ("archived", "yes (hidden from `contexta runs`)" if run.archived else "no"),
        ("ended because", cells.value(summary["ended_because"])),
        ("started", cells.moment(_text(summary["started_at"]))),
        ("ended", cells.moment(_text(summary["ended_at"]))),
        ("duration", cells.seconds(_length(summary["duration_s"]))),
        ("dataset_ref", cells.value(summary["dataset_ref"])),
        ("code_revision", cells.value(summary["code_revision"])),
        ("tags", cells.value(summary["tags"])),
        ("metadata", cells.value(summary["metadata"])),
        ("config", cells.value(summary["config_snapshot"])),
        ("environment", _environment_text(summary)),
        ("records", cells.value(summary["records"])),
        ("run metrics", cells.value(summary["run metrics"])),
        ("samples", samples_text),
    ]


def _show_notes(output: Output, run: RunRecord) -> None:
    """The notes added to the run after capture, oldest first, each wrapped under its time."""
    if not run.notes:
        return
    output.line()
    output.line(f"Notes ({len(run.notes)})")
    for note in run.notes:
        text = terminal_safe(f"{cells.moment(note.added_at)}  {note.text}")
        output.lines(
            textwrap.wrap(
                text, output.width, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False
            )
        )


def _table_section(output: Output, section: ReportSection) -> None:
    shown = _TABLES[section.title]
    rows = [[column.text(row) for column in shown] for row in _rows(section)]
    output.line()
    if not rows:
        output.line(f"{section.title}: none")
        return
    output.line(f"{section.title} ({len(rows)})")
    output.lines(render_table([column.column for column in shown], rows, output.width))


def _diagnostics_text(section: ReportSection, run_id: str) -> str:
    issues = _rows(section)
    if not issues:
        return "Diagnostics: no issues."
    counts: dict[str, int] = {}
    for issue in issues:
        severity = cells.value(issue["severity"])
        counts[severity] = counts.get(severity, 0) + 1
    summary = ", ".join(
        f"{counts[severity]} {severity}{'' if counts[severity] == 1 else 's'}"
        for severity in ("error", "warning", "info")
        if severity in counts
    )
    codes = ", ".join(dict.fromkeys(cells.value(issue["code"]) for issue in issues))
    return f"Diagnostics: {summary} ({codes}); details: contexta diagnose {run_id}"


def _failures(ctx: Workspace, document: ReportDocument) -> list[Failure]:
    """The exceptions that ended the run and its stages, batches and samples, in that order. The
    report says which scopes ended for a reason (`ended_because`); only the kinds that have one are
    read again, for the exception's type, message and traceback."""

    def ended(title: str) -> bool:
        return any(row["ended_because"] is not None for row in _rows(document.section(title)))

    summary = _summary(document)
    run_id = cells.value(summary["run"])
    scopes: list[tuple[str, str, Mapping[str, Any] | None]] = []
    if summary["ended_because"] is not None:
        run = ctx.get_run(run_id)
        scopes.append(("run", run.name, run.failure))
    if ended("Stages"):
        scopes += [("stage", stage.name, stage.failure) for stage in ctx.list_stages(run_id)]
    if ended("Batches"):
        scopes += [("batch", batch.name, batch.failure) for batch in ctx.list_batches(run_id)]
    if ended("Samples"):
        scopes += [("sample", sample.name, sample.failure) for sample in ctx.list_samples(run_id)]
    return [(kind, name, failure) for kind, name, failure in scopes if failure]


def _show_failures(output: Output, failures: Sequence[Failure]) -> None:
    """Each failure's type and message, then its traceback, a line of its own per traceback line."""
    for kind, name, failure in failures[:_SHOWN_FAILURES]:
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
    if len(failures) > _SHOWN_FAILURES:
        output.line()
        output.line(
            f"... and {len(failures) - _SHOWN_FAILURES} more failures (contexta run show --format json)"
        )


def _show_text(
    document: ReportDocument,
    metrics: Sequence[MetricSummary],
    failures: Sequence[Failure],
    run: RunRecord,
    output: Output,
) -> None:
    summary = _summary(document)
    run_id = cells.value(summary["run"])
    output.line(f"Run {run_id}")
    samples = _samples_text(_rows(document.section("Samples")), run_id)
    output.lines(render_fields(_summary_fields(summary, samples, run), output.width))
    _show_notes(output, run)
    for section in document.sections:
        if section.title in _TABLES:
            _table_section(output, section)
        if section.title == "Stages":
            show_metric_tables(output, metrics)
    _show_failures(output, failures)
    output.line()
    diagnostics = _diagnostics_text(document.section("Diagnostics"), run_id)
    output.lines(textwrap.wrap(diagnostics, output.width, break_on_hyphens=False))


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
    """`contexta run show RUN`: the run's snapshot report in a terminal layout (json: the snapshot,
    records counted rather than listed)."""
    with open_workspace(args) as ctx:
        if args.format == "json":
            output.json(_snapshot_document(ctx.get_run_snapshot(args.run)))
            return 0
        document = ctx.build_snapshot_report(args.run)
        metrics = ctx.get_metric_summaries(cells.value(_summary(document)["run"]))
        failures = _failures(ctx, document)
        run = ctx.get_run(cells.value(_summary(document)["run"]))
    _show_text(document, metrics, failures, run, output)
    return 0
