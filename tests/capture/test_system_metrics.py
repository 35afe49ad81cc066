"""System metrics beside a run (issue 20, item 4): `ctx.run(..., system_metrics=...)` samples the
process and the machine (psutil) and GPUs (NVML) into the run's `system` stage from a daemon thread.

Each test captures real work into a workspace under `tmp_path` and reads the run back through the
queries a user calls (`list_stages`, `get_metric_series`, `get_run_snapshot`). The GPU path runs the
real sampling code against a fake `pynvml` module (this machine has no GPU).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import anyio
import numpy as np
import psutil
import pytest

from contexta import Contexta
from contexta.capture import CaptureWarning
from contexta.contract import StructuredEventRecord
from contexta.errors import ConfigurationError, MissingDependencyError, ValidationError

INTERVAL = 0.05
THREAD = "contexta-system-metrics"
HOST_KEYS = {
    "process.cpu_percent",
    "process.rss_bytes",
    "system.cpu_percent",
    "system.memory_used_bytes",
    "system.memory_available_bytes",
    "system.net_sent_bytes_per_s",
    "system.net_recv_bytes_per_s",
}
# A container may see no disks (psutil.disk_io_counters() is None): then there are no disk keys.
DISK_KEYS = {"system.disk_read_bytes_per_s", "system.disk_write_bytes_per_s"}


def _ctx(tmp_path: Path, **capture: Any) -> Contexta:
    return Contexta(workspace=tmp_path / "ws", config={"project_name": "p", "capture": capture})


def _work(seconds: float) -> float:
    """Real work: matrix products for `seconds`; returns the time it took."""
    start = time.monotonic()
    matrix = np.random.default_rng(0).random((200, 200))
    while time.monotonic() - start < seconds:
        matrix = matrix @ matrix
        matrix /= matrix.max()
    return time.monotonic() - start


def _sampler_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == THREAD]


def _series(ctx: Contexta, run_id: str, key: str) -> list[Any]:
    return list(ctx.get_metric_series(run_id, key, stage="system").points)


def _keys(ctx: Contexta, run_id: str) -> set[str]:
    snapshot = ctx.get_run_snapshot(run_id)
    return {
        record.payload.metric_key
        for record in snapshot.records
        if record.envelope.record_type == "metric" and record.envelope.stage_execution_ref.endswith(".system")
    }


def _events(ctx: Contexta, run_id: str) -> list[StructuredEventRecord]:
    return [r for r in ctx.get_run_snapshot(run_id).records if isinstance(r, StructuredEventRecord)]


def test_a_run_with_system_metrics_records_plausible_samples_in_its_system_stage(tmp_path: Path) -> None:
    cores = psutil.cpu_count() or 1
    with _ctx(tmp_path) as ctx:
        started = time.monotonic()
        with ctx.run("train", system_metrics=INTERVAL) as run:
            with run.stage("train") as stage:
                stage.metric("loss", 0.5, step=0)
            _work(1.0)
            sampler = run._system_metrics
            assert sampler is not None
        elapsed = time.monotonic() - started
        samples = sampler.stats().samples

        stages = {stage.name: stage.status for stage in ctx.list_stages(run.run_id)}
        assert stages == {"system": "completed", "train": "completed"}
        keys = _keys(ctx, run.run_id)
        assert keys >= HOST_KEYS
        assert keys - HOST_KEYS <= DISK_KEYS  # no gpu.* keys without a GPU, nothing unexpected
        # Leaving the run is the flush barrier: every sample taken is in the store already.
        rss = _series(ctx, run.run_id, "process.rss_bytes")
        assert len(rss) == samples
        # About one sample per interval (a loaded machine may take fewer; never more).
        assert elapsed / INTERVAL / 3 <= samples <= elapsed / INTERVAL + 1
        assert all(point.value > 1_000_000 for point in rss)  # a Python with numpy holds megabytes
        process_cpu = [p.value for p in _series(ctx, run.run_id, "process.cpu_percent")]
        assert all(0 <= value <= 100 * cores for value in process_cpu)
        assert max(process_cpu) > 10  # the matrix products kept a core busy
        assert all(0 <= p.value <= 100 for p in _series(ctx, run.run_id, "system.cpu_percent"))
        available = _series(ctx, run.run_id, "system.memory_available_bytes")
        assert all(0 < p.value < psutil.virtual_memory().total for p in available)
        assert all(p.value >= 0 for p in _series(ctx, run.run_id, "system.net_recv_bytes_per_s"))
        # Time is the x axis: steps are milliseconds since the run opened, rising with the samples.
        steps = [point.step for point in rss]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)
        assert steps[0] > 0 and steps[-1] <= elapsed * 1000
        # ... and units say what the numbers are.
        units = {
            record.payload.metric_key: record.payload.unit
            for record in ctx.get_run_snapshot(run.run_id).records
            if record.envelope.record_type == "metric"
        }
        assert units["process.rss_bytes"] == "bytes"
        assert units["process.cpu_percent"] == "percent"
        assert units["system.net_sent_bytes_per_s"] == "bytes/s"


def test_system_metrics_are_off_by_default(tmp_path: Path) -> None:
    with _ctx(tmp_path) as ctx:
        with ctx.run("plain") as run:
            assert _sampler_threads() == []
            run.metric("loss", 1.0)
        assert [stage.name for stage in ctx.list_stages(run.run_id)] == []


def test_the_config_interval_turns_them_on_and_a_run_may_turn_them_off(tmp_path: Path) -> None:
    with _ctx(tmp_path, system_metrics_interval_s=INTERVAL) as ctx:
        with ctx.run("configured") as run:
            _work(0.3)
        with ctx.run("opted-out", system_metrics=False) as quiet:
            _work(0.1)
        assert [stage.name for stage in ctx.list_stages(run.run_id)] == ["system"]
        assert _series(ctx, run.run_id, "process.rss_bytes")
        assert ctx.list_stages(quiet.run_id) == []


def test_system_metrics_true_uses_the_configured_interval_or_one_second(tmp_path: Path) -> None:
    with _ctx(tmp_path) as ctx, ctx.run("default", system_metrics=True) as run:
        assert run._system_metrics is not None and run._system_metrics._interval == 1.0
    with _ctx(tmp_path, system_metrics_interval_s=0.25) as ctx, ctx.run("cfg", system_metrics=True) as run:
        assert run._system_metrics is not None and run._system_metrics._interval == 0.25


def test_a_run_shorter_than_the_interval_still_gets_its_last_sample(tmp_path: Path) -> None:
    with _ctx(tmp_path) as ctx:
        with ctx.run("short", system_metrics=0.4) as run:
            _work(0.3)  # more than half an interval: the closing takes the sample
        assert len(_series(ctx, run.run_id, "process.rss_bytes")) == 1


def test_the_sampler_thread_ends_when_the_run_closes(tmp_path: Path) -> None:
    with _ctx(tmp_path) as ctx:
        with ctx.run("r", system_metrics=INTERVAL):
            assert len(_sampler_threads()) == 1
        assert _sampler_threads() == []
        run = ctx.run("closed-explicitly", system_metrics=INTERVAL)
        run.close("failed")
        assert _sampler_threads() == []
        # Sampling did its work to the end: a failed run's system stage is completed, not failed.
        assert [s.status for s in ctx.list_stages(run.run_id)] == ["completed"]
        ctx.run("closed-with-the-contexta", system_metrics=INTERVAL)
    assert _sampler_threads() == []


def test_an_async_run_samples_too(tmp_path: Path) -> None:
    async def main(ctx: Contexta) -> str:
        async with ctx.arun("served", system_metrics=INTERVAL) as run:
            await anyio.to_thread.run_sync(_work, 0.3)
            run_id = run.run_id
        assert _sampler_threads() == []
        return run_id

    with _ctx(tmp_path) as ctx:
        run_id = anyio.run(main, ctx)
        assert _keys(ctx, run_id) >= HOST_KEYS


class _FakeNvml(ModuleType):
    """What the sampler uses of pynvml: two GPUs; the second cannot report its temperature."""

    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801, N818 (pynvml's name)
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.initialised = 0
        self.shut_down = 0

    def nvmlInit(self) -> None:  # noqa: N802 (pynvml's names)
        self.initialised += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shut_down += 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(gpu=37 + handle, memory=5)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(used=(handle + 1) * 2**30, total=16 * 2**30, free=0)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802
        return 150_000 + handle * 1_000  # milliwatts

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:  # noqa: N802
        assert sensor == self.NVML_TEMPERATURE_GPU
        if handle == 1:
            raise self.NVMLError_NotSupported("Not Supported")
        return 61


def test_each_gpu_that_nvml_reports_is_sampled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with _ctx(tmp_path) as ctx:
        with ctx.run("gpu", system_metrics=INTERVAL) as run:
            _work(0.4)
        assert nvml.initialised == 1 and nvml.shut_down == 1

        values = {
            key: [p.value for p in _series(ctx, run.run_id, key)]
            for key in _keys(ctx, run.run_id)
            if key.startswith("gpu.")
        }
        assert values.keys() == {
            "gpu.0.utilization",
            "gpu.0.memory_used_bytes",
            "gpu.0.power_watts",
            "gpu.0.temperature_c",
            "gpu.1.utilization",
            "gpu.1.memory_used_bytes",
            "gpu.1.power_watts",
        }
        samples = len(values["gpu.0.utilization"])
        assert samples >= 1
        assert values["gpu.0.utilization"] == [37.0] * samples
        assert values["gpu.1.utilization"] == [38.0] * samples
        assert values["gpu.1.memory_used_bytes"] == [2.0 * 2**30] * samples
        assert values["gpu.0.power_watts"] == [150.0] * samples
        assert values["gpu.1.power_watts"] == [151.0] * samples
        assert values["gpu.0.temperature_c"] == [61.0] * samples
        assert _events(ctx, run.run_id) == []  # an unsupported reading is no failure


def test_without_an_nvml_driver_there_are_no_gpu_keys_and_no_complaint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nvml = _FakeNvml()

    def no_driver() -> None:
        raise nvml.NVMLError("NVML Shared Library Not Found")

    monkeypatch.setattr(nvml, "nvmlInit", no_driver)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with _ctx(tmp_path) as ctx:
        with ctx.run("cpu-only", system_metrics=INTERVAL) as run:
            _work(0.2)
        assert not any(key.startswith("gpu.") for key in _keys(ctx, run.run_id))
        assert _events(ctx, run.run_id) == []


def test_a_failing_sample_is_warned_once_counted_and_never_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise OSError("/proc/meminfo is gone")

    monkeypatch.setattr(psutil, "virtual_memory", broken)
    with _ctx(tmp_path) as ctx:
        with (
            pytest.warns(CaptureWarning, match="meminfo") as warned,
            ctx.run("r", system_metrics=INTERVAL) as run,
        ):
            _work(0.4)
        assert len([w for w in warned if issubclass(w.category, CaptureWarning)]) == 1
        keys = _keys(ctx, run.run_id)
        assert "process.rss_bytes" in keys and "system.memory_used_bytes" not in keys
        (event,) = _events(ctx, run.run_id)
        assert event.payload.event_key == "system_metrics.sample_failed"
        assert event.payload.attributes["failed_samples"] == len(
            _series(ctx, run.run_id, "process.rss_bytes")
        )
        assert "meminfo" in event.payload.attributes["first_error"]
        assert [s.status for s in ctx.list_stages(run.run_id)] == ["completed"]


def test_missing_psutil_is_a_missing_dependency_error_before_the_run_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # `import psutil` raises ImportError
    with _ctx(tmp_path) as ctx:
        with pytest.raises(MissingDependencyError, match=r"contexta\[system\]") as raised:
            ctx.run("r", system_metrics=True)
        assert raised.value.code == "dependency_missing"
        with ctx.run("without") as run:  # without system metrics psutil is not needed
            run.metric("loss", 1.0)
        assert [r.name for r in ctx.list_runs()] == ["without"]
    with _ctx(tmp_path, system_metrics_interval_s=1.0) as ctx, pytest.raises(MissingDependencyError):
        ctx.run("configured")


@pytest.mark.parametrize("value", [0, 0.001, -1.0, float("nan"), float("inf"), "1s"])
def test_a_bad_interval_is_refused_at_the_call(tmp_path: Path, value: Any) -> None:
    with _ctx(tmp_path) as ctx, pytest.raises(ValidationError) as raised:
        ctx.run("r", system_metrics=value)
    assert raised.value.code == "system_metrics_invalid"


@pytest.mark.parametrize("value", [-1, 0.001, float("nan"), True, "often"])
def test_a_bad_configured_interval_is_a_configuration_error(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ConfigurationError) as raised:
        _ctx(tmp_path, system_metrics_interval_s=value)
    assert raised.value.code == "config_value_invalid"
    assert raised.value.details["key"] == "capture.system_metrics_interval_s"


def test_the_interval_may_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTA_CAPTURE_SYSTEM_METRICS_INTERVAL_S", "0.5")
    with _ctx(tmp_path) as ctx:
        assert ctx.config.capture.system_metrics_interval_s == 0.5


@pytest.fixture
def _reaped() -> Iterator[list[int]]:
    children: list[int] = []
    yield children
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_forked_child_has_no_sampler_until_it_opens_its_own_run(tmp_path: Path, _reaped: list[int]) -> None:
    with _ctx(tmp_path) as ctx:
        with ctx.run("parent", system_metrics=INTERVAL) as run:
            _work(0.2)
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: report what it sees, then leave without running atexit hooks
                status = 1
                try:
                    os.close(read_end)
                    seen = [len(_sampler_threads())]
                    with ctx.run("child", system_metrics=INTERVAL) as child:
                        _work(0.2)
                        seen.append(len(_sampler_threads()))
                    seen.append(len(_sampler_threads()))
                    seen.append(len(_series(ctx, child.run_id, "process.rss_bytes")))
                    os.write(write_end, " ".join(map(str, seen)).encode())
                    status = 0
                finally:
                    os._exit(status)
            _reaped.append(pid)
            os.close(write_end)
            with os.fdopen(read_end) as pipe:
                seen = [int(number) for number in pipe.read().split()]
            assert os.waitpid(pid, 0)[1] == 0
            _reaped.clear()
            _work(0.2)
            assert len(_sampler_threads()) == 1  # the parent's goes on
        # In the child: none inherited; one while its own run was open; none after; its samples stored.
        assert seen[:3] == [0, 1, 0]
        assert seen[3] >= 1
        assert [s.status for s in ctx.list_stages(run.run_id)] == ["completed"]
        points = _series(ctx, run.run_id, "process.rss_bytes")
        assert len(points) >= 2 and points[-1].step > 400  # sampled before and after the fork


def test_import_contexta_imports_neither_psutil_nor_nvml() -> None:
    program = "import sys, contexta; print('psutil' in sys.modules, 'pynvml' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
