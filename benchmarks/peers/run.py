"""Measure one workload against the trackers users would pick instead, side by side on this machine.

    python benchmarks/peers/run.py            # the full run: 3 repeats per tool, ~20 minutes on 2 cores
    python benchmarks/peers/run.py --quick    # a tenth of the work, one repeat: for developing the harness

Each tracker gets its own virtualenv outside the repository (`--venv-root`, reused when it already has
the tracker); Contexta and the two floors run in the project's own `.venv` (`--contexta-python`).
Every measurement is one subprocess in a fresh directory; repeats go round all tools in turn, so a
noisy hour hits every tool alike. Results go to `results/`: peers.json (every measurement),
table.md and per_call_cost.svg. Not for CI: it installs from PyPI and takes most of half an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import chart
import machine
import table
from environments import Environment, existing_environment, prepare_environment
from launch import Outcome, WorkloadSize, run_workload
from summary import ToolRecord, summarise
from tools import ASYNC_METRICS_PER_TASK, ASYNC_TASKS, FULL_CALLS, NO_TELEMETRY, TOOLS, Tool

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]
SAMPLE = 10_000
QUICK_DIVISOR = 10
QUICK_SAMPLE = 2_000
MODES = ("sync", "async", "service")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the calls, one repeat")
    parser.add_argument("--repeats", type=int, help="measurements per tool and mode (default 3, quick 1)")
    parser.add_argument(
        "--venv-root",
        type=Path,
        default=Path.home() / ".cache" / "contexta-peers",
        help="where the trackers' virtualenvs live (default ~/.cache/contexta-peers)",
    )
    parser.add_argument(
        "--contexta-python",
        type=Path,
        default=REPOSITORY / ".venv" / "bin" / "python",
        help="interpreter with contexta (and orjson) installed, for Contexta and the floors",
    )
    parser.add_argument("--only", nargs="+", metavar="TOOL", choices=[t.name for t in TOOLS])
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=["sync", "service"],
        help="sync, service (async loop with headroom) and async (saturated loop; adds ~10 minutes)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds per workload process")
    parser.add_argument(
        "--budget-minutes", type=float, default=28, help="stop starting measurements after this long"
    )
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--scratch", type=Path, help="where the fresh workdirs go (default: system temp)")
    parser.add_argument("--keep-workdirs", action="store_true")
    return parser.parse_args(argv)


def workload_size(tool: Tool, quick: bool) -> WorkloadSize:
    """The tool's workload, or a tenth of it with --quick."""
    if not quick:
        return WorkloadSize(
            tool.calls, min(SAMPLE, tool.calls), tool.async_tasks, tool.async_metrics_per_task
        )
    calls = tool.calls // QUICK_DIVISOR
    return WorkloadSize(
        calls,
        min(QUICK_SAMPLE, calls),
        max(tool.async_tasks // QUICK_DIVISOR, 10),
        tool.async_metrics_per_task,
    )


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def prepare(tools: list[Tool], arguments: argparse.Namespace) -> dict[str, Environment | str]:
    """Each distinct environment once: the interpreter to use, or why there is none."""
    prepared: dict[str, Environment | str] = {}
    for tool in tools:
        if tool.environment in prepared:
            continue
        if tool.environment == "contexta":
            found = existing_environment(arguments.contexta_python, ("contexta", "orjson"))
        else:
            found = prepare_environment(
                arguments.venv_root, tool.environment, tool.packages, tool.distributions, log
            )
        prepared[tool.environment] = found if isinstance(found, Environment) else found.reason
        if not isinstance(found, Environment):
            log(f"{tool.environment}: did not install: {found.reason}")
    return prepared


def measure_once(record: ToolRecord, python: Path, arguments: argparse.Namespace, repeat: int) -> None:
    """One measurement of a tool in each chosen mode, appended to its record."""
    tool = record.tool
    size = workload_size(tool, arguments.quick)
    env = {**NO_TELEMETRY, **tool.env}
    outcomes_of = {"sync": record.sync, "async": record.asynchronous, "service": record.service}
    for mode in arguments.modes:
        outcomes = outcomes_of[mode]
        outcome = run_workload(
            python,
            tool.workload,
            mode,
            size,
            arguments=tool.arguments,
            env=env,
            timeout_s=arguments.timeout,
            scratch=arguments.scratch,
            keep_workdir=arguments.keep_workdirs,
        )
        outcomes.append(outcome)
        log(f"{tool.name} {mode} #{repeat}: {describe(outcome)}")


def describe(outcome: Outcome) -> str:
    if outcome.result is None:
        return f"FAILED after {outcome.wall_s:.0f} s: {outcome.error}"
    result = outcome.result
    text = f"{result['records_per_s']:,.0f} records/s, read back {result['read_back']:,}/{result['calls']:,}"
    if "per_call_ns" in result:
        text += f", p50 {result['per_call_ns']['p50'] / 1000:.2f} µs, durable {result['durable_s']:.3f} s"
    else:
        text += (
            f", loop lateness p99 {result['p99_lateness_calls_ms']:.1f} ms,"
            f" worst {result['worst_lateness_calls_ms']:.1f} ms,"
            f" at close {result['worst_lateness_finish_ms']:.1f} ms"
        )
    return f"{text} ({outcome.wall_s:.0f} s)"


def write_results(run: dict[str, Any], records: list[ToolRecord], directory: Path) -> None:
    """peers.json, table.md and per_call_cost.svg from what has been measured so far."""
    rows = []
    for record in records:
        row = summarise(record)
        if row["calls"] is not None and row["calls"] != run["calls"]:
            row["label"] += f" (N={row['calls']:,})"
        row["runs"] = {
            "sync": [asdict(outcome) for outcome in record.sync],
            "async": [asdict(outcome) for outcome in record.asynchronous],
            "service": [asdict(outcome) for outcome in record.service],
        }
        rows.append(row)
    run = {**run, "rows": rows}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "peers.json").write_text(json.dumps(run, indent=1, ensure_ascii=False) + "\n")
    (directory / "table.md").write_text(table.render(run), encoding="utf-8")
    cores, cpu = run["machine"]["cores"], run["machine"]["cpu"]
    title = f"Caller cost of one metric call, p50 and p99 ({cores} cores, {cpu})"
    (directory / "per_call_cost.svg").write_text(chart.render(rows, title), encoding="utf-8")


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    if os.environ.get("CI"):
        print("benchmarks/peers installs trackers from PyPI and runs for ~20 minutes: not run in CI")
        return 2
    repeats = arguments.repeats or (1 if arguments.quick else 3)
    tools = [tool for tool in TOOLS if arguments.only is None or tool.name in arguments.only]
    started = time.perf_counter()
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = machine.describe(f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}")
    log(f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']}")

    environments = prepare(tools, arguments)
    install_s = time.perf_counter() - started
    records = []
    for tool in tools:
        environment = environments[tool.environment]
        if isinstance(environment, Environment):
            versions = {name: environment.versions.get(name, "?") for name in tool.distributions}
            records.append(ToolRecord(tool, versions=versions))
        else:
            records.append(ToolRecord(tool, install_failure=environment))
    quick_size = workload_size(TOOLS[0], arguments.quick)
    run: dict[str, Any] = {
        "command": shlex.join(["python", "benchmarks/peers/run.py", *argv]),
        "started_at": started_at,
        "machine": info,
        "contexta_python": str(arguments.contexta_python),
        "contexta_revision": machine.source_revision(REPOSITORY),
        "venv_root": str(arguments.venv_root),
        "repeats": repeats,
        "modes": arguments.modes,
        "quick": arguments.quick,
        "calls": quick_size.calls if arguments.quick else FULL_CALLS,
        "sample": quick_size.sample if arguments.quick else SAMPLE,
        "async_tasks": quick_size.tasks if arguments.quick else ASYNC_TASKS,
        "async_per_task": ASYNC_METRICS_PER_TASK,
        "install_s": install_s,
    }
    deadline = started + arguments.budget_minutes * 60
    for repeat in range(1, repeats + 1):
        for record in records:
            environment = environments[record.tool.environment]
            if not isinstance(environment, Environment):
                continue
            if time.perf_counter() > deadline:
                budget = arguments.budget_minutes
                log(f"time budget of {budget:g} min spent: {record.tool.name} #{repeat} skipped")
                continue
            measure_once(record, environment.python, arguments, repeat)
        run["duration_s"] = time.perf_counter() - started
        write_results(run, records, arguments.results)
    log(f"done in {run['duration_s'] / 60:.1f} min (installs {install_s:.0f} s): {arguments.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
