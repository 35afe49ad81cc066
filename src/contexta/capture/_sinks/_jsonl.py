"""The local capture log: one append-only JSONL file per family under `<workspace>/cache/capture/`."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from contexta.capture._log._batch import FAMILIES, CaptureBatch
from contexta.capture._log._line_writer import AppendRefusedError, FollowedLog, SegmentLimits
from contexta.capture._log._process import RecordOffload
from contexta.capture._log._replay import file_end, lines_already_in
from contexta.capture._log._segments import SegmentCompressor
from contexta.capture._sinks._base import CaptureLogSink, DeliveryNote
from contexta.capture._sinks._disk_space import DEFAULT_MIN_FREE_BYTES, DiskSpaceWatch
from contexta.config import capture_log_file_name
from contexta.errors import ValidationError

__all__ = ["LocalJsonlSink"]

# A batch this long means the writer is behind the callers: time to assemble lines in another process.
LOG_PROCESS_MIN_BATCH = 2048
DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024
DEFAULT_SEGMENT_AGE_S = 3600.0
# How long `close()` waits for sealed segments to be compressed (they stay readable, plain, if not).
_COMPRESS_ON_CLOSE_S = 10.0


class LocalJsonlSink(CaptureLogSink):
    """Appends each batch to the capture log with one `write()` per file.

    Files are opened once with O_APPEND and written unbuffered, so a batch lands in one system call:
    several processes (ranks, DataLoader workers) can share a log without interleaving inside a line,
    and a crash can tear at most the last line. A torn tail left by an earlier crash is closed with a
    newline before appending, so it stays one unreadable line instead of corrupting the next one.

    Under sustained load the metric lines are assembled and appended by a log-writer process
    (capture/_log/_process.py), with the same one-write-per-batch and all-or-nothing rules, so that work does
    not compete with the caller's loop for the GIL.

    The files follow their paths: a log renamed away (logrotate, `mv`) or deleted while a run
    captures is reopened at its path by the next append, in this process and in the log-writer
    process, and lines written into a file deleted during the write are written again
    (`FollowedLog`), so a batch counted as written is on disk.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        name: str = "local-jsonl",
        durability: str = "flush",
        log_process: bool = True,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        segment_age_s: float = DEFAULT_SEGMENT_AGE_S,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
    ):
        if durability not in ("flush", "fsync"):
            raise ValidationError(
                f"durability must be 'flush' or 'fsync', got {durability!r}", code="config_value_invalid"
            )
        self.name = name
        self.directory = Path(os.path.abspath(directory))
        self.durability = durability
        self._logs: dict[str, FollowedLog] = {}
        self._lock = threading.Lock()  # the lane and a replay may append at once; a reopen closes fds
        self._pid = os.getpid()
        self._dirty: set[str] = set()
        self._torn: set[str] = set()  # families whose last line may lack its newline
        self._limits = SegmentLimits(segment_bytes, segment_age_s)
        self._compressor = SegmentCompressor(self.directory)
        self.disk_space = DiskSpaceWatch(self.directory, min_free_bytes)  # warns before the disk is full
        self._offload = RecordOffload(
            self.file_path_for("RECORD"), LOG_PROCESS_MIN_BATCH, enabled=log_process, limits=self._limits
        )

    def file_path_for(self, family: str) -> Path:
        """The log file of `family` (`"RECORD"`, `"ARTIFACT"` or `"CONTEXT"`)."""
        return self.directory / capture_log_file_name(family)

    def _notice_fork(self) -> None:
        if self._pid != os.getpid():  # forked: the parent's descriptors are not ours to share
            self._logs = {}
            self._lock = threading.Lock()
            self._dirty = set()
            self._torn = set()
            self._pid = os.getpid()
            self._offload.forget()
            self._compressor.forget()

    def _log(self, family: str) -> FollowedLog:
        """The open file of `family`; call with `_lock` held."""
        log = self._logs.get(family)
        if log is None:
            log = FollowedLog(
                str(self.file_path_for(family)),
                sync_before_leaving=self.durability == "fsync",
                limits=self._limits,
            )
            self._logs[family] = log
            self._torn.add(family)  # close a line an earlier crash may have left open, before appending
        return log

    def _fd(self, family: str) -> int:
        self._notice_fork()
        with self._lock:
            return self._log(family).fd

    @property
    def log_process_pid(self) -> int | None:
        """The pid of the log-writer process appending this log's metric lines, if one runs: it starts
        once batches show sustained load (`log_process=False`, or `capture.log_process` /
        CONTEXTA_CAPTURE_LOG_PROCESS=0 for the default sink, keeps all writing in this process)."""
        return self._offload.pid

    def write(self, batch: CaptureBatch) -> None:
        try:
            self.disk_space.check()
        except BaseException:
            # (the low-disk warning raised as an error) The lane parks the batch: the log-writer
            # process must not keep it queued, or a later top-up sends it, out of order, and the
            # outbox appends it again.
            self._offload.abandon(batch)
            raise
        for family in FAMILIES:
            if family == "RECORD":
                self._write_records(batch)
                continue
            data = batch.encoded(family, self.name)
            if data:
                self._append(family, data)
                self._dirty.add(family)
        self._compressor.notice()

    @property
    def compression_errors(self) -> int:
        """Sealed segments this sink failed to compress (they stay plain and readable)."""
        return self._compressor.errors

    def send_ahead(self, batch: CaptureBatch) -> None:
        """Called by the writer as it queues `batch` for this sink: under load, the log-writer process
        starts on the batch's metric lines before `write` asks for them."""
        self._notice_fork()  # a forked child never talks to its parent's log-writer process (and no
        # lock: the lane holds the sink's while it appends in this process, and the writer must not wait)
        self._offload.send_ahead(batch, self.name)

    def _write_records(self, batch: CaptureBatch) -> None:
        self._notice_fork()  # a forked child never talks to its parent's log-writer process
        if self._offload.write(batch, self.name):
            self._dirty.add("RECORD")
            return
        try:  # `written_here` whatever fails: the offload must not keep a batch this process refused
            self._fd("RECORD")
            if self._offload.gone:
                self._torn.add("RECORD")  # the process may have died inside a line
            data = batch.encoded("RECORD", self.name)
            if data:
                self._append("RECORD", data)
                self._dirty.add("RECORD")
        finally:
            self._offload.written_here(batch)

    def _append(self, family: str, data: bytes) -> None:
        self._notice_fork()
        with self._lock:
            try:
                self._log(family).append(data, family in self._torn)
            except AppendRefusedError as error:
                if error.torn:
                    self._torn.add(family)
                else:
                    self._torn.discard(family)
                raise
            self._torn.discard(family)

    def write_replayed(self, batch: CaptureBatch, note: DeliveryNote) -> None:
        """Append a batch replayed from the outbox so that each of its lines is in the log once.

        A replay can be cut short (Ctrl-C, a kill) after its append and before the outbox lets go of
        the batch; the next replay then hands over the same batch. So before appending, the note
        records where each file ends (its device, inode and size), and a retry first looks there,
        in that file even if it was rotated since: the batch's lines already whole after that place
        are not appended again. Replayed lines are appended in this process."""
        self._notice_fork()
        earlier = note.read() or {}
        remaining: dict[str, tuple[bytes, int]] = {}
        for family in FAMILIES:
            data = batch.encoded(family, self.name)
            if not data:
                continue
            place = earlier.get(family)
            done = int(place["done"]) if place else 0
            if place:
                done += lines_already_in(self.file_path_for(family), place, data[done:])
            if done < len(data):
                remaining[family] = (data, done)
        if not remaining:
            return
        if self._offload.gone:
            self._torn.add("RECORD")  # the process may have died inside a line
        with self._lock:
            places = {}
            for family, (_, done) in remaining.items():
                log = self._log(family)
                log.follow()
                places[family] = {**file_end(log.fd, log.path), "done": done}
        note.write({**earlier, **places})
        for family, (data, done) in remaining.items():
            self._append(family, data[done:])
            self._dirty.add(family)

    def flush(self) -> None:
        """Nothing is buffered in user space; with `durability="fsync"` the files are synced to disk."""
        if self.durability == "fsync" and self._pid == os.getpid():
            with self._lock:
                for family in self._dirty:
                    os.fsync(self._log(family).fd)
                self._dirty.clear()

    def close(self) -> None:
        self._offload.close()
        if self._pid != os.getpid():
            self._logs = {}
            return
        self._compressor.notice(now=True)
        self._compressor.join(_COMPRESS_ON_CLOSE_S)
        with self._lock:
            logs, self._logs = self._logs, {}
        for log in logs.values():
            log.close()

    def __repr__(self) -> str:
        return f"LocalJsonlSink({str(self.directory)!r}, name={self.name!r})"
