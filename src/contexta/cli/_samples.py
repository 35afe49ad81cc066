"""`contexta samples RUN`: a run's samples as a table, with status, metrics and event messages, so a
failed evaluation case is seen with its values (`--failed` keeps those only, `--sort` orders). The
text shows each sample's last event (a failed sample's is its exception); json has them all."""

from __future__ import annotations

import argparse

from contexta.cli import _cells as cells
from contexta.cli._output import Output
from contexta.cli._tables import Column, render_table
from contexta.cli._workspace import open_workspace
from contexta.query import SampleTable

__all__ = ["samples_command"]

_SHOWN_METRICS = 4  # metric columns in the text table; --format json has every one


def _heading(table: SampleTable) -> str:
    where = "" if table.stage_name is None else f" in stage {table.stage_name}"
    kind = "failed samples" if table.failed_only else "samples"
    failed = "" if table.failed_only else f", {table.failed_count} failed"
    return f"{len(table)} {kind} of {table.run_id}{where}{failed}"


def _text(table: SampleTable, output: Output) -> None:
    output.line(_heading(table))
    if not table.rows:
        return
    keys = table.metric_keys[:_SHOWN_METRICS]
    several_stages = table.stage_name is None and len({row.stage_name for row in table.rows}) > 1
    columns = [
        Column("sample"),
        *([Column("stage")] if several_stages else []),
        Column("status", keep=True),
        *(Column(key, numeric=True) for key in keys),
        Column("last event"),
    ]
    rows = [
        [
            row.name,
            *([row.stage_name] if several_stages else []),
            row.status or cells.NOTHING,
            *(cells.number(row.metrics.get(key)) for key in keys),
            row.events[-1] if row.events else cells.NOTHING,  # a failed sample's: its exception
        ]
        for row in table.rows
    ]
    output.line()
    output.lines(render_table(columns, rows, output.width))
    if len(table.metric_keys) > len(keys):
        hidden = len(table.metric_keys) - len(keys)
        output.line()
        output.line(f"{hidden} more metric columns: contexta samples {table.run_id} --format json")


def samples_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta samples RUN [--stage NAME] [--failed] [--sort [-]COLUMN]`: one row per sample (json:
    the table, every metric and event included)."""
    with open_workspace(args) as ctx:
        table = ctx.get_sample_table(args.run, args.stage, failed_only=args.failed)
    if args.sort is not None:
        table = table.sorted_by(args.sort)
    if args.format == "json":
        output.json(table.to_dict())
    else:
        _text(table, output)
    return 0
