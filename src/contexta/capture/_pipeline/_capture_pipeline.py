"""The capture pipeline: one bounded queue, one writer thread, the sinks, and the process hooks.

Two process-wide hooks keep data safe without the user's help: an `atexit` flush that waits a bounded
time (a stuck sink is abandoned with a warning, never allowed to hang the interpreter), and an
`os.register_at_fork` handler that gives a forked child (a DataLoader worker) its own queue and writer.
Before the exit flush, each pipeline's `exit_hooks` close the runs left open
(capture/_scopes/_process_endings.py).
"""

from __future__ import annotations

import atexit
import multiprocessing.util as multiprocessing_util
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Sequence

from contexta.capture._items import barrier_item
from contexta.capture._log._batch import CaptureBatch
from contexta.capture._pipeline._outbox import Outbox, ReplayReport
from contexta.capture._pipeline._queue import CaptureQueue
from contexta.capture._pipeline._results import CaptureStats, FlushReport
from contexta.capture._pipeline._writer import BatchWriter
from contexta.capture._sinks._base import CaptureLogSink, DeliveryNote, Sink
from contexta.capture._sinks._composite import CompositeSink
from contexta.config import CaptureConfig
from contexta.errors import CaptureError, CaptureWarning, NotFoundError, ValidationError

__all__ = ["CapturePipeline"]

# The writer sleeps until this many records wait (or flush_interval_s passes), then takes up to
# max_batch_size. Waking at a full batch meant that, under a steady trickle, every batch was 4,096
# records long and its Python work held the GIL for tens of milliseconds at a stretch: an asyncio
# service saw 10-70 ms loop stalls. Small batches under light load, full ones under backlog.
WAKE_AT_RECORDS = 256

# A strong set: a pipeline whose Contexta was dropped unclosed must still be flushed at exit.
_LIVE_PIPELINES: set[CapturePipeline] = set()


def _flatten(sinks: Sequence[Sink]) -> list[Sink]:
    flat: list[Sink] = []
    for sink in sinks:
        if isinstance(sink, CompositeSink):
            flat.extend(_flatten(sink.sinks))
        else:
            flat.append(sink)
    names = [sink.name for sink in flat]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValidationError(
            f"sink names must be unique; {', '.join(duplicates)} appear more than once",
            code="sink_name_duplicate",
        )
    return flat


class CapturePipeline:
    """Capture calls `put` items; `flush`, `close` and `stats` are the caller's view of the writer."""

    def __init__(self, config: CaptureConfig, sinks: Sequence[Sink], outbox: Outbox):
        self.config = config
        self.sinks = tuple(_flatten(sinks))
        self.queue = CaptureQueue(
            config.queue_capacity,
            min(WAKE_AT_RECORDS, config.max_batch_size),
            config.overflow,
            config.block_timeout_s,
        )
        self.put = self.queue.put  # the hot path, bound once
        self.writer = BatchWriter(
            self.queue, self.sinks, outbox, config.max_batch_size, config.flush_interval_s
        )
        self.outbox = outbox
        # Called with the exit deadline (a time.monotonic() instant) before `close_at_exit` delivers:
        # they close the runs left open, so their closings are delivered too
        # (capture/_scopes/_process_endings.py).
        self.exit_hooks: list[Callable[[float], None]] = []
        self._closed = False
        self._close_lock = threading.Lock()
        self.writer.start()
        _LIVE_PIPELINES.add(self)
        # multiprocessing children leave through os._exit, skipping atexit. Their exit finalizers do run,
        # but the child's bootstrap clears that registry after fork, so register from an after-fork hook.
        multiprocessing_util.register_after_fork(self, _register_multiprocessing_exit)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- barriers ------------------------------------------------------------------------------

    def _barrier(self, timeout: float | None) -> bool:
        """Wait until everything enqueued before this call has been handed to every sink and flushed."""
        if self.writer.owns_current_thread():
            raise CaptureError(
                "flush() was called from inside a sink; a sink cannot wait for itself", code="flush_reentrant"
            )
        if not self.writer.alive and not self._closed:
            self.writer.start()
        done = threading.Event()
        self.queue.put_control(barrier_item(time.time_ns(), done))
        return done.wait(timeout)

    def _report(self, complete: bool) -> FlushReport:
        return FlushReport(complete=complete, stats=self.stats(), errors=self.writer.take_errors())

    def flush(self, timeout: float | None = None) -> FlushReport:
        """Returns once every record captured before the call is in every sink; raises on timeout."""
        if self._closed:
            return self._report(True)
        if not self._barrier(timeout):
            raise CaptureError(
                f"flush did not finish within {timeout}s; {len(self.queue)} items are still queued "
                "(is a sink stuck?)",
                code="flush_timeout",
                details={"pending": len(self.queue)},
            )
        return self._report(True)

    def barrier_for_scope_exit(self) -> bool:
        """A run leaving its `with` block: wait for its records, but never longer than block_timeout_s.
        True once they are in every sink."""
        if self._closed or self.writer.owns_current_thread():
            return False
        if self._barrier(self.config.block_timeout_s):
            return True
        warnings.warn(
            f"contexta: the capture writer did not finish within {self.config.block_timeout_s}s when a "
            f"run ended; {len(self.queue)} items are still queued (is a sink stuck?)",
            CaptureWarning,
            stacklevel=3,
        )
        return False

    def wait_until_delivered(self, timeout: float) -> bool:
        """Wait at most `timeout` for everything enqueued so far to reach every sink; no report (a
        signal handler calls it, and may have interrupted this thread while it read one)."""
        return self._closed or self._barrier(timeout)

    @property
    def undelivered(self) -> int:
        """Captured items not yet in every sink: queued, in the writer's hands, or in a sink's lane."""
        return len(self.queue) + self.writer.counters().undelivered

    def close(self, timeout: float | None = None) -> FlushReport:
        """Flush, stop the writer and close the sinks; idempotent. Raises if `timeout` passes first."""
        report = self._shutdown(timeout)
        if not report.complete:
            raise CaptureError(
                f"close did not finish within {timeout}s; {len(self.queue)} items were still queued "
                "and the sinks were left open (is a sink stuck?)",
                code="close_timeout",
                details={"pending": len(self.queue)},
            )
        return report

    def _shutdown(self, timeout: float | None) -> FlushReport:
        with self._close_lock:
            if self._closed:
                return self._report(True)
            self._closed = True
        deadline = None if timeout is None else time.monotonic() + timeout
        finished = self._barrier(timeout) if self.writer.alive else True
        self.queue.close()
        self.writer.stop()
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        finished = self.writer.join(remaining) and finished
        if finished:
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as error:
                    self.writer.report_error(
                        f"sink {sink.name!r} failed to close: {type(error).__name__}: {error}"
                    )
        _LIVE_PIPELINES.discard(self)
        self.exit_hooks.clear()  # they hold the session: let a closed Contexta go
        return self._report(finished)

    def close_at_exit(self) -> None:
        """The interpreter is exiting: close what was left open, deliver what we can, all within
        exit_timeout_s, then let go."""
        if self._closed:
            return
        timeout = self.config.exit_timeout_s
        deadline = time.monotonic() + timeout
        for hook in list(self.exit_hooks):
            try:
                hook(deadline)
            except Exception as error:  # never turn interpreter exit into a traceback
                print(f"contexta: at exit: {type(error).__name__}: {error}", file=sys.stderr)
        report = self._shutdown(max(0.0, deadline - time.monotonic()))
        if not report.complete:
            print(
                f"contexta: the capture writer did not finish within {timeout}s at exit; "
                f"{self.undelivered} captured items were abandoned "
                "(a sink is stuck or too slow).",
                file=sys.stderr,
            )
        elif report.errors:
            print("contexta: at exit: " + "; ".join(report.errors), file=sys.stderr)

    # -- statistics and recovery ---------------------------------------------------------------

    def stats(self) -> CaptureStats:
        writer = self.writer.counters()
        pending = self.queue.pending_records()
        return CaptureStats(
            queued=self.queue.accepted_records() + writer.added,
            written=writer.written,
            dropped=self.queue.dropped,
            failed=writer.failed,
            batches=writer.batches,
            pending=pending,
            outboxed=writer.outboxed,
            lost=writer.lost,
            sink_failures=writer.sink_failures,
            blocked_calls=self.queue.blocked_calls,
            blocked_s=self.queue.blocked_ns / 1e9,
        )

    def replay_outbox(self) -> ReplayReport:
        """Deliver parked batches to the sinks that refused them (by sink name).

        The capture log (a `CaptureLogSink`) is given the batch's delivery
        note, so a replay cut short after it wrote is not written twice by the next one; any other
        sink gets `write(batch)`, and can tell a batch it has seen by `batch.batch_id` (the store
        does)."""
        by_name = {sink.name: sink for sink in self.sinks}

        def deliver(sink_name: str, batch: CaptureBatch, note: DeliveryNote) -> None:
            sink = by_name.get(sink_name)
            if sink is None:
                raise NotFoundError(f"no sink named {sink_name!r} is configured", code="sink_not_found")
            if isinstance(sink, CaptureLogSink):
                sink.write_replayed(batch, note)
            else:
                sink.write(batch)
            sink.flush()

        self.flush()
        return self.outbox.replay(deliver)

    # -- fork ----------------------------------------------------------------------------------

    def after_fork_in_child(self) -> None:
        """In a forked child (called by the fork handler below): a queue and a writer of its own."""
        self.queue.reinit_after_fork()
        self._close_lock = threading.Lock()
        if self._closed:
            return
        self.writer.restart_after_fork()


def _register_multiprocessing_exit(pipeline: CapturePipeline) -> None:
    reference = weakref.ref(pipeline)

    def close_child_pipeline() -> None:
        live = reference()
        if live is not None:
            live.close_at_exit()

    multiprocessing_util.Finalize(None, close_child_pipeline, exitpriority=100)


def _after_fork_in_child() -> None:
    for pipeline in list(_LIVE_PIPELINES):
        pipeline.after_fork_in_child()


def _close_all_at_exit() -> None:
    for pipeline in list(_LIVE_PIPELINES):
        try:
            pipeline.close_at_exit()
        except Exception as error:  # never turn interpreter exit into a traceback
            print(f"contexta: at exit: {type(error).__name__}: {error}", file=sys.stderr)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all_at_exit)
