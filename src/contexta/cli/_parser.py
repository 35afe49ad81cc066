"""The `contexta` argument parser: every command, its options, and the function that runs it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from contexta import __version__
from contexta.cli import _manage as manage
from contexta.cli._alerts import alerts_command
from contexta.cli._artifact_get import artifact_get_command
from contexta.cli._audit import audit_command
from contexta.cli._backup import backup_command, restore_command
from contexta.cli._best import best_command
from contexta.cli._compare import compare_command
from contexta.cli._diagnose import FAIL_ON_SEVERITIES, diagnose_command
from contexta.cli._document_output import REPORT_FORMATS as DOCUMENT_FORMATS
from contexta.cli._env_diff import env_diff_command
from contexta.cli._export import EXPORT_FORMATS, EXPORT_TABLES, export_command
from contexta.cli._import import IMPORT_SOURCES, import_command
from contexta.cli._lineage import lineage_command
from contexta.cli._maintenance import migrate_command, repair_command, replay_command
from contexta.cli._metrics import metrics_command
from contexta.cli._output import Output
from contexta.cli._report import REPORT_FORMATS, report_command
from contexta.cli._run_show import show_run_command
from contexta.cli._runs import list_runs_command
from contexta.cli._samples import samples_command
from contexta.cli._sync import sync_command
from contexta.cli._tail import LOG_FAMILIES, tail_command
from contexta.cli._trend import trend_command
from contexta.cli._verify import verify_command
from contexta.contract import STATUSES
from contexta.query import AGGREGATIONS, BEST_RUN_AGGREGATES, LINEAGE_DIRECTIONS

# `du` and `gc` read the whole log and the store's page statistics: their modules are imported when
# one of them runs, so every other command (`contexta runs`) starts without them.
DU_BY_CHOICES = ("run", "project", "kind")


def _du_command(args: argparse.Namespace, output: Output) -> int:
    from contexta.cli._du import du_command

    return du_command(args, output)


def _gc_command(args: argparse.Namespace, output: Output) -> int:
    from contexta.cli._gc import gc_command

    return gc_command(args, output)


def _ui_command(args: argparse.Namespace, output: Output) -> int:
    from contexta.cli._ui import ui_command  # Starlette and uvicorn load only for `contexta ui`

    return ui_command(args, output)


__all__ = ["Handler", "build_parser"]

Handler = Callable[[argparse.Namespace, Output], int]

DEFAULT_WORKSPACE = ".contexta"
TEXT_FORMATS = ("text", "json")

_DESCRIPTION = (
    "Ask questions of what Contexta captured into a workspace: list runs, show one, compare two, pick "
    "the best, diagnose, report, verify and fetch artifacts, follow the capture log live, and see and "
    "reclaim space."
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

    def _parse_optional(self, arg_string: str) -> Any:
        # `samples --sort -metrics.latency.ms`: a single dash before a name that is not one of this
        # command's short options is a value (a column sorted largest first), not an unknown option.
        single_dash = len(arg_string) > 2 and arg_string[0] == "-" and arg_string[1] != "-"
        if single_dash and arg_string[:2] not in self._option_string_actions:
            return None
        return super()._parse_optional(arg_string)


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
    if formats:  # a command with no output format of its own (`ui`) takes none
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
    runs.add_argument(
        "--archived",
        action="store_true",
        help="archived runs too (hidden by default; see `contexta archive`)",
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
    compare.add_argument(
        "--metric", metavar="KEY", action="append", dest="metrics", help="only this metric (repeatable)"
    )

    best = _command(commands, "best", "the run with the best value of a metric, and that value", best_command)
    best.add_argument("metric", metavar="METRIC", help="the metric key, such as accuracy or val_loss")
    best.add_argument("runs", metavar="RUN", nargs="*", help="the runs to choose from (default: every run)")
    best.add_argument("--stage", metavar="NAME", help="only values captured in the stage of this name")
    # Without either, the direction is inferred from the key (loss, error, latency, time: lower).
    direction = best.add_mutually_exclusive_group()
    direction.add_argument("--higher-is-better", action="store_true", help="the largest value wins")
    direction.add_argument("--lower-is-better", action="store_true", help="the smallest value wins (losses)")
    best.add_argument(
        "--aggregate",
        choices=BEST_RUN_AGGREGATES,
        help="the value compared: latest, or a statistic over samples (default: latest, or mean for a "
        "metric recorded only inside samples)",
    )

    # Samples and metrics of one run (issue 17): `contexta samples RUN`, `contexta metrics RUN`.
    samples = _command(
        commands, "samples", "a run's samples with status, metrics and event messages", samples_command
    )
    samples.add_argument("run", metavar="RUN", help="a run ref or a bare run name")
    samples.add_argument("--stage", metavar="NAME", help="only the samples of this stage")
    samples.add_argument("--failed", action="store_true", help="only the samples that failed")
    samples.add_argument(
        "--sort",
        metavar="COLUMN",
        help="order by a column, largest first with a leading - (-metrics.latency.ms)",
    )
    metrics = _command(
        commands, "metrics", "a run's metric keys per stage, with point and sample counts", metrics_command
    )
    metrics.add_argument("run", metavar="RUN", help="a run ref or a bare run name")

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

    export = _command(
        commands,
        "export",
        "runs, metric points or samples as one tidy table: Parquet, CSV or JSON Lines",
        export_command,
        formats=EXPORT_FORMATS,
        format_help="parquet, csv or jsonl (default: from -o's suffix, else csv)",
        format_default=None,
    )
    export.add_argument(
        "--table", choices=EXPORT_TABLES, default="runs", help="one row per run (default), point or sample"
    )
    export.add_argument(
        "--run",
        dest="runs",
        action="append",
        default=[],
        metavar="RUN",
        help="only this run (repeat for more; default: every run)",
    )
    export.add_argument(
        "--filter", metavar="EXPR", help="only the runs this filter expression keeps (not with --run)"
    )
    export.add_argument(
        "--columns",
        metavar="FIELDS",
        help="with --table runs: these fields as columns, e.g. name,params.lr,metrics.accuracy",
    )
    export.add_argument("-o", "--output", metavar="PATH", help="write the table here (and print the path)")

    verify = _command(
        commands,
        "verify",
        "re-hash registered artifacts and check they are still the files that were registered",
        verify_command,
    )
    verify.add_argument(
        "artifact", metavar="ARTIFACT", nargs="?", help="one artifact ref (default: every artifact)"
    )

    artifact = commands.add_parser(
        "artifact",
        help="work with one artifact (artifact get ARTIFACT DEST)",
        description="Work with one registered artifact.",
    )
    _add_locations(artifact, defaults=False)
    artifact_actions = artifact.add_subparsers(
        title="actions", metavar="ACTION", required=True, parser_class=_CommandParser
    )
    get = _command(
        artifact_actions,
        "get",
        "write an artifact's bytes to DEST, checked against its registered digest (from the copy kept "
        "in S3 or the workspace, else the original file)",
        artifact_get_command,
    )
    get.add_argument("artifact", metavar="ARTIFACT", help="an artifact ref")
    get.add_argument("destination", metavar="DEST", help="a file path, or a directory to put it in")

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

    # Across runs: `trend` and `alerts` give a terminal view (--format) or a document (--report/--output).
    trend = _command(
        commands,
        "trend",
        "one value per run over time: a metric, a stage's duration or an artifact kind's size",
        trend_command,
        format_default=None,
    )
    trend.add_argument("metric", metavar="METRIC", nargs="?", help="the metric key, such as loss")
    trend.add_argument("--stage", metavar="NAME", help="only the metric's points in the stage of this name")
    trend.add_argument("--aggregation", choices=AGGREGATIONS, help="of each run's points (default: latest)")
    trend.add_argument("--stage-duration", metavar="STAGE", help="each run's duration of this stage instead")
    trend.add_argument("--artifact-size", metavar="KIND", help="each run's total size of this artifact kind")
    alerts = _command(
        commands,
        "alerts",
        "evaluate alert rules (a TOML or JSON file) on runs; exit 1 when any rule fired (for CI)",
        alerts_command,
        format_default=None,
    )
    alerts.add_argument("rules_file", metavar="RULES_FILE", help="the rules, *.toml or *.json")
    alerts.add_argument("--run", metavar="RUN", help="only this run (default: every run of --project)")
    for across in (trend, alerts):
        across.add_argument("--filter", metavar="EXPR", help="only the runs this filter expression keeps")
        across.add_argument("--report", choices=DOCUMENT_FORMATS, help="a document: md, html, json, csv")
        across.add_argument("--output", metavar="PATH", help="write the document here (format: its suffix)")
    # Lineage, reproducibility, backup and restore.
    lineage = _command(
        commands, "lineage", "the datasets, runs, artifacts and deployments linked to REF", lineage_command
    )
    lineage.add_argument(
        "ref", metavar="REF", help="a run (ref or name), artifact, deployment or dataset ref"
    )
    lineage.add_argument(
        "--direction", choices=LINEAGE_DIRECTIONS, default="both", help="which links to follow (both)"
    )
    lineage.add_argument(
        "--depth", type=_count(0), metavar="N", help="at most N hops from REF (default: no limit)"
    )
    audit = _command(
        commands, "audit", "what re-running RUN needs and what is missing (exit 1 if any)", audit_command
    )
    audit.add_argument("run", metavar="RUN", help="a run ref or a bare run name")
    env_diff = _command(
        commands, "env-diff", "how run B's environment differs from run A's", env_diff_command
    )
    env_diff.add_argument("left", metavar="A", help="the run to compare from")
    env_diff.add_argument("right", metavar="B", help="the run to compare to")
    backup = _command(
        commands, "backup", "copy the workspace, even while it is captured into, to DEST", backup_command
    )
    backup.add_argument("destination", metavar="DEST", help="a new or empty directory")
    restore = _command(
        commands, "restore", "check the backup in SRC whole, then make it the workspace", restore_command
    )
    restore.add_argument("source", metavar="SRC", help="a directory `contexta backup` wrote")
    sync = _command(
        commands,
        "sync",
        "push a workspace captured offline into a PostgreSQL store (--to; resumable, safe to run again), "
        "or deliver the batches parked while the workspace's store was unreachable",
        sync_command,
    )
    sync.add_argument(
        "--from", dest="source", metavar="WORKSPACE", help="the workspace to push (default: --workspace)"
    )
    sync.add_argument(
        "--to", metavar="URL", help="the target store: postgresql://... (without it: the parked batches)"
    )
    _add_import_command(commands)
    # The live dashboard (issue 18): `contexta ui`.
    ui = _command(
        commands,
        "ui",
        "serve a live dashboard of the workspace, read-only, in the browser",
        _ui_command,
        formats=(),
    )
    ui.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="the address to bind (127.0.0.1)")
    ui.add_argument(
        "--port", type=_count(0), default=8765, metavar="N", help="the port (8765; 0: any free port)"
    )
    ui.add_argument("--open", action="store_true", help="open the dashboard in the default browser")
    ui.add_argument("--token", metavar="T", help="require this access token (env CONTEXTA_UI_TOKEN)")
    _add_management_commands(commands)
    return parser


def _add_import_command(commands: argparse._SubParsersAction[_CommandParser]) -> None:
    """`import mlflow PATH`, `import tensorboard LOGDIR` (issue 20): history from other trackers."""
    importing = commands.add_parser(
        "import",
        help="import runs from MLflow or TensorBoard",
        description="Import runs from another tracker.",
    )
    _add_locations(importing, defaults=False)
    sources = importing.add_subparsers(
        title="sources", metavar="SOURCE", required=True, parser_class=_CommandParser
    )
    for kind, summary, path_help in IMPORT_SOURCES:
        source = _command(sources, kind, summary, import_command)
        source.add_argument("path", metavar="PATH", help=path_help)
        source.add_argument("--progress", action="store_true", help="show a progress bar even off a terminal")
        source.set_defaults(source_kind=kind)


def _add_management_commands(commands: argparse._SubParsersAction[_CommandParser]) -> None:
    """`tag`, `untag`, `note`, `archive`, `unarchive`, `delete`: changing runs after capture."""
    run_help = "a run ref or a bare run name; RUN@N for its N-th execution only"
    tag = _command(commands, "tag", "set tags on a run (its latest execution, or RUN@N)", manage.tag_command)
    tag.add_argument("run", metavar="RUN", help=run_help)
    tag.add_argument("tags", metavar="KEY=VALUE", nargs="+", help="the tags to set (values are text)")
    untag = _command(
        commands, "untag", "remove tags from a run (its latest execution, or RUN@N)", manage.untag_command
    )
    untag.add_argument("run", metavar="RUN", help=run_help)
    untag.add_argument("names", metavar="KEY", nargs="+", help="the names of the tags to remove")
    note = _command(
        commands, "note", "add a note to a run (its latest execution, or RUN@N)", manage.note_command
    )
    note.add_argument("run", metavar="RUN", help=run_help)
    note.add_argument("text", metavar="TEXT", help="the note (quote it)")
    for name, summary, handler in (
        (
            "archive",
            "hide a run from `contexta runs` (still found by name everywhere)",
            manage.archive_command,
        ),
        ("unarchive", "list an archived run again", manage.unarchive_command),
        (
            "delete",
            "delete a run from the store (then `contexta gc` frees its log and artifacts)",
            manage.delete_command,
        ),
    ):
        command = _command(commands, name, summary, handler)
        command.add_argument("run", metavar="RUN", help=f"{run_help} (default: every execution of the run)")
    delete = commands.choices["delete"]
    delete.add_argument(
        "--yes", action="store_true", help="delete without asking (needed when not on a terminal)"
    )
