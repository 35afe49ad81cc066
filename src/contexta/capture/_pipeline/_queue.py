"""The bounded in-process queue between capture calls and the writer thread.

`put` is the hot path: one length check against `limit` and a deque append. `limit` folds three
things into that one comparison: the capacity while the writer is busy, the wake threshold while it
sleeps (so the call that fills a batch takes the slow path and wakes it), and 0 once closed. Everything
slow (waking the writer, waiting for space, dropping, counting the loss) lives beyond the limit.

`put` is the one bounded put: every Python capture call goes through it (a sync scope through its
`_put`, bound once; the async facade through `offer`, which calls it unless it would have to wait).
The one other place that appends a record to `items` is the compiled `metric()` call
(capture/_scopes/_metric_call.c): calling back into this Python method would cost most of the time
the compiled call exists to save, so it reads `limit` and appends to the deque itself, and only
below the limit; every other case (at the limit, a sleeping writer, a closed queue) it hands to the
Python `Scope.metric`, hence here. Its parity tests (tests/capture/test_compiled_metric.py,
tests/capture/test_item_layouts.py) hold it to what `put` and `Scope.metric` do. Structural items (a
scope opening or closing, a flush barrier) enter through `put_structural`, which no limit bounds.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any

from contexta.capture._items import (
    BARRIER,
    CONTEXT,
    ENVIRONMENT,
    KIND,
    SCOPE,
    T_NS,
    QueuedFacts,
    ScopeContext,
    as_context,
    pop_left,
    queued_facts,
    record_count,
    records_of,
)
from contexta.errors import LifecycleError

__all__ = ["CaptureQueue", "DropEpisode"]

_STRUCTURAL = frozenset((BARRIER, ENVIRONMENT, SCOPE))  # never dropped by an overflow policy

# The writer never waits longer than this for a lock a capturing thread holds. On SIGTERM the main
# thread runs the signal handler, which waits for the writer, wherever it was interrupted: maybe
# holding one of these locks, which it cannot release until the handler returns. The writer then
# carries on without what the lock guards (a sleep-state update, a notification, an episode count),
# each of which is picked up again on a later cycle.
_WRITER_LOCK_WAIT_S = 0.05

# A take pops at most this many items before it wakes callers blocked on a full queue (and in one
# C-level call): they get room after ~0.1 ms instead of after a whole 16,384-item take (1-4 ms, one
# uninterrupted hold of the GIL).
_TAKE_CHUNK = 2048

# The most `limit_cell` holds (an int64): a larger limit (`capture.queue_capacity` may be any positive
# int) is stored as this, which no deque's length reaches, so the compiled call compares as `put` does.
_CELL_MOST = 2**63 - 1


@dataclass(slots=True)
class DropEpisode:
    """Records of one owner (run or deployment) lost to overflow since the writer last looked."""

    context: ScopeContext
    policy: str
    count: int
    first_ns: int
    last_ns: int


class CaptureQueue:
    """A bounded FIFO of capture items with a `block` / `drop_newest` / `drop_oldest` overflow policy."""

    def __init__(self, capacity: int, wake_threshold: int, overflow: str, block_timeout_s: float):
        self.capacity = capacity
        self.wake_threshold = min(wake_threshold, capacity)
        self.overflow = overflow
        self.block_timeout_s = block_timeout_s
        self._reset()

    def _reset(self) -> None:
        # Scopes hold `items` and read `limit` directly on the hot path; after a fork the deque is
        # cleared in place (the parent's writer writes those items), never replaced.
        items: deque[tuple[Any, ...]] | None = getattr(self, "items", None)
        if items is None:
            self.items: deque[tuple[Any, ...]] = deque()
        else:
            items.clear()
        # `limit` is mirrored in `limit_cell`, where the compiled call reads it as a machine integer
        # (through a buffer it holds while bound, hence kept in place like `items`).
        if getattr(self, "limit_cell", None) is None:
            self.limit_cell: array[int] = array("q", [0])
        # Read without a lock on the hot path; written only under `_limit_lock` (by `_set_limit`), so
        # a writer going to sleep can never reopen a queue that `close()` has just shut. Re-entrant: a
        # signal handler that flushes may interrupt this thread while it holds it (waking the writer).
        self._limit_lock = threading.RLock()
        self._set_limit(self.capacity)
        self._closed = False
        self._wake = threading.Event()
        self.writer_idle = False
        self.writer_idents: set[int | None] = set()
        self._space = threading.Condition(threading.Lock())
        self._waiting = 0
        self._drop_lock = threading.Lock()
        # Re-entrant: a signal handler in the main thread may ask for statistics while it holds it.
        self._count_lock = threading.RLock()
        self.taken_records = 0  # records the writer has taken out of `items`
        # Capture calls that waited for room under `block`, and how long they waited in all (written
        # under `_space`): the caller's cost of a writer that falls behind, otherwise invisible.
        self.blocked_calls = 0
        self.blocked_ns = 0
        self._drops: dict[str, DropEpisode] = {}
        self.dropped = 0

    def reinit_after_fork(self) -> None:
        """Forget the parent's queued items and locks: the parent's writer writes those."""
        self._reset()

    def __len__(self) -> int:
        return len(self.items)

    def pending_records(self) -> int:
        """How many records the queued items will become (see `record_count`)."""
        return record_count(list(self.items))  # one C-level copy: callers keep appending meanwhile

    def accepted_records(self) -> int:
        """How many records have entered the queue and not been dropped: those the writer took and
        those still queued, counted together so the sum never dips while a batch is taken."""
        with self._count_lock:
            return self.taken_records + self.pending_records()

    def put(self, item: tuple[Any, ...]) -> bool:
        """Enqueue `item`; False when the overflow policy dropped it (the loss is counted)."""
        items = self.items
        if len(items) < self.limit:
            items.append(item)
            return True
        return self.put_beyond_limit(item)

    def put_beyond_limit(self, item: tuple[Any, ...]) -> bool:
        """`put` for an item that met `limit`: wake a sleeping writer, or take the full-queue path."""
        items = self.items
        if not self._closed and len(items) < self.capacity:
            items.append(item)
            if self.writer_idle and len(items) >= self.wake_threshold:
                self.wake()
            return True
        return self.put_full(item)

    def offer(self, item: tuple[Any, ...]) -> bool | None:
        """Enqueue `item` without ever waiting: True when queued, False when the policy dropped it, None
        when the queue is full under `block` (the async facade then awaits room and offers again)."""
        if self._closed or len(self.items) < self.capacity:
            return self.put(item)
        if self.overflow == "block" and threading.get_ident() not in self.writer_idents:
            self.wake()
            return None
        return self.put_full(item)

    def give_up_waiting(self, item: tuple[Any, ...]) -> None:
        """An awaiting caller waited `block_timeout_s` for room: count `item` as dropped."""
        self._count_drop(item, "block_timeout")

    def put_control(self, item: tuple[Any, ...]) -> None:
        """Enqueue a control item (a flush barrier) regardless of capacity and policy, and wake the writer."""
        self.put_structural(item)
        self.wake()

    def put_structural(self, item: tuple[Any, ...]) -> None:
        """Enqueue an item that must never wait or be dropped, whatever the policy: a scope opening or
        closing (a lost close would leave a stage open forever) or a flush barrier. There are only as
        many as scopes, so they cannot grow the queue without bound the way records could."""
        if self._closed:
            raise LifecycleError(
                "this Contexta is closed; open a new one to capture more", code="contexta_closed"
            )
        self.items.append(item)

    def _set_limit(self, limit: int) -> None:
        """The one place `limit` is written (its readers: `put` and the compiled call)."""
        self.limit_cell[0] = min(limit, _CELL_MOST)
        self.limit = limit

    def wake(self) -> None:
        self._set_writer_idle(False)
        self._wake.set()

    def wait_for_items(self, timeout: float) -> None:
        """Writer side: sleep until woken or `timeout` passes."""
        self._set_writer_idle(True, _WRITER_LOCK_WAIT_S)
        if len(self.items) < self.wake_threshold:
            self._wake.wait(timeout)
        self._wake.clear()
        self._set_writer_idle(False, _WRITER_LOCK_WAIT_S)

    def _set_writer_idle(self, idle: bool, lock_wait: float = -1) -> None:
        """While the writer sleeps, the call that brings a batch's worth of items goes beyond `limit`."""
        if not self._limit_lock.acquire(timeout=lock_wait):
            return  # the writer's own update, skipped: `limit` is only ever written under the lock
        try:
            self.writer_idle = idle
            if not self._closed:
                self._set_limit(self.wake_threshold if idle else self.capacity)
        finally:
            self._limit_lock.release()

    def take(self, limit: int) -> list[tuple[Any, ...]]:
        """Writer side: up to `limit` items, oldest first; wakes callers blocked on a full queue."""
        return self.take_with_facts(limit)[0]

    def take_with_facts(self, limit: int) -> tuple[list[tuple[Any, ...]], QueuedFacts]:
        """`take`, and the `QueuedFacts` of what it took, read in the one pass the take makes anyway
        (the writer would ask them again otherwise)."""
        items = self.items
        # Held so `accepted_records` never sees records in neither place; not waited for long (a
        # signal handler may hold it in the main thread): then the count may dip for a moment.
        locked = self._count_lock.acquire(timeout=_WRITER_LOCK_WAIT_S)
        try:
            if self.overflow == "drop_oldest":  # callers pop too: take one at a time
                taken = []
                popleft = items.popleft
                try:
                    for _ in range(limit):
                        taken.append(popleft())
                except IndexError:
                    pass
            else:  # only this thread pops, so `count` items are there; popped at C speed, in chunks
                count = min(limit, len(items))
                popleft = items.popleft
                taken = pop_left(popleft, min(count, _TAKE_CHUNK))
                if count > _TAKE_CHUNK:
                    self._notify_space()  # there is room already: blocked callers need not wait for the rest
                    for start in range(_TAKE_CHUNK, count, _TAKE_CHUNK):  # the GIL may change hands between
                        taken += pop_left(popleft, min(_TAKE_CHUNK, count - start))
            facts = queued_facts(taken)
            self.taken_records += facts.records
        finally:
            if locked:
                self._count_lock.release()
            self._notify_space()
        return taken, facts  # a waiting caller not notified looks again within 50 ms

    def _notify_space(self) -> None:
        """Wake callers blocked on a full queue (not waited for long: see _WRITER_LOCK_WAIT_S)."""
        if self._waiting and self._space.acquire(timeout=_WRITER_LOCK_WAIT_S):
            try:
                self._space.notify_all()
            finally:
                self._space.release()

    def take_drop_episodes(self) -> list[DropEpisode]:
        if not self._drops or not self._drop_lock.acquire(timeout=_WRITER_LOCK_WAIT_S):
            return []  # none, or counted later
        try:
            episodes, self._drops = list(self._drops.values()), {}
        finally:
            self._drop_lock.release()
        return episodes

    def close(self) -> None:
        """Refuse new items; items already queued stay for the writer to drain."""
        with self._limit_lock:
            self._closed = True
            self._set_limit(0)  # every put goes beyond the limit, where a closed queue refuses it
        with self._space:
            self._space.notify_all()

    # -- the full-queue path -------------------------------------------------------------------

    def put_full(self, item: tuple[Any, ...]) -> bool:
        if self._closed:
            raise LifecycleError(
                "this Contexta is closed; open a new one to capture more", code="contexta_closed"
            )
        if self.overflow == "block" and threading.get_ident() not in self.writer_idents:
            return self._put_blocking(item)
        if self.overflow == "drop_oldest":
            return self._put_replacing_oldest(item)
        self._count_drop(item, "drop_newest" if self.overflow != "block" else "writer_reentrant")
        return False

    def _put_blocking(self, item: tuple[Any, ...]) -> bool:
        began_ns = time.monotonic_ns()
        deadline = time.monotonic() + self.block_timeout_s
        with self._space:
            self._waiting += 1
            try:
                while len(self.items) >= self.capacity or self._closed:
                    if self._closed:
                        raise LifecycleError(
                            "this Contexta was closed while the capture call waited", code="contexta_closed"
                        )
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._count_drop(item, "block_timeout")
                        return False
                    self.wake()
                    self._space.wait(min(remaining, 0.05))
            finally:
                self._waiting -= 1
                self.blocked_calls += 1
                self.blocked_ns += time.monotonic_ns() - began_ns
            self.items.append(item)
        return True

    def _put_replacing_oldest(self, item: tuple[Any, ...]) -> bool:
        items = self.items
        kept: list[tuple[Any, ...]] = []  # structural items met on the way; they are never dropped
        while items:
            oldest = items.popleft()
            if KIND(oldest) in _STRUCTURAL:
                kept.append(oldest)
                continue
            self._count_drop(oldest, "drop_oldest")
            break
        items.extendleft(reversed(kept))
        items.append(item)
        self.wake()
        return True

    def _count_drop(self, item: tuple[Any, ...], policy: str) -> None:
        context = as_context(CONTEXT(item))
        t_ns = T_NS(item)
        records = records_of(item)  # a metrics() call is one record per key
        with self._drop_lock:
            self.dropped += records
            episode = self._drops.get(context.owner_ref)
            if episode is None:
                self._drops[context.owner_ref] = DropEpisode(context, policy, records, t_ns, t_ns)
            else:
                episode.count += records
                episode.first_ns = min(episode.first_ns, t_ns)
                episode.last_ns = max(episode.last_ns, t_ns)
