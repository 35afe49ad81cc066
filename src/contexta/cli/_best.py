"""`contexta best METRIC`: which run did best by one metric, with the value that won and how it was
judged (the direction, given or inferred from the key, and the value compared: the latest, or a
statistic of the per-sample values)."""

from __future__ import annotations

import argparse

from contexta.cli import _cells as cells
from contexta.cli._output import CommandError, Output
from contexta.cli._workspace import open_workspace
from contexta.query import BestRun

__all__ = ["best_command", "direction_flag"]


def direction_flag(args: argparse.Namespace) -> bool | None:
    """True / False from `--higher-is-better` / `--lower-is-better`; None (infer from the key) when
    neither was given."""
    if args.higher_is_better:
        return True
    if args.lower_is_better:
        return False
    return None


def _judged_text(best: BestRun) -> str:
    """`latest value in stage evaluate, higher is better (inferred from the key), 2 of 5 runs have it`."""
    judged = "latest value" if best.aggregate == "latest" else f"{best.aggregate} over samples"
    where = "" if best.stage_name is None else f" in stage {best.stage_name}"
    direction = "higher" if best.higher_is_better else "lower"
    how = "inferred from the key" if best.direction == "inferred" else "as given"
    return (
        f"{judged}{where}, {direction} is better ({how}); "
        f"{best.candidate_count} of {best.run_count} runs have a value"
    )


def best_command(args: argparse.Namespace, output: Output) -> int:
    """`contexta best METRIC [--stage NAME] [--higher-is-better | --lower-is-better] [--aggregate A]
    [RUN ...]`: the run whose METRIC is best (the given runs, else every run of the project or
    workspace): its ref and value on the first line, how it was judged on the second."""
    with open_workspace(args) as ctx:
        runs: list[str] = list(args.runs) or [run.run_id for run in ctx.list_runs(args.project)]
        if not runs:
            scope = "workspace" if args.project is None else f"project {args.project}"
            raise CommandError(f"the {scope} has no runs to choose from ({ctx.workspace})")
        best = ctx.find_best_run(
            runs,
            args.metric,
            stage_name=args.stage,
            higher_is_better=direction_flag(args),
            aggregate=args.aggregate,
        )
    if args.format == "json":
        output.json(best.to_dict())
    else:
        output.line(f"{best.run_id}  {best.metric_key} = {cells.number(best.value)}")
        output.line(f"  {_judged_text(best)}")
    return 0
