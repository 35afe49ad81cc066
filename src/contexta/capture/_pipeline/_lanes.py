"""Sink lanes: each sink receives batches on a thread of its own.

The writer builds a batch once and hands it to every lane; the lanes write in parallel. Sinks spend
most of their time in calls that release the GIL (os.write, SQLite), so the log file, the store and
the writer's own Python work overlap instead of taking turns. A lane holds at most `max_records`
records (LANE_BATCHES full batches; any one batch is taken into an empty lane whatever its size),
which keeps memory bounded and pushes back on the writer when a sink is slow.

A sink that fails a batch with an encoding error (TypeError, ValueError, OverflowError) is given it
once more if the batch held records no sink can encode, now replaced (see _unencodable.py): one
such record never costs its neighbours. The capture log replaces them as it encodes, so it is never
given a batch twice (its lines are sent ahead to the log-writer process in order).

A sink that redelivers what it refused (a PostgreSQL store: `redelivers_parked`) keeps capture order
across an outage: once it refuses a batch, each later batch is parked behind it (at once, without
waiting on a server that is down) until the lane has delivered this process's parked batches, oldest
first, after which it writes directly again. The lane retries after 1 s, then less and less often
(up to every 30 s), also while no batch arrives, and at every flush. Only a refusal that says the sink
is unreachable (`refused_unreachable`) holds the later batches back: a batch the sink can never take
(a value PostgreSQL refuses) is parked alone, as any sink's is, and never stops the ones after it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from contexta._courtesy import make_way, new_slice
from contexta.capture._log._batch import CaptureBatch
from contexta.capture._log._unencodable import ENCODING_ERRORS, Isolated
from contexta.capture._sinks._base import CaptureLogSink, FollowsCaptureLog, Sink

__all__ = ["LANE_BATCHES", "BatchTicket", "ParkedBehindError", "SinkLane"]

_FIRST_RETRY_S = 1.0
_LONGEST_RETRY_S = 30.0


class ParkedBehindError(Exception):
    """Why a batch was parked without being offered to its sink: earlier ones wait to be delivered."""


# How many full batches' worth of records a lane may hold (131,072 at the default max_batch_size).
# Counted in records, not batches: a lane that held two batches, however small, stopped the writer
# from taking while the capture log waited 30-160 ms per batch on the log-writer process, so the
# queue filled and callers blocked for whole writer cycles; now the writer keeps taking while a lane
# is busy, up to this many records, and a burst fits in the queue and the lanes together.
LANE_BATCHES = 8


@dataclass(slots=True)
class BatchTicket:
    """One batch's progress through all lanes; the last lane to finish settles the counters."""

    size: int
    remaining: int
    logs_pending: int = 0  # capture-log lanes that have not yet finished this batch
    refused: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    logged: threading.Event = field(default_factory=threading.Event)

    def log_finished(self) -> None:
        """A capture-log lane is done with this batch (written or refused)."""
        with self.lock:
            self.logs_pending -= 1
            if self.logs_pending <= 0:
                self.logged.set()

    def finish(self, refused: bool) -> bool:
        """Record one lane's outcome; True for the lane that finished last."""
        with self.lock:
            self.refused = self.refused or refused
            self.remaining -= 1
            return self.remaining == 0


class SinkLane:
    """Delivers batches to one sink, in order, on its own thread."""

    def __init__(
        self,
        sink: Sink,
        on_refused: Callable[[Sink, CaptureBatch, Exception], None],
        on_settled: Callable[[BatchTicket], None],
        on_sink_error: Callable[[Sink, str, Exception], None],
        on_isolated: Callable[[CaptureBatch, list[Isolated]], None] | None = None,
        *,
        max_records: int,
        redeliver: Callable[[Sink], bool] | None = None,
    ):
        self.sink = sink
        self.max_records = max_records
        self.is_capture_log = isinstance(sink, CaptureLogSink)
        self.after_capture_log = isinstance(sink, FollowsCaptureLog)
        self._send_ahead = sink.send_ahead if isinstance(sink, CaptureLogSink) else None
        self._on_refused = on_refused
        self._on_settled = on_settled
        self._on_sink_error = on_sink_error  # (sink, what it failed to do, error)
        self._on_isolated = on_isolated  # (batch, records replaced because they cannot be encoded)
        # (sink) -> whether none of this process's parked batches for it is left (see the module doc)
        self._redeliver = redeliver if getattr(sink, "redelivers_parked", False) else None
        self._unreachable: Callable[[Exception], bool] = getattr(sink, "refused_unreachable", lambda _: True)
        self._backlog = False
        self._retry_at = 0.0
        self._backoff = _FIRST_RETRY_S
        self._pending: deque[tuple[CaptureBatch, BatchTicket] | threading.Event | None] = deque()
        self._condition = threading.Condition(threading.Lock())
        self.pending_records = 0
        self._thread = threading.Thread(target=self._run, name=f"contexta-sink-{sink.name}", daemon=True)
        self._thread.start()

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def submit(self, batch: CaptureBatch, ticket: BatchTicket) -> None:
        with self._condition:
            while self.pending_records and self.pending_records + len(batch) > self.max_records:
                self._condition.wait()
        # Only the writer submits, so the room stays ours while the sink looks ahead (unlocked: the
        # look-ahead may wait on a pipe).
        if self._send_ahead is not None:
            try:
                self._send_ahead(batch)
            except Exception as error:  # the batch is still written by write(); say why it was not early
                self._on_sink_error(self.sink, "look ahead at a batch", error)
        with self._condition:
            self._pending.append((batch, ticket))
            self.pending_records += len(batch)
            self._condition.notify_all()

    def barrier(self) -> threading.Event:
        """An event set once every batch submitted so far is written and the sink flushed."""
        done = threading.Event()
        with self._condition:
            self._pending.append(done)
            self._condition.notify_all()
        return done

    def stop(self) -> None:
        with self._condition:
            self._pending.append(None)
            self._condition.notify_all()

    def join(self, timeout: float | None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _write(self, batch: CaptureBatch) -> None:
        try:
            self.sink.write(batch)
        except ENCODING_ERRORS:
            if self.is_capture_log or not batch.isolate_unencodable():
                raise
            self.sink.write(batch)  # once more, each record no sink can encode replaced

    def _delivered_backlog(self, *, now: bool = False) -> bool:
        """Whether this sink's parked batches are all delivered (trying again when it is time)."""
        if not self._backlog:
            return True
        if not now and time.monotonic() < self._retry_at:
            return False
        assert self._redeliver is not None
        try:
            done = self._redeliver(self.sink)
        except Exception:
            done = False
        if done:
            self._backlog = False
            self._backoff = _FIRST_RETRY_S
        else:
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, _LONGEST_RETRY_S)
        return done

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending:
                    if self._backlog:
                        self._condition.wait(max(0.0, self._retry_at - time.monotonic()))
                        if not self._pending:
                            break
                    else:
                        self._condition.wait()
                if not self._pending:
                    idle = True
                else:
                    idle = False
                    item = self._pending[0]
            new_slice()  # woken for work: its first pause comes a whole slice from now
            if idle:  # no batch came while batches wait parked: time to try them again
                self._delivered_backlog()
                continue
            if item is None:
                return
            if isinstance(item, threading.Event):
                self._delivered_backlog(now=True)
                try:
                    self.sink.flush()
                except Exception as error:
                    self._on_sink_error(self.sink, "flush", error)
                item.set()
            else:
                batch, ticket = item
                if self.after_capture_log:
                    ticket.logged.wait()
                refused = False
                try:
                    if not self._delivered_backlog():
                        raise ParkedBehindError(
                            f"earlier batches for {self.sink.name!r} are parked and go first, in order"
                        )
                    self._write(batch)
                except Exception as error:
                    refused = True
                    if self._redeliver is not None and not self._backlog and self._unreachable(error):
                        self._backlog = True
                        self._retry_at = time.monotonic() + self._backoff
                    self._on_refused(self.sink, batch, error)
                finally:
                    if batch.isolated and self._on_isolated is not None:
                        self._on_isolated(batch, batch.take_isolated())
                    if self.is_capture_log:
                        ticket.log_finished()
                if ticket.finish(refused):
                    self._on_settled(ticket)
                make_way()
            with self._condition:
                self._pending.popleft()
                if not isinstance(item, threading.Event):
                    self.pending_records -= len(item[0])
                self._condition.notify_all()
