"""The log-writer process: a child that assembles and appends the capture log's metric lines.

Assembling lines is most of the writer's Python work, and in one process it competes for the GIL
with the very loop being measured. The capture log starts this child once its batches show sustained
load, and from then on sends each batch's segments (a pickle of a few columns per batch) instead of
writing lines itself. Requests are answered in order, one answer per batch, so a write that fails is
reported for the batch that caused it, exactly as an in-process write would.

The child runs `_line_writer.py` as a script with `-P` (no script directory on sys.path), so it
imports only the standard library and orjson and is ready in tens of milliseconds. It ignores
Ctrl-C, SIGTERM and SIGHUP (sent to the whole process group, they reach it too) and ends when its
input closes: when the sink closes, or when this process dies however it dies, after appending every
request it fully received.
"""

from __future__ import annotations

import os
import pickle
import select
import subprocess
import sys
import threading
import time
import warnings
from collections import deque
from pathlib import Path

from contexta._courtesy import make_way
from contexta.capture._log import _line_writer as protocol
from contexta.capture._log._batch import CaptureBatch
from contexta.capture._log._line_writer import NO_LIMITS, Segment, SegmentLimits
from contexta.errors import CaptureWarning

__all__ = ["LogProcess", "LogProcessGoneError", "RecordOffload"]

_F_SETPIPE_SZ = 1031  # Linux: a 1 MiB pipe takes a whole batch in one write
_CLOSE_TIMEOUT_S = 5.0
# How long the capture log's lane waits for a starting child before writing a batch itself (tens of
# milliseconds, typically). Encoding in this process held the GIL for ~30 ms per 16k records, stalling
# the caller's loop; waiting releases the GIL while the writer keeps taking. Kept short: records that
# wait in the lane are not yet in the log, so a kill meanwhile loses them; a child slower than this
# to start (a loaded machine) is not waited for, and batches are written here until it is ready.
_START_WAIT_S = 0.1
# How many records the lane keeps sent to the child and not yet answered while it catches up on
# batches queued behind (two full batches: the child always holds the next one). Sending every queued
# batch before reading the first answer held the lane, and the records it counts, for as long as the
# child took to append them all (~150 ms for 100k records just after the child started), so the
# writer stopped taking and a caller blocked on a full queue; now the first answer is read as soon as
# it is written and room comes back batch by batch.
_LOOKAHEAD_RECORDS = 32_768


class LogProcessGoneError(Exception):
    """The log-writer process is not there to answer; the caller writes in-process instead."""


class LogProcess:
    """One log-writer child appending to one file. Requests may be sent from the writer thread and
    the sink's lane (RecordOffload serializes them); only the lane reads answers."""

    def __init__(self, path: Path, limits: SegmentLimits = NO_LIMITS):
        self._owner_pid = os.getpid()  # the process that started the child
        self._ready = False
        self._started = time.monotonic()
        self._child = subprocess.Popen(
            [sys.executable, "-P", protocol.__file__, str(path), *limits.as_args()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            bufsize=0,
        )
        assert self._child.stdin is not None and self._child.stdout is not None
        self._requests = self._child.stdin.fileno()
        self._replies = self._child.stdout.fileno()
        try:
            import fcntl

            fcntl.fcntl(self._requests, _F_SETPIPE_SZ, 1 << 20)
        except (ImportError, OSError):
            pass

    @property
    def child_pid(self) -> int:
        return self._child.pid

    def ready(self) -> bool:
        """True once the child has started; never waits. Raises LogProcessGoneError if it died."""
        if not self._ready and select.select([self._replies], [], [], 0)[0]:
            if os.read(self._replies, 1) != protocol.READY:
                raise LogProcessGoneError("the log-writer process exited while starting")
            self._ready = True
        return self._ready

    def wait_started(self, within: float) -> None:
        """Wait until `within` seconds after the child was started (with the GIL released) or until it
        has said it is ready or has exited; reads nothing, so `ready()` still takes its answer."""
        remaining = self._started + within - time.monotonic()
        if not self._ready and remaining > 0:
            select.select([self._replies], [], [], remaining)

    def send(self, segments: list[Segment]) -> None:
        """Queue a request to append `segments`; its answer comes from the next unanswered `reply()`."""
        payload = pickle.dumps(segments, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            _send(self._requests, protocol.REQUEST.pack(len(payload)), payload)
        except OSError as error:  # a broken pipe: the child is gone
            raise LogProcessGoneError(f"the log-writer process is gone ({error})") from error

    def reply(self) -> None:
        """Wait for the answer to the oldest unanswered request: returns once its lines are written.
        Raises OSError with the child's errno when the write failed (nothing of that batch is left in
        the file)."""
        try:
            status, number, length = protocol.REPLY.unpack(_receive(self._replies, protocol.REPLY.size))
            message = _receive(self._replies, length).decode("utf-8", "replace") if length else ""
        except OSError as error:
            raise LogProcessGoneError(f"the log-writer process is gone ({error})") from error
        if status == protocol.OS_ERROR:
            raise OSError(number, message)
        if status != protocol.OK:
            raise RuntimeError(f"the log-writer process could not write the batch: {message}")

    def close(self) -> None:
        """End the child (it has answered every request) and wait a bounded time for it."""
        if self._owner_pid != os.getpid():
            self.forget()
            return
        self.forget()
        try:
            self._child.wait(_CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()

    def forget(self) -> None:
        """Drop this process's ends of the pipes (a forked child must not keep its parent's log-writer
        alive, nor talk to it)."""
        for stream in (self._child.stdin, self._child.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def _send(fd: int, header: bytes, payload: bytes) -> None:
    sent = os.writev(fd, (header, payload))
    if sent < len(header):
        header, sent = header[sent:], 0
        while header:
            header = header[os.write(fd, header) :]
    else:
        sent -= len(header)
    rest = memoryview(payload)[sent:]
    while rest:
        rest = rest[os.write(fd, rest) :]


def _receive(fd: int, size: int) -> bytes:
    data = protocol.read_exactly(fd, size)
    if data is None:
        raise LogProcessGoneError("the log-writer process closed its replies")
    return data


class RecordOffload:
    """Routes the RECORD lines of a capture log's batches to its log-writer process, in order.

    The writer thread calls `send_ahead` as it hands a batch to the sink's lane, so the child already
    holds the next batch when it answers the current one and never waits for this process's GIL; the
    lane's `write` then only collects the answer. A batch is sent ahead only if no earlier batch
    waits unsent (`_behind`: queued while the child was starting, or while an earlier one was being
    written in this process), so lines keep their order across the two routes. When the lane comes to
    the first of those and the child is usable, it sends that batch and the ones queued behind it, in
    order, keeping up to `_LOOKAHEAD_RECORDS` sent and unanswered (topped up after each answer): one
    batch that missed the child no longer makes every later one miss it too, and the lane reads each
    answer as soon as the child has written that batch. If the child dies, every unanswered batch is
    written in this process instead (one it appended just before dying then appears twice, with the
    same record refs, rather than not at all).
    """

    def __init__(self, path: Path, min_batch: int, *, enabled: bool, limits: SegmentLimits = NO_LIMITS):
        self._path = path
        self._limits = limits
        self._min_batch = min_batch
        self._failed = not enabled
        self._process: LogProcess | None = None
        self._lock = threading.Lock()
        self._ahead: deque[CaptureBatch] = deque()  # sent, not yet answered, in order
        self._behind: deque[CaptureBatch] = deque()  # queued, not sent, not yet written here, in order
        # Batches the writer handed over while the lane held the lock (sending, which can wait on the
        # pipe): they join `_behind`, in order, at the next locked step (`_admit_arrivals`). Appended
        # without the lock, so the writer never waits for the lane: it waited 10-16 ms at a time while
        # a burst filled the queue behind it.
        self._arrivals: deque[CaptureBatch] = deque()
        self.gone = False  # the child died: the file's last line may be torn

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None else process.child_pid

    def send_ahead(self, batch: CaptureBatch, sink_name: str) -> None:
        if not self._lock.acquire(blocking=False):  # the lane is sending: queue it for the lane
            self._arrivals.append(batch)
            return
        try:
            self._send_ahead(batch, sink_name)
        finally:
            self._lock.release()

    def _admit_arrivals(self) -> None:
        """Move the batches handed over without the lock to the end of `_behind`, in order (call with
        the lock held, before anything that reads `_behind`)."""
        arrivals = self._arrivals
        while arrivals:
            self._behind.append(arrivals.popleft())

    def _send_ahead(self, batch: CaptureBatch, sink_name: str) -> None:
        self._admit_arrivals()
        if not self._behind and self._usable(batch):
            assert self._process is not None
            try:
                self._process.send(batch.record_segments(sink_name))
            except LogProcessGoneError:
                self._fail()
            else:
                self._ahead.append(batch)
                return
        self._behind.append(batch)

    def write(self, batch: CaptureBatch, sink_name: str) -> bool:
        """True once the child appended `batch` (raises its write error if it refused); False when the
        caller must write the batch itself and then call `written_here(batch)`."""
        self._start_for(batch)
        self._wait_for_a_starting_child()
        with self._lock:
            self._admit_arrivals()
            if not (self._ahead and self._ahead[0] is batch):
                if self._ahead or not self._usable(batch):
                    return False
                if not self._catch_up(batch, sink_name):
                    return False
            process = self._process
        try:
            if process is None:
                raise LogProcessGoneError("the log-writer process is gone")
            process.reply()  # outside the lock: send_ahead may queue the next batch meanwhile
        except LogProcessGoneError:
            with self._lock:
                self._answered(batch)
                self._fail()
            return False
        except BaseException:
            with self._lock:
                self._answered(batch)
            raise
        with self._lock:
            self._answered(batch)
            self._admit_arrivals()
            if self._behind and not self._failed:
                self._top_up(sink_name)
        return True

    def abandon(self, batch: CaptureBatch) -> None:
        """The sink refused `batch` before `write` (its lane parks it in the outbox): forget it if it
        was not sent; if it was, the child appends it whatever happens, so its answer is read here,
        keeping the answers in step with the batches after it."""
        with self._lock:
            self._admit_arrivals()
            for index, queued in enumerate(self._behind):
                if queued is batch:
                    del self._behind[index]
                    return
            sent = bool(self._ahead) and self._ahead[0] is batch
            process = self._process
        if not sent or process is None:
            return
        try:
            process.reply()
        except LogProcessGoneError:
            with self._lock:
                self._answered(batch)
                self._fail()
            return
        except BaseException:  # its write error: the batch is refused anyway
            pass
        with self._lock:
            self._answered(batch)

    def _catch_up(self, batch: CaptureBatch, sink_name: str) -> bool:
        """Send `batch` and, when it heads `_behind`, the batches queued behind it up to the look-ahead
        (call with the lock held, nothing unanswered, nothing being written here); True once `batch`
        is sent."""
        if not (self._behind and self._behind[0] is batch):
            self._send(batch, sink_name)
        else:
            self._top_up(sink_name)
        return bool(self._ahead) and self._ahead[0] is batch

    def _top_up(self, sink_name: str) -> None:
        """Move batches from the head of `_behind` to the child, in order, until the look-ahead is
        full (at least one is sent when nothing is unanswered). Call with the lock held."""
        unanswered = sum(len(sent) for sent in self._ahead)
        while self._behind and (not self._ahead or unanswered < _LOOKAHEAD_RECORDS):
            queued = self._behind[0]
            make_way()  # each batch's segments take about a millisecond to make and pickle
            if not self._send(queued, sink_name):
                return
            self._behind.popleft()
            unanswered += len(queued)

    def _send(self, batch: CaptureBatch, sink_name: str) -> bool:
        process = self._process
        assert process is not None
        try:  # the lane's own send: its pieces make way (the writer's look-ahead does not pause)
            process.send(batch.record_segments(sink_name, make_way))
        except LogProcessGoneError:
            self._fail()
            return False
        self._ahead.append(batch)
        return True

    def _wait_for_a_starting_child(self) -> None:
        """The sink's lane, about to write a batch: a child that is starting is waited for (until
        _START_WAIT_S after its start, the GIL released, the lock not held so the writer thread keeps
        queuing batches), so the batches that arrive meanwhile are assembled by the child rather than
        here. Encoding them here held the GIL for ~30 ms per 16k records: the very stall the child
        exists to avoid."""
        process = self._process
        if process is None:
            return
        try:
            process.wait_started(_START_WAIT_S)
        except (OSError, ValueError):  # closed meanwhile (the child failed): `_usable` notices
            pass

    def _answered(self, batch: CaptureBatch) -> None:
        if self._ahead and self._ahead[0] is batch:
            self._ahead.popleft()

    def written_here(self, batch: CaptureBatch) -> None:
        """The caller wrote `batch` itself (after `write` returned False): later batches may now go
        to the child."""
        with self._lock:
            self._admit_arrivals()
            if self._behind and self._behind[0] is batch:
                self._behind.popleft()

    def _start_for(self, batch: CaptureBatch) -> None:
        """The lane, about to write `batch`: start the child if there is none yet and the batch shows
        load. Here, not in `send_ahead`: starting a process takes the writer thread 10-30 ms while a
        loop captures (Popen's Python waits for the GIL between its steps), and a writer that stops
        taking lets the queue fill behind it; the lane is idle at that moment anyway."""
        with self._lock:
            if self._failed or self._process is not None or len(batch) < self._min_batch:
                return
            try:
                self._process = LogProcess(self._path, self._limits)
            except OSError:
                self._failed = True

    def _usable(self, batch: CaptureBatch) -> bool:
        """Whether the child can take `batch` now (never starts one: see `_start_for`)."""
        if self._failed or self._process is None:
            return False
        try:
            return self._process.ready()
        except LogProcessGoneError:
            self._fail()
            return False

    def _fail(self) -> None:
        if self._process is not None:
            self._process.close()
            warnings.warn(
                f"contexta: the log-writer process of {self._path} exited; this process writes the "
                "capture log from now on (a batch it appended just before exiting may appear twice)",
                CaptureWarning,
                stacklevel=2,
            )
        self._process = None
        self._failed = self.gone = True

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                self._process.close()
                self._process = None

    def forget(self) -> None:
        """In a forked child: drop the parent's child process without talking to it."""
        if self._process is not None:
            self._process.forget()
        self._process = None
        self._lock = threading.Lock()
        self._ahead.clear()
        self._behind.clear()
        self._arrivals.clear()
