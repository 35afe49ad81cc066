"""The background writer: drains the queue in batches and hands each batch to every sink.

It never lets a failure reach the user's program: a sink that raises gets its batch parked in the
outbox, a record that cannot be built or encoded becomes a degraded marker (see _unencodable.py),
and every loss is counted, warned about once per sink, and reported by the next `flush()` /
`close()`.
"""

from __future__ import annotations

import threading
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contexta._courtesy import make_way, new_slice
from contexta.capture._items import (
    BARRIER,
    BARRIER_DONE,
    CONTEXT,
    KIND,
    T_NS,
    QueuedFacts,
    as_context,
    record_count,
)
from contexta.capture._log._batch import CaptureBatch
from contexta.capture._log._builder import BatchItems, EntryBuilder
from contexta.capture._log._unencodable import ENCODING_ERRORS, REASON_CODE, Isolated
from contexta.capture._pipeline._lanes import LANE_BATCHES, BatchTicket, SinkLane
from contexta.capture._pipeline._outbox import Outbox
from contexta.capture._pipeline._queue import CaptureQueue, DropEpisode
from contexta.capture._sinks._base import DeliveryNote, Sink
from contexta.errors import CaptureWarning

__all__ = ["BatchWriter", "WriterCounters"]


_DROP_MESSAGES = {
    "drop_newest": "the capture queue was full and overflow='drop_newest' refused new records",
    "drop_oldest": "the capture queue was full and overflow='drop_oldest' discarded the oldest records",
    "block_timeout": "the capture queue stayed full longer than block_timeout_s, so records were dropped",
    "writer_reentrant": "a sink captured records from inside the writer while the queue was full",
}


@dataclass(frozen=True, slots=True)
class WriterCounters:
    """What the writer has done so far, read at one moment (see `CaptureStats` for the meanings).

    `in_hands` counts items taken from the queue that are being built into a batch, `in_lanes` the
    records handed to sink lanes and not yet written by every sink: with the queue's length they make
    everything captured and not yet delivered."""

    added: int
    written: int
    failed: int
    batches: int
    outboxed: int
    lost: int
    in_hands: int
    in_lanes: int
    sink_failures: Mapping[str, int]

    @property
    def undelivered(self) -> int:
        return self.in_hands + self.in_lanes


class BatchWriter:
    """Owns the writer thread and the counters of what it delivered, failed or lost."""

    def __init__(
        self,
        queue: CaptureQueue,
        sinks: Sequence[Sink],
        outbox: Outbox,
        max_batch_size: int,
        flush_interval_s: float,
    ):
        self.queue = queue
        self.sinks = tuple(sinks)
        self.outbox = outbox
        self.max_batch_size = max_batch_size
        self.flush_interval_s = flush_interval_s
        self.builder = EntryBuilder()
        self._thread: threading.Thread | None = None
        self.lanes: list[SinkLane] = []
        self._counter_lock = threading.Lock()
        self.reset_counters()

    def reset_counters(self) -> None:
        self.added = 0  # records the writer added to what it took (markers of lost records)
        self.in_flight = 0
        self.written = 0
        self.failed = 0
        self.batches = 0
        self.outboxed = 0
        self.lost = 0
        self.dropped_reported = 0
        self.sink_failures: Counter[str] = Counter()
        self._errors: list[str] = []
        self._errors_lock = threading.Lock()
        self._warned: set[str] = set()
        self._episodes: dict[str, DropEpisode] = {}
        self._stopping = False

    # -- thread lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._counter_lock = threading.Lock()
        self.lanes = [
            SinkLane(
                sink,
                self._park,
                self._settle,
                self._sink_failed,
                self._isolated,
                max_records=LANE_BATCHES * self.max_batch_size,
                redeliver=self._redeliver,
            )
            for sink in self.sinks
        ]
        self._capture_log_lanes = sum(lane.is_capture_log for lane in self.lanes)
        self._thread = threading.Thread(target=self._run, name="contexta-writer", daemon=True)
        self._thread.start()
        self.queue.writer_idents = {self._thread.ident, *(lane.ident for lane in self.lanes)}

    def restart_after_fork(self) -> None:
        self.builder.reset_ids()
        self.reset_counters()
        self.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def owns_current_thread(self) -> bool:
        """True inside the writer or a sink lane (where waiting for a flush would wait for oneself)."""
        return threading.get_ident() in self.queue.writer_idents

    def counters(self) -> WriterCounters:
        """A snapshot of the counters (taken together under the lock that the lanes settle under)."""
        in_lanes = sum(lane.pending_records for lane in self.lanes)
        with self._counter_lock:
            return WriterCounters(
                added=self.added,
                written=self.written,
                failed=self.failed,
                batches=self.batches,
                outboxed=self.outboxed,
                lost=self.lost,
                in_hands=self.in_flight,
                in_lanes=in_lanes,
                sink_failures=dict(self.sink_failures),
            )

    def stop(self) -> None:
        """Ask the thread to finish once the queue is empty (the caller waits on a barrier first)."""
        self._stopping = True
        self.queue.wake()

    def join(self, timeout: float | None) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def take_errors(self) -> tuple[str, ...]:
        with self._errors_lock:
            errors, self._errors = tuple(self._errors), []
        return errors

    def report_error(self, text: str, warn_key: str | None = None) -> None:
        """Keep `text` for the next flush report; with `warn_key`, also warn (once per key)."""
        with self._errors_lock:
            self._errors.append(text)
        if warn_key is not None and warn_key not in self._warned:
            self._warned.add(warn_key)
            warnings.warn(f"contexta: {text}", CaptureWarning, stacklevel=2)

    # -- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        queue = self.queue
        while True:
            taken, facts = queue.take_with_facts(self.max_batch_size)
            if taken:
                self._process(taken, facts)
            elif self._stopping:
                self._deliver([], finish_episodes=True)
                self._flush_sinks()
                for lane in self.lanes:
                    lane.stop()
                for lane in self.lanes:
                    lane.join(None)
                return
            else:
                if self._episodes:
                    self._deliver([], finish_episodes=True)
                queue.wait_for_items(self.flush_interval_s)
                new_slice()

    def _process(self, taken: list[tuple[Any, ...]], facts: QueuedFacts) -> None:
        self.in_flight = len(taken)
        try:
            self._process_taken(taken, facts)
        finally:
            self.in_flight = 0

    def _process_taken(self, taken: list[tuple[Any, ...]], facts: QueuedFacts) -> None:
        new_episodes = self.queue.take_drop_episodes()
        for episode in new_episodes:
            self._merge_episode(episode)
        if not facts.barrier:  # the common cycle
            self._deliver(taken, finish_episodes=not new_episodes, facts=facts)
            return
        pending: list[tuple[Any, ...]] = []
        for item in taken:
            if KIND(item) == BARRIER:
                self._deliver(pending, finish_episodes=True)
                pending = []
                self._flush_sinks()
                BARRIER_DONE(item).set()
            else:
                pending.append(item)
        # An episode ends once a whole cycle passes without new drops.
        self._deliver(pending, finish_episodes=not new_episodes)

    def _deliver(
        self, pending: list[tuple[Any, ...]], *, finish_episodes: bool, facts: QueuedFacts | None = None
    ) -> None:
        """Build and hand the lanes a batch of `pending` (`facts`: its `QueuedFacts`, when known)."""
        episodes = self._take_finished_episodes() if finish_episodes else []
        if not pending and not episodes:
            return
        self.builder.begin()
        items: BatchItems
        if facts is not None and facts.only_metrics:
            # Single metrics pass through as they are: the taken list becomes the batch's, not copied
            # (a copy touched every tuple again, one more cache miss each, while capturing threads wait).
            items = pending
        else:
            items = []
            try:
                if facts is None:
                    self.builder.build(pending, items)
                else:
                    self.builder.build(pending, items, all_metrics=False, others=facts.others)
            except Exception:
                items = self._build_each(pending)
        for episode in episodes:
            self._append_degraded_marker(items, episode)
        # The records the batch holds beyond those taken from the queue: markers for lost ones.
        added = len(items) - (record_count(pending) if facts is None else facts.records)
        batch = CaptureBatch.from_writer(items, self.builder.finish(items))
        ticket = BatchTicket(len(batch), len(self.lanes), self._capture_log_lanes)
        if not self._capture_log_lanes:
            ticket.logged.set()
        with self._counter_lock:  # lanes add to `added` too (markers of records they could not encode)
            self.added += added
            self.batches += 1
        if not self.lanes:
            self._settle(ticket)
        for lane in self.lanes:
            lane.submit(batch, ticket)
        # Once per batch, not between its steps: while a loop captures at full speed this thread gets
        # the GIL back only every switch interval, and a pause within the batch halved how much it
        # moved out of the queue each time (the queue then filled and the loop blocked: measured).
        make_way()

    def _settle(self, ticket: BatchTicket) -> None:
        with self._counter_lock:
            if ticket.refused:
                self.failed += ticket.size
            else:
                self.written += ticket.size

    def _build_each(self, pending: list[tuple[Any, ...]]) -> BatchItems:
        """Slow path after a build failure: keep every good record, mark each bad one degraded."""
        items: BatchItems = []
        for item in pending:
            try:
                self.builder.build([item], items)
            except Exception as error:
                context = as_context(CONTEXT(item))
                self.builder.degraded(
                    items,
                    context,
                    "record_unbuildable",
                    f"a captured record could not be built: {error!r}",
                    1,
                    T_NS(item),
                    T_NS(item),
                )
                self.report_error(f"a record of {context.owner_ref} could not be built: {error!r}", "build")
        return items

    def _isolated(self, batch: CaptureBatch, isolated: list[Isolated]) -> None:
        """Count and report records replaced because no sink can encode them (each once). A lost one
        is `failed` and `lost`, and its marker a record the writer added (it is written in its place),
        so `queued == written + failed` still holds; a kept one (a scope or artifact record written
        with its unencodable values replaced) is written, and only reported."""
        lost = [record for record in isolated if not record.kept]
        with self._counter_lock:
            self.added += len(lost)
            self.failed += len(lost)
            self.lost += len(lost)
        if lost:
            first = lost[0]
            self.report_error(
                f"{len(lost)} record(s) could not be encoded; each was replaced by a degraded record "
                f"({REASON_CODE}). The first: a {first.payload_type} ({first.ref}): {first.error}",
                REASON_CODE,
            )
        for record in isolated:
            if record.kept:
                self.report_error(
                    f"a {record.payload_type} record of {record.ref} held values that cannot be encoded "
                    f"({record.error}); it was written with each replaced by text saying what it was",
                    REASON_CODE,
                )

    def _park(self, sink: Sink, batch: CaptureBatch, error: Exception) -> None:
        with self._counter_lock:
            self.sink_failures[sink.name] += 1
        try:
            try:
                path = self.outbox.park(sink.name, batch, error)
            except ENCODING_ERRORS:  # the outbox encodes like the log: replace what cannot be, once
                if not batch.isolate_unencodable():
                    raise
                path = self.outbox.park(sink.name, batch, error)
        except Exception as outbox_error:
            with self._counter_lock:
                self.lost += len(batch)
            self.report_error(
                f"sink {sink.name!r} failed ({type(error).__name__}: {error}) and the outbox could not keep "
                f"its {len(batch)} records ({type(outbox_error).__name__}: {outbox_error}); they are lost",
                f"lost:{sink.name}",
            )
            return
        with self._counter_lock:
            self.outboxed += len(batch)
        self.report_error(
            f"sink {sink.name!r} failed ({type(error).__name__}: {error}); {len(batch)} records parked in "
            f"{path.parent} for ctx.replay_outbox()",
            f"sink:{sink.name}",
        )

    def _redeliver(self, sink: Sink) -> bool:
        """Deliver what this process parked for `sink`, oldest first (its lane calls this once the
        sink refused a batch; see _lanes.py); True once nothing of ours is left parked for it."""

        def deliver(sink_name: str, batch: CaptureBatch, note: DeliveryNote) -> None:
            sink.write(batch)
            sink.flush()

        unreachable: Callable[[Exception], bool] = getattr(sink, "refused_unreachable", lambda _: True)
        return self.outbox.redeliver_own(sink.name, deliver, lambda error: not unreachable(error))

    def _sink_failed(self, sink: Sink, action: str, error: Exception) -> None:
        self.report_error(
            f"sink {sink.name!r} failed to {action}: {type(error).__name__}: {error}", f"{action}:{sink.name}"
        )

    def _flush_sinks(self) -> None:
        for done in [lane.barrier() for lane in self.lanes]:
            done.wait()

    # -- drop episodes -------------------------------------------------------------------------

    def _merge_episode(self, episode: DropEpisode) -> None:
        known = self._episodes.get(episode.context.owner_ref)
        if known is None:
            self._episodes[episode.context.owner_ref] = episode
        else:
            known.count += episode.count
            known.first_ns = min(known.first_ns, episode.first_ns)
            known.last_ns = max(known.last_ns, episode.last_ns)

    def _take_finished_episodes(self) -> list[DropEpisode]:
        for episode in self.queue.take_drop_episodes():
            self._merge_episode(episode)
        episodes = list(self._episodes.values())
        self._episodes = {}
        return episodes

    def _append_degraded_marker(self, items: BatchItems, episode: DropEpisode) -> None:
        message = _DROP_MESSAGES.get(episode.policy, "records were dropped")
        self.builder.degraded(
            items,
            episode.context,
            "capture.dropped",
            f"{episode.count} records dropped: {message}",
            episode.count,
            episode.first_ns,
            episode.last_ns,
            {"policy": episode.policy},
        )
        self.dropped_reported += episode.count
        self.report_error(
            f"{episode.count} records of {episode.context.owner_ref} dropped ({episode.policy})",
            f"drop:{episode.policy}",
        )
