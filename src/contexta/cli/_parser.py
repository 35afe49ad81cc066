"""The `contexta` argument parser: every command, its options, and the function that runs it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from contexta import __version__
from contexta.cli._best import best_command
from contexta.cli._compare import compare_command
from contexta.cli._diagnose import FAIL_ON_SEVERITIES, diagnose_command
from contexta.cli._maintenance import migrate_command, repair_command, replay_command
from contexta.cli._output import Output
from contexta.cli._report import REPORT_FORMATS, report_command
from contexta.cli._run_show import show_run_command
from contexta.cli._runs import list_runs_command
from contexta.cli._tail import LOG_FAMILIES, tail_command
from contexta.cli._verify import verify_command
from contexta.contract import STATUSES

# `du` and `gc` read the whole log and the store's page statistics: their modules are imported when
# one of them runs, so every other command (`contexta runs`) starts without them.
DU_BY_CHOICES = ("run", "project", "kind")


def _du_command(args: argparse.Namespace, output: Output) -> int:
    from contexta.cli._du import du_command

    return du_command(args, output)


def _gc_command(args: argparse.Namespace, output: Output) -> int:
    from contexta.cli._gc import gc_command

    return gc_command(args, output)


__all__ = ["Handler", "build_parser"]

Handler = Callable[[argparse.Namespace, Output], int]

DEFAULT_WORKSPACE = ".contexta"
TEXT_FORMATS = ("text", "json")

_DESCRIPTION = (
    "Ask questions of what Contexta captured into a workspace: list runs, show one, compare two, pick "
    "the best, diagnose, report, verify artifacts, follow the capture log live, and see and reclaim space."
)
_EPILOG = "Exit status: 0 ok, 1 a handled error (one line on stderr), 2 a usage error."


class _CommandParser(argparse.ArgumentParser):
    """A command's parser, which takes options between its positionals: `best accuracy --stage
    evaluate run-a run-b` (plain argparse, before Python 3.12, refuses positionals after an option once
    a `nargs="*"` positional was matched empty before it)."""

    _intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[Any, list[str]]:
        # parse_known_intermixed_args calls back into parse_known_args for its two passes; a parser
        # with its own commands (`run`) cannot be intermixed and parses as usual.
        if args is not None:
            args = _attach_dash_values(list(args))
        if self._intermixing or self._subparsers is not None:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


# Options whose value may start with `-` (`--sort -metrics.accuracy`), which argparse would take for
# an option of its own: the value is attached (`--sort=-metrics.accuracy`) before parsing.
_DASH_VALUE_OPTIONS = frozenset({"--sort"})


def _attach_dash_values(args: list[str]) -> list[str]:
    attached: list[str] = []
    values = iter(args)
    for arg in values:
        if arg in _DASH_VALUE_OPTIONS:
            value = next(values, None)
            attached.append(arg if value is None else f"{arg}={value}")
        else:
            attached.append(arg)
    return attached


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        return number

    return parse


def _add_locations(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """`--workspace` and `--project`: accepted before the command and after it. Only the top-level
    parser sets defaults, so a value given before the command is not reset by the command's parser."""
    parser.add_argument(
        "--workspace",
        metavar="PATH",
        default=DEFAULT_WORKSPACE if defaults else argparse.SUPPRESS,
        help=f"the workspace directory (default: {DEFAULT_WORKSPACE})",
    )
    parser.add_argument(
        "--project",
        metavar="NAME",
        default=None if defaults else argparse.SUPPRESS,
        help="the project: limits listings to it, and settles a bare run name several projects use",
    )


def _command(
    commands: argparse._SubParsersAction[_CommandParser],
    name: str,
    summary: str,
    handler: Handler,
    *,
    formats: tuple[str, ...] = TEXT_FORMATS,
    format_help: str = "text (default) or json",
    format_default: str | None = TEXT_FORMATS[0],
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=summary, description=summary, epilog=_EPILOG)
    _add_locations(parser, defaults=False)
    parser.add_argument("--format", choices=formats, default=format_default, help=format_help)
    parser.set_defaults(handler=handler, parser=parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The parser for `contexta ...`; a parsed namespace carries `handler` (the command to run) and
    `parser` (the command's own parser, for usage errors found after parsing)."""
    parser = argparse.ArgumentParser(prog="contexta", description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"contexta {__version__}")
    _add_locations(parser, defaults=True)
    commands = parser.add_subparsers(
        title="commands", metavar="COMMAND", required=True, parser_class=_CommandParser
    )

    runs = _command(commands, "runs", "list runs, oldest first", list_runs_command)
    runs.add_argument("--status", choices=STATUSES, help="only runs in this state")
    runs.add_argument(
        "--limit",
        type=_count(1),
        metavar="N",
        help="only N runs: the most recent, or the first in --sort order",
    )
    runs.add_argument(
        "--all",
        action="store_true",
        dest="all_executions",
        help="every execution of each run name, not only the latest (earlier ones are NAME@N)",
    )
    # Finding runs (query/_filter_parse.py has the language).
    runs.add_argument(
        "--filter",
        metavar="EXPR",
        help="only runs the expression holds for, e.g. 'metrics.accuracy > 0.9 and tags.team = nlp'",
    )
    runs.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="only runs with this tag (with this value); repeat for several",
    )
    runs.add_argument(
        "--sort", metavar="FIELDS", help="order by fields, comma-separated; '-' first for largest first"
    )
    runs.add_argument(
        "--columns",
        metavar="FIELDS",
        help="show these fields as columns, e.g. name,status,params.lr,metrics.accuracy",
    )
    runs.add_argument(
        "--offset", type=_count(0), metavar="N", help="skip N runs (the most recent N without --sort)"
    )

    run = commands.add_parser("run", help="look at one run (run show RUN)", description="Look at one run.")
    _add_locations(run, defaults=False)
    run_actions = run.add_subparsers(
        title="actions", metavar="ACTION", required=True, parser_class=_CommandParser
    )
    show = _command(
        run_actions,
        "show",
        "a run's arguments, stages, batches, deployments, artifacts and diagnostics",
        show_run_command,
    )
    show.add_argument(
        "run",
        metavar="RUN",
        help="a run ref (run:project.name) or a bare run name; RUN@N for its N-th execution",
    )

    compare = _command(
        commands,
        "compare",
        "what changed from run A to run B: metrics, artifacts, arguments, environment",
        compare_command,
    )
    compare.add_argument("left", metavar="A", help="the run to compare from")
    compare.add_argument("right", metavar="B", help="the run to compare to")

    best = _command(commands, "best", "the run with the best latest value of a metric", best_command)
    best.add_argument("metric", metavar="METRIC", help="the metric key, such as accuracy or val_loss")
    best.add_argument("runs", metavar="RUN", nargs="*", help="the runs to choose from (default: every run)")
    best.add_argument("--stage", metavar="NAME", help="only values captured in the stage of this name")
    best.add_argument("--lower-is-better", action="store_true", help="the smallest value wins (losses)")

    diagnose = _command(commands, "diagnose", "a run's issues and what is missing from it", diagnose_command)
    diagnose.add_argument("run", metavar="RUN", help="a run ref or a bare run name")
    diagnose.add_argument(
        "--fail-on",
        choices=FAIL_ON_SEVERITIES,
        help="exit 1 when an issue at least this severe exists (for CI)",
    )

    report = _command(
        commands,
        "report",
        "a report document: RUN (snapshot), A B (what changed), --multi RUN ..., or --project NAME --summary",
        report_command,
        formats=REPORT_FORMATS,
        format_help="the document format: md, html, json or csv (default: from --output's suffix, else md)",
        format_default=None,
    )
    report.add_argument("runs", metavar="RUN", nargs="*", help="one run, or two runs to compare")
    report.add_argument("--multi", action="store_true", help="several runs side by side")
    report.add_argument("--summary", action="store_true", help="the history of --project")
    report.add_argument("--output", metavar="PATH", help="write the document here (and print the path)")

    verify = _command(
        commands,
        "verify",
        "re-hash registered artifacts and check they are still the files that were registered",
        verify_command,
    )
    verify.add_argument(
        "artifact", metavar="ARTIFACT", nargs="?", help="one artifact ref (default: every artifact)"
    )

    tail = _command(
        commands,
        "tail",
        "the capture log's last lines, and with --follow the new ones as they are written",
        tail_command,
        format_help="text (default) or json (a list; JSON Lines with --follow)",
    )
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    tail.add_argument(
        "--lines", "-n", type=_count(0), default=20, metavar="N", help="how many lines to start with (20)"
    )
    tail.add_argument("--family", choices=LOG_FAMILIES, help="only this log file (default: all three)")

    _command(
        commands,
        "repair",
        "rebuild the store from the capture log (the old store is kept); run it while nothing captures",
        repair_command,
    )
    _command(
        commands, "replay", "deliver the batches sinks refused earlier, each exactly once", replay_command
    )
    _command(
        commands,
        "migrate",
        "bring a store written by an earlier version up to this one's schema (read commands never write)",
        migrate_command,
    )
    du = _command(
        commands,
        "du",
        "the workspace's space by kind (log, store, artifacts, outbox) and by run or project",
        _du_command,
    )
    du.add_argument(
        "--by", choices=DU_BY_CHOICES, default="run", help="rows per run (default), project or kind"
    )
    gc = _command(
        commands,
        "gc",
        "reclaim earlier executions as capture.retention says (nothing by default); --dry-run says what",
        _gc_command,
    )
    gc.add_argument("--dry-run", action="store_true", help="say what would be reclaimed; change nothing")
    gc.add_argument("--keep-age", metavar="AGE", help="reclaim executions that ended longer ago (30d, 12h)")
    gc.add_argument(
        "--keep-size", metavar="SIZE", help="reclaim the oldest executions until under this (50GB, 500MiB)"
    )
    gc.add_argument(
        "--keep-executions",
        type=_count(1),
        metavar="N",
        help="keep the latest N executions of each run name",
    )
    return parser
