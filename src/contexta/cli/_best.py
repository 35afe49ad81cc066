"""`contexta best METRIC`: which run did best by one metric."""

from __future__ import annotations

import argparse

from contexta.cli._output import CommandError, Output
from contexta.cli._workspace import open_workspace

__all__ = ["best_command"]


def best_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta best METRIC [--stage NAME] [--lower-is-better] [RUN ...]`: the ref of the run whose
    latest METRIC is best (the given runs, else every run of the project or workspace)."""
    higher_is_better = not args.lower_is_better
    with open_workspace(args) as ctx:
        runs: list[str] = list(args.runs) or [run.run_id for run in ctx.list_runs(args.project)]
        if not runs:
            scope = "workspace" if args.project is None else f"project {args.project}"
            raise CommandError(f"the {scope} has no runs to choose from ({ctx.workspace})")
        best = ctx.select_best_run(
            runs, args.metric, stage_name=args.stage, higher_is_better=higher_is_better
        )
    if best is None:
        where = "" if args.stage is None else f" in a stage named {args.stage!r}"
        among = "the run" if len(runs) == 1 else f"any of the {len(runs)} runs"
        raise CommandError(f"no metric {args.metric!r} was recorded{where} by {among}")
    if args.format == "json":
        output.json(
            {
                "run_id": best,
                "metric_key": args.metric,
                "stage_name": args.stage,
                "higher_is_better": higher_is_better,
                "run_count": len(runs),
            }
        )
    else:
        output.line(best)
    return 0
