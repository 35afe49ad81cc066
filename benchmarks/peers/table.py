"""The Markdown page of results: the machine and command first, then one row per tool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

COLUMNS = (
    "tool",
    "per call mean (µs)",
    "p50 (µs)",
    "p99 (µs)",
    "last call to durable (s)",
    "records/s end to end",
    "peak RSS (MiB)",
    "read back / N",
    "async records/s",
    "saturated loop: worst lateness (ms) calls / close",
    "service loop: lateness (ms) p99 / worst / close",
    "notes",
)
MISSING = "—"


def micros(value: float | None) -> str:
    if value is None:
        return MISSING
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def seconds(value: float | None) -> str:
    if value is None:
        return MISSING
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def whole(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.0f}"


def millis(value: float | None) -> str:
    if value is None:
        return MISSING
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def read_back(counts: Sequence[int], expected: int | None) -> str:
    """ "100,000/100,000" when every repeat agrees, else the range, marked when it is not N."""
    if not counts or expected is None:
        return MISSING
    low, high = min(counts), max(counts)
    got = f"{low:,}" if low == high else f"{low:,} to {high:,}"
    mark = "" if low == high == expected else " (!)"
    return f"{got}/{expected:,}{mark}"


SATURATED_COLUMNS = ("async records/s", "saturated loop: worst lateness (ms) calls / close")


def columns(saturated: bool) -> list[str]:
    """The table's columns; the saturated-loop ones only when that mode was run (`--modes ... async`)."""
    return [name for name in COLUMNS if saturated or name not in SATURATED_COLUMNS]


def row_cells(row: dict[str, Any], calls: int, saturated: bool) -> list[str]:
    per_call = row["per_call_us"]
    lateness = MISSING
    if row["async_worst_lateness_calls_ms"] is not None:
        during_calls = millis(row["async_worst_lateness_calls_ms"])
        lateness = f"{during_calls} / {millis(row['async_worst_lateness_finish_ms'])}"
    service = MISSING
    if row["service_worst_lateness_calls_ms"] is not None:
        service = " / ".join(
            millis(row[f"service_{name}_ms"])
            for name in ("p99_lateness_calls", "worst_lateness_calls", "worst_lateness_finish")
        )
    notes = [row["note"]] if row["status"] == "measured" else [row["status"]]
    if row["calls"] is not None and row["calls"] != calls:
        notes.append("every call timed")
    if row["async_calls"] is not None and row["async_calls"] != row["calls"]:
        notes.append(f"async: {row['async_tasks']:,} tasks, {row['async_calls']:,} metrics")
    for mode in ("async", "service"):
        expected = row[f"{mode}_calls"]
        if expected is not None and any(count != expected for count in row[f"{mode}_read_back"]):
            notes.append(f"{mode} read back {read_back(row[f'{mode}_read_back'], expected)}")
    if row["failures"] and row["status"] == "measured":
        notes.append(f"{len(row['failures'])} repeat(s) failed, see below")
    return [
        row["label"],
        micros(per_call["mean"]),
        micros(per_call["p50"]),
        micros(per_call["p99"]),
        seconds(row["durable_s"]),
        whole(row["records_per_s"]),
        whole(row["peak_rss_mib"]),
        read_back(row["read_back"], row["calls"]),
        *([whole(row["async_records_per_s"]), lateness] if saturated else []),
        service,
        "; ".join(notes),
    ]


def render(run: dict[str, Any]) -> str:
    """The whole table.md: provenance, the table, failures and how to read it."""
    machine = run["machine"]
    rows = run["rows"]
    saturated = any(row["async_repeats"] for row in rows)
    shown = columns(saturated)
    lines = [
        "# Contexta next to the trackers users would pick instead",
        "",
        f"Command: `{run['command']}` (started {run['started_at']}, took {run['duration_s'] / 60:.1f} min, "
        f"{run['repeats']} repeat(s) per tool, medians shown).",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"{machine['kernel']}, CPython {machine['python']}. Contexta from `{run['contexta_python']}` "
        f"(source {run['contexta_revision']}); every other tracker in its own virtualenv under "
        f"`{run['venv_root']}`.",
        "",
        "Versions: " + "; ".join(_versions(rows)) + ".",
        "",
        f"Workload: one run, one stage, N = {run['calls']:,} calls logging `loss` (a value that changes with "
        f"the step) with step = 0..N-1; {run['sample']:,} calls in the middle are timed one by one with "
        '`perf_counter_ns`. "Last call to durable" is the tool\'s own close/flush/finish; records/s is N / '
        "(all calls + close). Async: "
        f"{run['async_tasks']:,} asyncio tasks x {run['async_per_task']} metrics beside a task that sleeps "
        "1 ms in a loop and records how late it wakes, while the tasks log and while the tool closes (a "
        "sync tool is called, and closed, on the loop thread). Service loop: requests arrive 10 per ms "
        "and each awaits a simulated model call of 10 to 100 ms between metrics (one seeded schedule for "
        "every tool), the shape of an async LLM service; the loop has headroom, so its lateness is what "
        "the tool adds, plus what the garbage collector and the shared machine add to every row."
        + (
            " Saturated loop: every task starts at once and yields with `sleep(0)` after each metric, so "
            "the loop never idles; async records/s is the tool's throughput from async code, and even "
            "the deque floor sees the loop's own round of all tasks as lateness."
            if saturated
            else ""
        ),
        "",
        "| " + " | ".join(shown) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(shown) - 2) + ["---"]) + " |",
    ]
    lines += ["| " + " | ".join(row_cells(row, run["calls"], saturated)) + " |" for row in rows]
    empty = [row["empty_call_p50_us"] for row in rows if row["empty_call_p50_us"] is not None]
    lines += [
        "",
        "Per-call timings include the harness: a call of a one-line Python function plus two "
        f"`perf_counter_ns()` reads, {min(empty) * 1000:.0f} to {max(empty) * 1000:.0f} ns (p50 of an empty "
        "function, measured in each process)."
        if empty
        else "",
        "Peak RSS is `ru_maxrss` of the process that made the calls; a tracker's helper processes are not "
        "in it (W&B writes through its own `wandb-core` service process).",
    ]
    failures = [(row["label"], failure) for row in rows for failure in row["failures"]]
    if failures:
        lines += ["", "## Failures", ""] + [f"- {label}: {failure}" for label, failure in failures]
    return "\n".join(lines) + "\n"


def _versions(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen: dict[str, str] = {}
    for row in rows:
        for name, version in row["versions"].items():
            seen.setdefault(name, version)
    return [f"{name} {version}" for name, version in seen.items()]
