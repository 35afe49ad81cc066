"""Soak: capture at full speed for ten minutes; memory and open files must stay flat (issue 6).

Run with `python -m pytest benchmarks/test_soak.py --benchmark-enable` (about 10 minutes; not in
CI). Without the flag it soaks for 5 seconds as a smoke test.

The loop is a training job's: runs of 20,000 steps (metrics, an event every 500 steps, a sample every
100, an artifact per run), a query every run, the store on. RSS and the number of open file
descriptors are sampled every few seconds; after a 30-second warm-up their ranges must stay within
50 MB and within a handful of descriptors. The capture log is append-only and grows by tens of MB a
second here (48 GB in one ten-minute soak), so the loop also stops early, and says so, when the disk
it writes to gets down to MIN_FREE_DISK_GB.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta

SOAK_S = 600.0
SMOKE_SOAK_S = 5.0
WARM_UP_S = 30.0
SAMPLE_EVERY_S = 5.0
STEPS_PER_RUN = 20_000
MIN_FREE_DISK_GB = 10.0


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="reads RSS and descriptors from /proc")
@pytest.mark.benchmark(group="soak")
def test_ten_minutes_of_capture_keep_memory_and_descriptors_flat(benchmark: Any, tmp_path: Path) -> None:
    duration = SOAK_S if benchmark.enabled else SMOKE_SOAK_S
    warm_up = WARM_UP_S if benchmark.enabled else 0.0
    ctx = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "soak"})
    artifact = tmp_path / "checkpoint.bin"
    artifact.write_bytes(os.urandom(1 << 20))
    samples: list[tuple[float, float, int]] = []
    totals = {"records": 0, "runs": 0}
    stopped_for_disk: list[float] = []

    def soak() -> None:
        started = time.monotonic()
        next_sample = started
        number = 0
        while time.monotonic() - started < duration and not stopped_for_disk:
            with ctx.run(f"run-{number % 50}") as run:  # names repeat: re-runs replace earlier ones
                with run.stage("train") as stage:
                    for step in range(STEPS_PER_RUN):
                        stage.metric("loss", 1.0 / (step + 1), step=step)
                        if step % 500 == 0:
                            stage.event("checkpoint", message=f"step {step}", attributes={"step": step})
                        if step % 100 == 0:
                            with stage.sample(f"s-{step}") as sample:
                                sample.metric("score", 0.5)
                run.register_artifact("checkpoint", str(artifact))
            totals["records"] += STEPS_PER_RUN + STEPS_PER_RUN // 500 + STEPS_PER_RUN // 100
            totals["runs"] += 1
            ctx.list_runs()
            number += 1
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - started, _rss_mb(), _open_files()))
                next_sample = now + SAMPLE_EVERY_S
                if shutil.disk_usage(tmp_path).free < MIN_FREE_DISK_GB * 2**30:
                    stopped_for_disk.append(now - started)
        samples.append((time.monotonic() - started, _rss_mb(), _open_files()))

    try:
        benchmark.pedantic(soak, rounds=1, iterations=1)
    finally:
        stats = ctx.capture_stats()
        ctx.close()
    steady = [sample for sample in samples if sample[0] >= warm_up] or samples
    rss = [mb for _, mb, _ in steady]
    descriptors = [count for _, _, count in steady]
    benchmark.extra_info.update(
        {
            "seconds": round(samples[-1][0], 1),
            "runs": totals["runs"],
            "records": totals["records"],
            "records_per_s": round(totals["records"] / samples[-1][0]),
            "rss_mb_first_last_max": [round(rss[0], 1), round(rss[-1], 1), round(max(rss), 1)],
            "rss_range_mb": round(max(rss) - min(rss), 1),
            "open_files_range": [min(descriptors), max(descriptors)],
            "stopped_early_for_disk_at_s": stopped_for_disk[0] if stopped_for_disk else None,
        }
    )
    if stopped_for_disk:
        warnings.warn(
            f"soak stopped after {stopped_for_disk[0]:.0f} s: under {MIN_FREE_DISK_GB:g} GB free on the disk"
            f" of {tmp_path}",
            stacklevel=1,
        )
    assert (stats.dropped, stats.failed, stats.lost) == (0, 0, 0)
    assert max(rss) - min(rss) < 50, f"RSS moved by {max(rss) - min(rss):.1f} MB: {rss}"
    assert max(descriptors) - min(descriptors) <= 4, f"open descriptors moved: {descriptors}"
