"""Live pages: noticing that the store changed, and telling each open page only what is new for it.

One watcher thread asks SQLite, every `POLL_S`, whether another connection committed since it last
asked (`PRAGMA data_version`: no page of the store is read). When one did, it reads the run states
(one narrow query) and wakes every open event stream. Each stream then asks for what its page
watches, after the cursors it holds: the points of its series captured after the last one it sent,
and the runs that appeared or changed status. Nothing is ever sent twice and no history is resent;
a series that grew by more than `MAX_POINTS_PER_EVENT` since its cursor is sent as a `reset` (the
page refetches its downsampled view) rather than as points.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from contexta.errors import ContextaError, ValidationError
from contexta.query._live import RunState, get_run_states, get_series_tail
from contexta.store import StoreDatabase, is_postgres

__all__ = ["MAX_POINTS_PER_EVENT", "POLL_S", "ChangeWatcher", "Watch", "WatchedSeries", "event_stream"]

POLL_S = 0.2  # a flushed point is on the page well within a second
HEARTBEAT_S = 15.0  # a comment line, so proxies and the browser keep the stream open
MAX_POINTS_PER_EVENT = 5000
MAX_WATCHED_SERIES = 64


@dataclass
class WatchedSeries:
    """One chart's series and the capture position of the newest point the page has."""

    run_id: str
    stage: str | None
    key: str
    cursor: int

    @classmethod
    def parse(cls, text: str) -> WatchedSeries:
        """`run_id|stage|key|cursor` (an empty stage: the whole run)."""
        parts = text.split("|")
        if len(parts) != 4 or not parts[0] or not parts[2]:
            raise ValidationError(
                f"a watched series is run_id|stage|key|cursor, got {text!r}", code="watch_invalid"
            )
        try:
            cursor = int(parts[3] or 0)
        except ValueError:
            raise ValidationError(
                f"a cursor is a whole number, got {parts[3]!r}", code="watch_invalid"
            ) from None
        if cursor < 0:
            raise ValidationError(f"a cursor is >= 0, got {cursor}", code="watch_invalid")
        return cls(parts[0], parts[1] or None, parts[2], cursor)


@dataclass
class Watch:
    """What one page watches: the run list (new runs, status changes) and some series."""

    runs: bool
    series: list[WatchedSeries] = field(default_factory=list)

    @classmethod
    def parse(cls, runs: str | None, series: Sequence[str]) -> Watch:
        if len(series) > MAX_WATCHED_SERIES:
            raise ValidationError(
                f"watch at most {MAX_WATCHED_SERIES} series on one page, got {len(series)}",
                code="watch_invalid",
            )
        return cls(runs not in (None, "", "0"), [WatchedSeries.parse(text) for text in series])


class ChangeWatcher:
    """The thread that polls the store for commits and wakes the event streams."""

    def __init__(self, database: StoreDatabase, *, poll_s: float = POLL_S) -> None:
        self._database = database
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._streams: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._closing = threading.Event()
        self.version = 0  # counts the commits noticed
        self.runs: dict[str, RunState] = {}

    def start(self) -> None:
        self.runs = self._read_runs()
        self._thread = threading.Thread(target=self._run, name="contexta-ui-watcher", daemon=True)
        self._thread.start()

    def closing(self) -> bool:
        """The server is shutting down: open streams end."""
        return self._closing.is_set()

    def end_streams(self) -> None:
        """End every open event stream now (Ctrl-C: the server waits for open responses to end)."""
        self._closing.set()
        self._wake_all()

    def stop(self) -> None:
        """Stop polling and end every open stream (the server is shutting down)."""
        self.end_streams()
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def subscribe(self) -> asyncio.Event:
        woken = asyncio.Event()
        with self._lock:
            self._streams.add((asyncio.get_running_loop(), woken))
        if self.closing():
            woken.set()
        return woken

    def unsubscribe(self, woken: asyncio.Event) -> None:
        with self._lock:
            self._streams = {entry for entry in self._streams if entry[1] is not woken}

    def _wake_all(self) -> None:
        with self._lock:
            streams = list(self._streams)
        for loop, woken in streams:
            try:
                loop.call_soon_threadsafe(woken.set)
            except RuntimeError:  # that loop already closed
                pass

    def _read_runs(self) -> dict[str, RunState]:
        return {state.execution_id: state for state in get_run_states(self._database)}

    def _marker(self) -> tuple[object, ...]:
        # data_version changes when another connection commits, but it is per connection and frozen
        # on a store read `immutable` (no writer had it open): the reader reopens when a writer
        # appears, and the files' sizes and times say so too (a new or grown write-ahead log).
        path = self._database.path
        with self._database.read() as connection:
            if is_postgres(connection):  # its write-ahead log moves on with every commit anywhere
                (position,) = connection.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
                return (str(position),)
            (version,) = connection.execute("PRAGMA data_version").fetchone()
            return id(connection), int(version), _file_marker(path), _file_marker(Path(f"{path}-wal"))

    def _run(self) -> None:
        marker: tuple[object, ...] | None = None
        while not self._stop.wait(self._poll_s):
            try:
                now = self._marker()
                if now == marker:
                    continue
                changed = marker is not None
                marker = now
                if changed:
                    self.runs = self._read_runs()
                    self.version += 1
                    self._wake_all()
            except ContextaError:  # the store is being replaced or is briefly unreadable: next poll
                marker = None
        self._database.close()  # this thread's connection


def _file_marker(path: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def _run_changes(before: dict[str, RunState], after: dict[str, RunState]) -> list[dict[str, Any]]:
    changes = []
    for execution_id, state in after.items():
        earlier = before.get(execution_id)
        if earlier is None or earlier != state:
            changes.append({**state.to_dict(), "new": earlier is None})
    return changes


def _plain(value: float | int) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _series_updates(database: StoreDatabase, watch: Watch) -> list[dict[str, Any]]:
    """New points of each watched series after its cursor; the cursors move on."""
    updates = []
    for series in watch.series:
        try:
            tail = get_series_tail(
                database,
                series.run_id,
                series.key,
                stage=series.stage,
                after_seq=series.cursor,
                limit=MAX_POINTS_PER_EVENT,
            )
        except ContextaError:
            continue  # a run deleted meanwhile, or a stage not open yet: nothing to send
        if tail.last_seq == series.cursor:
            continue
        identity: dict[str, Any] = {"run_id": series.run_id, "stage": series.stage, "key": series.key}
        series.cursor = tail.last_seq
        if tail.truncated:
            updates.append({**identity, "reset": True, "last_seq": tail.last_seq})
            continue
        updates.append(
            {
                **identity,
                "last_seq": tail.last_seq,
                "seqs": list(tail.seqs),
                "steps": list(tail.steps),
                "times": list(tail.times),
                "values": [_plain(value) for value in tail.values],
            }
        )
    return updates


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def event_stream(
    database: StoreDatabase, watcher: ChangeWatcher, watch: Watch, *, heartbeat_s: float = HEARTBEAT_S
) -> AsyncIterator[bytes]:
    """The body of `GET /api/stream`: a `hello` event, then `runs` and `series` events as the store
    changes, heartbeats between; it ends when the server stops."""
    woken = watcher.subscribe()
    runs = dict(watcher.runs)
    try:
        yield b"retry: 1000\n" + _event("hello", {"version": watcher.version})
        # Points captured between the page's fetch and this stream's start are sent at once.
        woken.set()
        while not watcher.closing():
            try:
                await asyncio.wait_for(woken.wait(), timeout=heartbeat_s)
            except TimeoutError:
                yield b": heartbeat\n\n"
                continue
            woken.clear()
            if watcher.closing():
                break
            if watch.runs:
                latest = watcher.runs
                changes = _run_changes(runs, latest)
                runs = dict(latest)
                if changes:
                    yield _event("runs", {"changes": changes})
            if watch.series:
                updates = await asyncio.to_thread(_series_updates, database, watch)
                if updates:
                    yield _event("series", {"series": updates})
    finally:
        watcher.unsubscribe(woken)
