"""`contexta env-diff A B`: how run B's environment differs from run A's."""

from __future__ import annotations

import argparse

from contexta.cli import _cells as cells
from contexta.cli._output import Output
from contexta.cli._tables import Column, render_table
from contexta.cli._workspace import open_workspace
from contexta.query import EnvironmentComparison

__all__ = ["env_diff_command"]


def _environment_text(comparison: EnvironmentComparison, output: Output) -> None:
    output.line(f"Environment from {comparison.left_run_id} (left) to {comparison.right_run_id} (right)")
    if comparison.identical:
        output.line("Identical: Python, platform, git revision and every package version are the same.")
        return
    rows = [
        [difference.field, cells.value(difference.left), cells.value(difference.right)]
        for difference in comparison.differences
    ]
    for change, packages in (
        ("added", comparison.packages_added),
        ("removed", comparison.packages_removed),
        ("changed", comparison.packages_changed),
    ):
        rows += [
            [
                f"package {package.name} ({change})",
                cells.value(package.left_version),
                cells.value(package.right_version),
            ]
            for package in packages
        ]
    output.lines(render_table([Column("field"), Column("left"), Column("right")], rows, output.width))


def env_diff_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta env-diff A B`: differing Python, platform and git revision, and packages added,
    removed and changed (json: the comparison, both environments included)."""
    with open_workspace(args) as ctx:
        comparison = ctx.compare_environments(args.left, args.right)
    if args.format == "json":
        output.json(comparison.to_dict())
    else:
        _environment_text(comparison, output)
    return 0
