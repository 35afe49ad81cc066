"""System metrics sampled beside a run: `ctx.run(..., system_metrics=True)` (issue 20, item 4).

A daemon thread samples the process and the machine through psutil (and each GPU through NVML, where
the `pynvml` module of nvidia-ml-py finds a driver) every `interval` seconds, and records the values in
the run's `system` stage with `step` = whole milliseconds since the run opened and `observed_at` = the
wall time of the sample: the dashboard's "x: step" shows time since the run started, "x: time" the clock.

Why these choices:
- psutil is imported when a run asks for system metrics, never by `import contexta`; NVML likewise,
  and a machine without a GPU (or without the driver) simply records no `gpu.*` keys.
- The thread stops when the run closes, before the run's flush barrier, so its last sample is stored
  with the run; a normal stop takes one last sample of the partial interval (if at least half an
  interval has passed), so a run shorter than the interval still gets its figures.
- A sample that fails never reaches the user's program: failures are counted, warned about once
  (`CaptureWarning`), and recorded as one `system_metrics.sample_failed` event when sampling stops.
- Threads do not survive `fork()`: a forked child (a DataLoader worker) has no sampler of its parent's
  run, and never stops or closes it (`stop` does nothing outside the process that started it).

Keys (`unit` in brackets): `process.cpu_percent` [percent; 100 = one core, so up to 100 x cores],
`process.rss_bytes` [bytes], `system.cpu_percent` [percent of all cores], `system.memory_used_bytes`,
`system.memory_available_bytes` [bytes], `system.disk_read_bytes_per_s`, `system.disk_write_bytes_per_s`,
`system.net_sent_bytes_per_s`, `system.net_recv_bytes_per_s` [bytes/s, averaged over the interval], and
per GPU `gpu.<i>.utilization` [percent], `gpu.<i>.memory_used_bytes` [bytes], `gpu.<i>.power_watts` [W],
`gpu.<i>.temperature_c` [celsius].
"""

from __future__ import annotations

import importlib
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from contexta.config import MIN_SYSTEM_METRICS_INTERVAL_S
from contexta.errors import (
    CaptureWarning,
    ClosedScopeError,
    ContextaError,
    MissingDependencyError,
    ValidationError,
)

if TYPE_CHECKING:
    from contexta.capture._scopes._scope import RunScope, StageScope

__all__ = [
    "DEFAULT_INTERVAL_S",
    "STAGE_NAME",
    "SamplerStats",
    "SystemMetricsSampler",
    "require_psutil",
    "resolve_interval",
    "start_system_metrics",
]

STAGE_NAME = "system"
DEFAULT_INTERVAL_S = 1.0
# How long closing a run waits for a sample in progress (outside a process ending, which has its deadline).
_STOP_TIMEOUT_S = 5.0

PERCENT, BYTES, BYTES_PER_S, WATTS, CELSIUS = "percent", "bytes", "bytes/s", "W", "celsius"
# {unit: {key: value}}: one `metrics()` call per unit.
Readings = dict[str, dict[str, float]]


def resolve_interval(requested: bool | float | None, configured: float) -> float | None:
    """The sampling interval in seconds a run asks for, or None for no sampling.

    `requested` is the `system_metrics=` argument: None follows `capture.system_metrics_interval_s`
    (0, the default, is off); False is off for this run; True is on at the configured interval, or
    1 s when that is 0; a number is on at that many seconds (at least 0.01)."""
    if requested is None:
        return float(configured) if configured > 0 else None
    if requested is False:
        return None
    if requested is True:
        return float(configured) if configured > 0 else DEFAULT_INTERVAL_S
    if (
        not isinstance(requested, (int, float))
        or not requested >= MIN_SYSTEM_METRICS_INTERVAL_S
        or requested == float("inf")
    ):
        raise ValidationError(
            f"system_metrics must be True, False, None or a sampling interval of at least "
            f"{MIN_SYSTEM_METRICS_INTERVAL_S} seconds, got {requested!r}",
            code="system_metrics_invalid",
            details={"value": repr(requested)},
        )
    return float(requested)


def require_psutil() -> ModuleType:
    """psutil, imported; a `MissingDependencyError` (`dependency_missing`, also an ImportError, as for
    every optional feature) saying how to install it."""
    try:
        return importlib.import_module("psutil")
    except ImportError as error:
        raise MissingDependencyError(
            "system metrics (ctx.run(..., system_metrics=...) or capture.system_metrics_interval_s) need "
            "the package 'psutil', which is not installed: pip install 'contexta[system]' (or pip install "
            "psutil), or turn system metrics off",
            code="dependency_missing",
            details={"package": "psutil", "extra": "system", "reason": str(error)},
        ) from None


class _HostReadings:
    """The process and the machine, through psutil; rates are averaged since the previous reading.

    Each source is read on its own, from the first (baseline) reading on: a sandbox or container
    without /proc/diskstats or /proc/net/dev (psutil raises) loses those keys, never the others."""

    def __init__(self, psutil: ModuleType):
        self._psutil = psutil
        self._process = psutil.Process()
        self._max_percent = 100.0 * (psutil.cpu_count() or 1)
        now = time.monotonic()
        self._cpu: tuple[float, float | None] = (now, _or_none(self._process_cpu_s))
        _or_none(lambda: psutil.cpu_percent(None))  # the machine's figure runs from this call to the next
        self._disk = (now, _or_none(self._disk_counters))
        self._net = (now, _or_none(self._net_counters))

    def _process_cpu_s(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def _disk_counters(self) -> tuple[float, float] | None:
        counters = self._psutil.disk_io_counters()  # None on a machine without disks it can see
        return None if counters is None else (float(counters.read_bytes), float(counters.write_bytes))

    def _net_counters(self) -> tuple[float, float] | None:
        counters = self._psutil.net_io_counters()
        return None if counters is None else (float(counters.bytes_sent), float(counters.bytes_recv))

    def read(self, into: Readings, failed: Callable[[str, BaseException], None]) -> None:
        """Add this reading to `into`; a source that fails is reported to `failed` and left out."""
        now = time.monotonic()
        try:
            previous_at, previous_cpu = self._cpu
            cpu = self._process_cpu_s()
            self._cpu = (now, cpu)
            elapsed = now - previous_at
            if elapsed > 0 and previous_cpu is not None:
                # /proc counts CPU time in clock ticks (10 ms): over a short interval the quotient can
                # overshoot by a tick, so it is kept within what the cores can give.
                percent = 100.0 * (cpu - previous_cpu) / elapsed
                into[PERCENT]["process.cpu_percent"] = min(max(percent, 0.0), self._max_percent)
            into[BYTES]["process.rss_bytes"] = float(self._process.memory_info().rss)
        except Exception as error:
            failed("process", error)
        try:
            into[PERCENT]["system.cpu_percent"] = float(self._psutil.cpu_percent(None))
        except Exception as error:
            failed("machine cpu", error)
        try:
            memory = self._psutil.virtual_memory()
            into[BYTES]["system.memory_used_bytes"] = float(memory.used)
            into[BYTES]["system.memory_available_bytes"] = float(memory.available)
        except Exception as error:
            failed("machine memory", error)
        for name, source, keys in (
            ("disk", self._disk_counters, ("system.disk_read_bytes_per_s", "system.disk_write_bytes_per_s")),
            ("network", self._net_counters, ("system.net_sent_bytes_per_s", "system.net_recv_bytes_per_s")),
        ):
            try:
                self._rates(name, source(), now, keys, into[BYTES_PER_S])
            except Exception as error:
                failed(name, error)

    def _rates(
        self,
        name: str,
        counters: tuple[float, float] | None,
        now: float,
        keys: tuple[str, str],
        into: dict[str, float],
    ) -> None:
        previous_at, previous = self._disk if name == "disk" else self._net
        if name == "disk":
            self._disk = (now, counters)
        else:
            self._net = (now, counters)
        elapsed = now - previous_at
        if counters is None or previous is None or elapsed <= 0:
            return
        for key, value, before in zip(keys, counters, previous, strict=True):
            # A counter that went backwards (a device removed, a wrap) gives no rate, not a negative one.
            if value >= before:
                into[key] = (value - before) / elapsed


class _GpuReadings:
    """Each GPU NVML sees; None from `open` where there is no pynvml, no driver or no GPU."""

    def __init__(self, nvml: ModuleType, handles: list[Any]):
        self._nvml = nvml
        self._handles = handles
        # (gpu index, what) NVML said it does not support: not asked again, and no failure.
        self._unsupported: set[tuple[int, str]] = set()
        not_supported = getattr(nvml, "NVMLError_NotSupported", None)
        self._not_supported: type[BaseException] | None = (
            not_supported
            if isinstance(not_supported, type) and issubclass(not_supported, BaseException)
            else None
        )

    @classmethod
    def open(cls) -> _GpuReadings | None:
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError:
            return None
        try:
            nvml.nvmlInit()
        except Exception:  # NVMLError: no driver, no library (a CPU machine): quietly no GPU metrics
            return None
        try:
            handles = [nvml.nvmlDeviceGetHandleByIndex(index) for index in range(nvml.nvmlDeviceGetCount())]
        except Exception:
            _quietly(nvml.nvmlShutdown)
            return None
        if not handles:
            _quietly(nvml.nvmlShutdown)
            return None
        return cls(nvml, handles)

    def read(self, into: Readings, failed: Callable[[str, BaseException], None]) -> None:
        nvml = self._nvml
        fields: tuple[tuple[str, str, Callable[[Any], float]], ...] = (
            ("utilization", PERCENT, lambda h: float(nvml.nvmlDeviceGetUtilizationRates(h).gpu)),
            ("memory_used_bytes", BYTES, lambda h: float(nvml.nvmlDeviceGetMemoryInfo(h).used)),
            ("power_watts", WATTS, lambda h: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0),  # milliwatts
            (
                "temperature_c",
                CELSIUS,
                lambda h: float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
            ),
        )
        for index, handle in enumerate(self._handles):
            for what, unit, measure in fields:
                if (index, what) in self._unsupported:
                    continue
                try:
                    into[unit][f"gpu.{index}.{what}"] = measure(handle)
                except Exception as error:
                    if self._not_supported is not None and isinstance(error, self._not_supported):
                        self._unsupported.add((index, what))
                    else:
                        failed(f"gpu.{index}.{what}", error)

    def close(self) -> None:
        _quietly(self._nvml.nvmlShutdown)


_T = TypeVar("_T")


def _or_none(read: Callable[[], _T]) -> _T | None:
    """`read()`, or None when it fails (a first reading: the next one reports the failure)."""
    try:
        return read()
    except Exception:
        return None


def _quietly(call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:
        pass


@dataclass(frozen=True, slots=True)
class SamplerStats:
    """What sampling cost and how it went: samples recorded, samples with a failing source, and the
    sampler thread's own CPU time (`time.thread_time`) per sample, in total and at worst."""

    samples: int
    failed_samples: int
    cpu_s_total: float
    cpu_s_worst: float

    @property
    def cpu_s_mean(self) -> float:
        return self.cpu_s_total / self.samples if self.samples else 0.0


class SystemMetricsSampler:
    """Samples into `stage` every `interval_s` seconds from a daemon thread until `stop`."""

    def __init__(self, stage: StageScope, interval_s: float, psutil: ModuleType):
        self._stage = stage
        self._interval = interval_s
        self._psutil = psutil
        self._pid = os.getpid()
        self._started = time.monotonic()
        self._last_sample = self._started
        self._stopping = threading.Event()
        self._final_sample = True
        self._samples = 0
        self._failed_samples = 0
        self._first_failure: str | None = None
        self._cpu_total = 0.0
        self._cpu_worst = 0.0
        self._thread = threading.Thread(target=self._run, name="contexta-system-metrics", daemon=True)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def stats(self) -> SamplerStats:
        return SamplerStats(self._samples, self._failed_samples, self._cpu_total, self._cpu_worst)

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, deadline: float | None = None) -> None:
        """Stop sampling and wait (bounded) for the thread; record failures, if any, as one event;
        close the `system` stage `completed` whatever the run's ending: sampling did its work up to
        the end, and a failed run must not read as a failed `system` stage (`diagnose_run` would
        name it as a stage to rerun). `deadline` (a time.monotonic() instant) is given when the
        process is ending: then no last sample is taken and no wait goes beyond it."""
        if os.getpid() != self._pid:
            return  # a forked child: the sampler and its run are the parent's
        self._final_sample = deadline is None
        self._stopping.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            timeout = _STOP_TIMEOUT_S if deadline is None else max(0.0, deadline - time.monotonic())
            self._thread.join(timeout)
        if self._stage.status != "open":
            return
        try:
            if self._failed_samples:
                self._stage.event(
                    "system_metrics.sample_failed",
                    message=f"{self._failed_samples} of the system-metric samples had a source that failed; "
                    f"the first: {self._first_failure}",
                    level="warning",
                    attributes={"failed_samples": self._failed_samples, "first_error": self._first_failure},
                )
            self._stage.close("completed")
        except ContextaError:
            pass  # the Contexta was closed meanwhile: its closing stands

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        gpus: _GpuReadings | None = None
        try:
            host = _HostReadings(self._psutil)
            gpus = _GpuReadings.open()
            next_at = self._started + self._interval
            while not self._stopping.wait(max(0.0, next_at - time.monotonic())):
                self._sample(host, gpus)
                next_at += self._interval
                now = time.monotonic()
                if next_at < now:  # a late sample (a busy machine): the next one is an interval on
                    next_at = now + self._interval
            if self._final_sample and time.monotonic() - self._last_sample >= self._interval / 2:
                self._sample(host, gpus)
        except Exception as error:  # never the user's program's problem
            self._failed("sampler", error)
        finally:
            if gpus is not None:
                gpus.close()

    def _sample(self, host: _HostReadings, gpus: _GpuReadings | None) -> None:
        cpu_before = time.thread_time()
        failed: list[bool] = []

        def note(source: str, error: BaseException) -> None:
            if not failed:
                failed.append(True)
                self._failed(source, error)

        readings: Readings = {PERCENT: {}, BYTES: {}, BYTES_PER_S: {}, WATTS: {}, CELSIUS: {}}
        host.read(readings, note)
        if gpus is not None:
            gpus.read(readings, note)
        now = time.monotonic()
        self._last_sample = now
        step = int((now - self._started) * 1000)
        try:
            for unit, values in readings.items():
                if values:
                    self._stage.metrics(values, step=step, unit=unit)
        except ClosedScopeError as error:  # the run ended without stopping it (its Contexta closed)
            note("recording", error)
            self._stopping.set()  # nothing more can be recorded: the thread ends
        except Exception as error:  # a full queue past capture.block_timeout_s ...
            note("recording", error)
        self._samples += 1
        spent = time.thread_time() - cpu_before
        self._cpu_total += spent
        self._cpu_worst = max(self._cpu_worst, spent)

    def _failed(self, source: str, error: BaseException) -> None:
        """Count a failing sample; warn about the first only (a sampler must not flood the program)."""
        self._failed_samples += 1
        if self._first_failure is None:
            self._first_failure = f"{source}: {type(error).__name__}: {error}"
            warnings.warn(
                f"contexta: a system-metrics sample failed ({self._first_failure}); sampling goes on, "
                "further failures are counted and recorded when the run closes, not warned about",
                CaptureWarning,
                stacklevel=2,
            )


def start_system_metrics(run: RunScope, interval_s: float) -> SystemMetricsSampler:
    """Open the run's `system` stage and start sampling into it every `interval_s` seconds."""
    psutil = require_psutil()
    sampler = SystemMetricsSampler(run.stage(STAGE_NAME), interval_s, psutil)
    sampler.start()
    return sampler
