"""Turning a batch's line segments into capture-log bytes and appending them, in this process or in
the log-writer process.

The writer thread reduces a batch to segments: finished lines (bytes) and metric columns (a tuple of
plain values, see `MetricColumns`). Assembling the columns into ~600-byte lines is the most
expensive Python work capture does, so under sustained load the capture log hands it to a child
process that runs this file as a script (`python -P _line_writer.py LOG`): the caller's process then
spends its GIL on the caller's loop instead. The file therefore imports nothing but the standard
library and orjson; importing the `contexta` package would cost the child half a second at start.

The child's protocol, on its stdin and stdout: it answers b"R" once ready; then for every request
(an 8-byte little-endian length, then a pickle of the segments) it appends the assembled lines with
one write and answers with `_REPLY` (status, errno, length of a message) and the message. A request
cut short (the parent died mid-write) is discarded; end of input ends the child.
"""

from __future__ import annotations

import calendar
import errno
import fcntl
import os
import pickle
import queue
import re
import signal
import struct
import sys
import threading
import time
from array import array
from itertools import repeat
from operator import floordiv, itemgetter, mod
from time import gmtime, strftime

import orjson

# (first record number, templates, labels or None, values, steps, observation times in ns as the
# bytes of an array("q")). Values and steps are JSON arrays (a missing step as null), or, from the
# compiled split, an array("d") of finite values and an array("q") of steps (a missing one as -1).
# A template is the six constant pieces of a line (head, middle, observed, value, after_value, close);
# labels name each metric's template by its index, or are None when one template serves them all.
MetricColumns = tuple[
    int, list[tuple[bytes, ...]], list[int] | None, "bytes | array[float]", "bytes | array[int]", bytes
]
Segment = bytes | MetricColumns

REQUEST = struct.Struct("<Q")
REPLY = struct.Struct("<BiI")  # status, errno, message length
OK, OS_ERROR, OTHER_ERROR = 0, 1, 2
READY = b"R"

# "000" to "999" (and with the observation time's closing "Z"): looked up, not formatted.
_THREE_DIGITS = tuple(b"%03d" % number for number in range(1000))
_THREE_DIGITS_Z = tuple(b"%03dZ" % number for number in range(1000))
_PIECE_PARTS = tuple(map(itemgetter, range(6)))
_LINE_PARTS = 12  # the six pieces and the six variables of a line, interleaved


def assemble(segments: list[Segment]) -> bytes:
    """The log bytes of a batch's segments, in order."""
    out: list[bytes] = []
    for segment in segments:
        if type(segment) is bytes:
            out.append(segment)
        else:
            out += _metric_lines(segment)  # type: ignore[arg-type]
    return b"".join(out)


def _metric_lines(columns: MetricColumns) -> list[bytes]:
    """The pieces of the lines of one run of metrics.

    Every step is a C-level map over a column; Python runs once per distinct millisecond. A line is a
    join of its pieces, so no ~600-byte string is built per metric (strings that long bypass Python's
    small-object allocator), and each column fills every 12th slot of one list, so no per-line tuple
    is allocated and the garbage collector never runs.
    """
    first, templates, labels, values, steps, observed_ns = columns
    # Machine arrays are printed here, in one orjson call each (the same text as a list of floats).
    values_json = values if type(values) is bytes else orjson.dumps(values.tolist())  # type: ignore[union-attr]
    steps_json = (
        steps if type(steps) is bytes else orjson.dumps(steps.tolist()).replace(b"-1", b"null")  # type: ignore[union-attr]
    )
    t_ns = array("q")
    t_ns.frombytes(observed_ns)
    count = len(t_ns)
    if labels is None:
        pieces = [[piece] * count for piece in templates[0]]
    else:
        per_metric = list(map(templates.__getitem__, labels))
        pieces = [list(map(part, per_metric)) for part in _PIECE_PARTS]
    micros = list(map(floordiv, t_ns, repeat(1000)))
    millis = list(map(floordiv, micros, repeat(1000)))
    seconds: dict[int, bytes] = {}
    millis_texts: dict[int, bytes] = {}
    for milli in set(millis):
        second = milli // 1000
        text = seconds.get(second)
        if text is None:
            text = seconds[second] = strftime("%Y-%m-%dT%H:%M:%S.", gmtime(second)).encode()
        millis_texts[milli] = text + _THREE_DIGITS[milli - second * 1000]
    # orjson printed the values and steps in one call each; a missing step printed as "null".
    numbers = orjson.dumps(list(range(first, first + count)))[1:-1].split(b",")
    head, middle, observed, value, after_value, close = pieces
    lines: list[bytes] = [b""] * (_LINE_PARTS * count)
    lines[0::_LINE_PARTS] = head
    lines[1::_LINE_PARTS] = numbers
    lines[2::_LINE_PARTS] = middle
    lines[3::_LINE_PARTS] = numbers
    lines[4::_LINE_PARTS] = observed
    lines[5::_LINE_PARTS] = list(map(millis_texts.__getitem__, millis))
    lines[6::_LINE_PARTS] = list(map(_THREE_DIGITS_Z.__getitem__, map(mod, micros, repeat(1000))))
    lines[7::_LINE_PARTS] = value
    lines[8::_LINE_PARTS] = values_json[1:-1].split(b",")
    lines[9::_LINE_PARTS] = after_value
    lines[10::_LINE_PARTS] = steps_json[1:-1].replace(b"null", b"").split(b",")
    lines[11::_LINE_PARTS] = close
    return lines


# -- appending ---------------------------------------------------------------------------------


class AppendRefusedError(OSError):
    """An append failed; `torn` says whether the file's tail could not be restored."""

    torn: bool = False


def append_whole(fd: int, data: bytes, torn: bool) -> None:
    """Append one batch's lines, all or nothing: a write the disk cut short (full, over a size limit)
    is taken back, so a batch counted as failed leaves no half of itself behind and the next batch
    does not start inside a broken line. `torn` says an earlier failure could not be taken back, so
    its line is closed first. Raises `AppendRefusedError` (an OSError with the cause's errno)."""
    try:
        if torn:
            terminate_torn_tail(fd)
        start = os.fstat(fd).st_size
    except OSError as error:
        raise _refused(error, torn) from error
    try:
        _write_all(fd, data)
    except OSError as error:
        restored = False
        try:
            if os.fstat(fd).st_size > start:
                os.ftruncate(fd, start)  # shrinking needs no space
            restored = True
        except OSError:
            pass
        raise _refused(error, not restored) from error


def _refused(error: OSError, torn: bool) -> AppendRefusedError:
    refused = AppendRefusedError(error.errno, error.strerror or str(error))
    refused.torn = torn
    return refused


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def terminate_torn_tail(fd: int) -> None:
    """Close a line an earlier crash or failure left without its newline."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")


# -- following the file at the path, and sealing it into segments ------------------------------

# Appends that may each find their file deleted before one stays on disk (a loop deleting the log
# as fast as it is recreated would otherwise hold the writer forever).
_MAX_REOPENS = 3

# A sealed segment of `record.jsonl` is `record.000042.jsonl` (renamed away, not yet compressed) and
# then `record.000042.jsonl.zst`; the numbers grow, so they order the segments.
SEALED_SEGMENT = re.compile(r"(?P<stem>.+)\.(?P<sequence>[0-9]{6,})\.jsonl(?P<zst>\.zst)?")
# The first bytes of every capture-log line: `{"captured_at":"2026-12-05T12:00:00`.
_FIRST_TIME = re.compile(
    rb'\{"captured_at":"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?'
)


class SegmentLimits:
    """When the active segment is sealed: once it holds `max_bytes`, or once its first line is
    `max_age_s` old (0 turns either off)."""

    __slots__ = ("max_age_s", "max_bytes")

    def __init__(self, max_bytes: int = 0, max_age_s: float = 0.0):
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s

    def as_args(self) -> list[str]:
        return [str(self.max_bytes), repr(float(self.max_age_s))]

    @classmethod
    def from_args(cls, args: list[str]) -> SegmentLimits:
        return cls(int(args[0]), float(args[1])) if len(args) >= 2 else cls()


NO_LIMITS = SegmentLimits()


def sealed_segment_path(active: str, sequence: int) -> str:
    """Where the active segment `.../record.jsonl` goes when it is sealed as number `sequence`."""
    directory, name = os.path.split(active)
    return os.path.join(directory, f"{name.removesuffix('.jsonl')}.{sequence:06d}.jsonl")


def next_sequence(active: str) -> int:
    """One more than the highest sealed segment number of `active`'s family (1 for the first)."""
    directory, name = os.path.split(active)
    stem = name.removesuffix(".jsonl")
    highest = 0
    for entry in os.listdir(directory or "."):
        match = SEALED_SEGMENT.fullmatch(entry)
        if match and match["stem"] == stem:
            highest = max(highest, int(match["sequence"]))
    return highest + 1


def open_log(path: str) -> int:
    """Open the log file at `path` for appending, creating it (and its directory) if it is missing.
    Read-write, not write-only, so the torn-tail check can read the last byte."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


def names_file(path: str, fd: int) -> bool:
    """True while `path` names the file open at `fd`; False once it was renamed away (a log rotated
    by logrotate or `mv`, or sealed into a segment), deleted, or replaced by another file."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return named.st_ino == opened.st_ino and named.st_dev == opened.st_dev


def _lock(fd: int, how: int) -> bool:
    """flock(2) `fd`; False where the file system offers no locks (then nothing is ever sealed)."""
    try:
        fcntl.flock(fd, how)
    except OSError:
        return False
    return True


def _unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        pass


class FollowedLog:
    """One capture-log file held open for appending, that follows its path and seals it into
    segments.

    A descriptor keeps writing to the file it was opened on: after `mv record.jsonl record.jsonl.1`
    (logrotate's default) or `rm record.jsonl`, lines would go to the rotated file, or to a deleted
    one that no reader will ever see, while every append still succeeds. So each append first checks
    (two stat calls) that the path still names the open file, and reopens the path when it does not;
    and an append that landed in a file deleted meanwhile is written again at the path. An append
    that returns is on disk, at the path or in the file the path named a moment before.

    Sealing: every append holds a shared flock on the file while it checks the path and writes; the
    append that finds the file past its `SegmentLimits` takes the exclusive lock (without waiting:
    if another process is appending, a later append seals) and renames the file to the next sealed
    segment name. Any process appending to it (ranks, the log-writer child) either wrote before the
    rename or finds the path renamed once it holds its lock, and reopens: so nothing is written into
    a sealed segment after its rename, and it can be compressed (`_segments.py`) while capture goes on.
    """

    def __init__(self, path: str, *, sync_before_leaving: bool = False, limits: SegmentLimits = NO_LIMITS):
        self.path = path
        self.limits = limits
        self.sealed = 0  # segments this log sealed, for whoever compresses them
        self._sync_before_leaving = sync_before_leaving  # durability="fsync": what went there is kept
        self.fd = open_log(path)
        self._locks = True
        self._started: float | None = None  # when the open file's first line was captured (epoch s)

    def append(self, data: bytes, torn: bool) -> None:
        """`append_whole(data)` to the file the path names now (`torn` as there; a file opened anew
        is always checked for a torn tail, since another process may have written it)."""
        for _ in range(_MAX_REOPENS):
            if self._hold_current():
                torn = True
            try:
                append_whole(self.fd, data, torn)
                kept = os.fstat(self.fd).st_nlink
            finally:
                if self._locks:
                    _unlock(self.fd)
            if kept:
                self._seal_if_due()
                return
            torn = True  # deleted under us: what we wrote is gone; write it again where readers look
        raise _refused(
            OSError(errno.ENOENT, f"{self.path} was deleted again during each of {_MAX_REOPENS} appends"),
            False,
        )

    def _hold_current(self) -> bool:
        """Hold a shared lock on the file the path names; True if it had to be reopened first."""
        reopened = False
        for _ in range(_MAX_REOPENS):
            if self._locks:
                self._locks = _lock(self.fd, fcntl.LOCK_SH)
            try:
                if names_file(self.path, self.fd):
                    return reopened
            except OSError as error:
                self._release()
                raise _refused(error, False) from error
            self._release()
            self._reopen()
            reopened = True
        if self._locks:
            self._locks = _lock(self.fd, fcntl.LOCK_SH)
        return reopened

    def _release(self) -> None:
        if self._locks:
            _unlock(self.fd)

    def follow(self) -> bool:
        """Reopen the path if it no longer names the open file; True if it did."""
        try:
            if names_file(self.path, self.fd):
                return False
        except OSError as error:
            raise _refused(error, False) from error
        self._reopen()
        return True

    def _reopen(self) -> None:
        try:
            fresh = open_log(self.path)
        except OSError as error:
            raise _refused(error, False) from error
        old, self.fd = self.fd, fresh
        self._started = None
        try:
            if self._sync_before_leaving:
                os.fsync(old)
        except OSError:
            pass
        finally:
            os.close(old)

    def _seal_if_due(self) -> None:
        """Seal the open file into the next segment if it is past its limits and no one else is
        appending to it right now. A failure to seal is not an append's failure: the file stays the
        active segment and a later append tries again."""
        limits = self.limits
        if not (limits.max_bytes or limits.max_age_s) or not self._locks:
            return
        try:
            size = os.fstat(self.fd).st_size
            if not size or not (
                (limits.max_bytes and size >= limits.max_bytes)
                or (limits.max_age_s and time.time() - self._first_line_time() >= limits.max_age_s)
            ):
                return
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            try:
                if not names_file(self.path, self.fd):
                    return  # another process sealed it a moment ago
                if self._sync_before_leaving:
                    os.fsync(self.fd)
                os.rename(self.path, sealed_segment_path(self.path, next_sequence(self.path)))
                self.sealed += 1
            finally:
                _unlock(self.fd)
            self._reopen()
        except OSError:
            return

    def _first_line_time(self) -> float:
        """When the open file's first line was captured (read once per file), else now."""
        if self._started is None:
            match = _FIRST_TIME.match(os.pread(self.fd, 64, 0))
            # By hand, not strptime: that imports a module on first use, on the writer's clock. With
            # its fraction: cut to the second, a file whose first line came at .9 s was sealed as a
            # second old a tenth of a second later.
            if match is None:
                self._started = time.time()
            else:
                *whole, fraction = match.groups()
                seconds = calendar.timegm((*map(int, whole), 0, 0, 0))
                self._started = seconds + (float(fraction) if fraction else 0.0)
        return self._started

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


# -- the log-writer process --------------------------------------------------------------------


def read_exactly(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _reply(status: int, number: int, message: str) -> None:
    text = message.encode("utf-8", "replace")
    _tell_parent(REPLY.pack(status, number, len(text)) + text)


def _tell_parent(data: bytes) -> None:
    """Answer on stdout; a parent that stopped listening (it closed early or died) is not an error:
    the requests already received are still appended."""
    try:
        _write_all(1, data)
    except BrokenPipeError:
        pass


def main(path: str, limits: SegmentLimits = NO_LIMITS) -> None:
    """Read requests, assemble their lines, and hand them to a thread that appends and answers: the
    next batch is assembled while the kernel copies the last one into the file."""
    # Ctrl-C reaches the whole process group, and so do SIGTERM and SIGHUP from Slurm's scancel or a
    # closed terminal: the parent decides when this child stops (end of input), after it has handed
    # over what was captured before the signal (capture/_scopes/_signals.py).
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    if hasattr(signal, "SIGXFSZ"):  # past a file-size limit, writes fail with EFBIG instead
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    log = FollowedLog(path, limits=limits)
    assembled: queue.Queue[bytes | Exception | None] = queue.Queue(maxsize=2)
    appender = threading.Thread(target=_append_and_answer, args=(log, assembled))
    appender.start()
    received: queue.Queue[bytes | None] = queue.Queue()
    threading.Thread(target=_receive_requests, args=(received,), daemon=True).start()
    _tell_parent(READY)
    while (payload := received.get()) is not None:
        try:
            assembled.put(assemble(pickle.loads(payload)))
        except Exception as error:
            assembled.put(error)
    assembled.put(None)
    appender.join()


def _receive_requests(received: queue.Queue[bytes | None]) -> None:
    """Read whole requests as soon as they arrive, however far assembling is behind: the parent's
    writer then never waits on a full pipe (while it waited it took nothing from its queue, and
    capture calls blocked on it), and what the parent sent is here, to be appended even if the parent
    is killed. The parent bounds how much it sends before the answers come back (its lanes hold a
    bounded number of records). A request cut short by the end of input is discarded."""
    payload: bytes | None = b""
    try:
        while payload is not None:
            header = read_exactly(0, REQUEST.size)
            payload = None if header is None else read_exactly(0, REQUEST.unpack(header)[0])
            if payload is not None:
                received.put(payload)
    finally:  # end of input, or a read that failed: either way nothing more comes
        received.put(None)


def _append_and_answer(log: FollowedLog, assembled: queue.Queue[bytes | Exception | None]) -> None:
    torn = True  # the parent may have written before: make sure its last line is closed
    while (data := assembled.get()) is not None:
        if isinstance(data, Exception):
            _reply(OTHER_ERROR, 0, f"{type(data).__name__}: {data}")
            continue
        try:
            log.append(data, torn)
        except AppendRefusedError as error:
            torn = error.torn
            _reply(OS_ERROR, error.errno or 0, error.strerror or str(error))
            continue
        torn = False
        _reply(OK, 0, "")


if __name__ == "__main__":
    main(sys.argv[1], SegmentLimits.from_args(sys.argv[2:]))
