"""The capture log's segments: listing them in order, reading them compressed or not, compressing
the sealed ones.

Each family's log is a run of segments: sealed ones, numbered in the order they were sealed
(`record.000001.jsonl.zst`, `record.000002.jsonl`, ...), then the active one (`record.jsonl`, the
seed-compatible name every writer appends to). A segment is sealed by renaming the active file
(`_line_writer.FollowedLog`); nothing is written into it after that, so it is compressed here, in a
background thread of the capturing process or by `contexta gc`, never on a caller's thread.

Compression is crash safe: the `.zst` is written under a temporary name, synced and renamed into
place, and only then is the plain segment removed. A kill at any point leaves either the plain
segment, or both (readers take the `.zst`, which is complete once it has its name), never a torn
`.zst`. zstd at level 1 shrinks a capture-log line about 35 times (~676 to ~17.5 bytes), faster than
level 3 and smaller; the compressor releases the GIL, and is fed 1 MiB at a time.
"""

from __future__ import annotations

import fcntl
import gzip
import io
import os
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from contexta.capture._log._line_writer import SEALED_SEGMENT
from contexta.config import capture_log_family, capture_log_file_name
from contexta.errors import CaptureWarning

__all__ = [
    "DamagedSegmentError",
    "LogSegment",
    "SegmentCompressor",
    "compress_sealed_segments",
    "compress_segment",
    "iter_handle_lines",
    "iter_segment_lines",
    "log_segments",
    "open_log_segments",
    "open_segment",
    "write_compressed_atomically",
]

COMPRESSION_LEVEL = 1
_READ_SIZE = 1 << 20
_COMPRESSED_READ_SIZE = 32 << 10
_TEMPORARY = ".tmp"


@dataclass(frozen=True, slots=True)
class LogSegment:
    """One file of a family's capture log. `sequence` is None for the active segment."""

    path: Path
    family: str
    sequence: int | None
    compressed: bool

    @property
    def active(self) -> bool:
        return self.sequence is None

    def size(self) -> int:
        """Bytes on disk now (0 if it is gone)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


def log_segments(capture_dir: str | os.PathLike[str], family: str) -> list[LogSegment]:
    """The segments of `family`'s log in `capture_dir`, oldest first, the active one last (when it
    exists). A segment both compressed and still plain (a compression cut short after its rename)
    is listed once, compressed."""
    directory = Path(capture_dir)
    active_name = capture_log_file_name(family)
    stem = active_name.removesuffix(".jsonl")
    sealed: dict[int, LogSegment] = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        match = SEALED_SEGMENT.fullmatch(name)
        if match is None or match["stem"] != stem:
            continue
        sequence = int(match["sequence"])
        compressed = match["zst"] is not None
        if sequence not in sealed or compressed:
            sealed[sequence] = LogSegment(directory / name, family.upper(), sequence, compressed)
    segments = [sealed[sequence] for sequence in sorted(sealed)]
    if active_name in names:
        segments.append(LogSegment(directory / active_name, family.upper(), None, False))
    return segments


class DamagedSegmentError(ValueError):
    """A compressed segment stops being readable (its lines up to there were read). Compression
    writes whole files under their final name, so only damage from outside (a disk, a hand) does
    this; readers count it as one unreadable line and go on with the next segment."""


def open_segment(path: str | os.PathLike[str]) -> IO[bytes]:
    """A binary reader of a log file's lines: zstd (`.zst`) and gzip (`.gz`, logrotate's) are
    decompressed as they are read. A plain sealed segment compressed (and removed) since it was
    listed is read from its `.zst`."""
    text = os.fspath(path)
    if not text.endswith((".zst", ".gz")):
        try:
            return open(text, "rb")
        except FileNotFoundError:
            if SEALED_SEGMENT.fullmatch(os.path.basename(text)) is None:
                raise
            text += ".zst"
    if text.endswith(".zst"):
        return io.BufferedReader(_ZstdFile(open(text, "rb")), _READ_SIZE)
    return gzip.open(text, "rb")  # type: ignore[return-value]


class _ZstdFile(io.RawIOBase):
    """The decompressed bytes of a `.zst` file of one or more frames. Unlike zstandard's stream
    reader, a file that ends inside a frame (cut short by hand or by a disk) is an error, not a
    quiet end: DamagedSegmentError, after every byte that could be decompressed."""

    def __init__(self, source: IO[bytes]):
        import zstandard  # imported here: 11 ms that only readers of sealed segments pay

        self._source = source
        self._decompressor = zstandard.ZstdDecompressor()
        self._frame = self._decompressor.decompressobj()
        self._pending = memoryview(b"")
        self._started = False  # the current frame has consumed input

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._source.read(_COMPRESSED_READ_SIZE)  # ~35 times as much once decompressed
            if not chunk:
                if self._started and not self._frame.eof:
                    raise DamagedSegmentError(f"{self._source.name} ends inside a zstd frame")
                return 0
            self._pending = memoryview(self._decompress(chunk))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _decompress(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        while chunk:
            if self._frame.eof:  # the next frame starts in what the last one left
                self._frame = self._decompressor.decompressobj()
                self._started = False
            try:
                out.append(self._frame.decompress(chunk))
            except Exception as error:
                raise DamagedSegmentError(f"{self._source.name}: {error}") from error
            self._started = True
            chunk = self._frame.unused_data if self._frame.eof else b""
        return b"".join(out)

    def close(self) -> None:
        self._source.close()
        super().close()


def iter_segment_lines(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """The raw lines of one log file (the last may lack its newline)."""
    with open_segment(path) as handle:
        yield from iter_handle_lines(handle)


def iter_handle_lines(handle: IO[bytes]) -> Iterator[bytes]:
    """The raw lines of an open log file; raises DamagedSegmentError where a compressed one stops
    being readable."""
    try:
        yield from handle
    except Exception as error:
        if not _is_zstd_error(error):
            raise
        raise DamagedSegmentError(str(error)) from error


def open_log_segments(capture_dir: Path, family: str) -> list[tuple[LogSegment, IO[bytes]]]:
    """Every segment of `family`'s log, opened, as one consistent set: a segment sealed while they
    were being opened (the active file renamed away, a new one begun) makes it list and open them
    again, so no line is missed or read twice. The caller closes the handles."""
    while True:
        segments = log_segments(capture_dir, family)
        opened: list[tuple[LogSegment, IO[bytes]]] = []
        try:
            for segment in segments:
                try:
                    opened.append((segment, open_segment(segment.path)))
                except FileNotFoundError:
                    if not segment.active:
                        raise
        except BaseException:
            for _, handle in opened:
                handle.close()
            raise
        sealed_then = [segment.sequence for segment in segments if not segment.active]
        sealed_now = [seg.sequence for seg in log_segments(capture_dir, family) if not seg.active]
        if sealed_now == sealed_then:
            return opened
        for _, handle in opened:
            handle.close()


def _is_zstd_error(error: BaseException) -> bool:
    return type(error).__name__ == "ZstdError"


def compress_segment(segment: LogSegment) -> LogSegment | None:
    """Compress a sealed plain segment into its `.zst`, atomically; the compressed segment, or None
    if another process is compressing it (it holds the segment's lock) or it is already gone."""
    if segment.compressed or segment.active:
        return segment
    target = segment.path.with_name(segment.path.name + ".zst")
    try:
        source = open(segment.path, "rb")  # noqa: SIM115 - closed below, after the lock
    except FileNotFoundError:
        return None
    with source:
        try:
            fcntl.flock(source.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        except OSError:
            pass  # no locks on this file system: compress anyway, the rename below stays atomic
        if not target.exists():
            _write_compressed(source, target)
        try:
            os.unlink(segment.path)
        except FileNotFoundError:
            pass
    return LogSegment(target, segment.family, segment.sequence, True)


def _write_compressed(source: IO[bytes], target: Path) -> None:
    write_compressed_atomically(target, iter(lambda: source.read(_READ_SIZE), b""))


def write_compressed_atomically(target: Path, chunks: Iterable[bytes]) -> int:
    """Compress `chunks` into `target` so that a kill at any moment leaves the old `target` (or none)
    or the whole new one: written under a temporary name, synced, renamed into place, the directory
    synced. Returns the new file's size."""
    import zstandard

    temporary = target.with_name(f".{target.name}.{os.getpid()}{_TEMPORARY}")
    try:
        with open(temporary, "wb") as out:
            compressor = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL).compressobj()
            for chunk in chunks:
                out.write(compressor.compress(chunk))
            out.write(compressor.flush())
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        os.rename(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _sync_directory(target.parent)
    return size


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(capture_dir: Path, older_than_s: float = 60.0) -> None:
    """Remove half-written `.zst` files a killed compression left behind."""
    now = time.time()
    try:
        entries = list(os.scandir(capture_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith(".") and ".jsonl.zst." in entry.name and entry.name.endswith(_TEMPORARY):
            try:
                if now - entry.stat().st_mtime >= older_than_s:
                    os.unlink(entry.path)
            except OSError:
                pass


def compress_sealed_segments(capture_dir: str | os.PathLike[str]) -> list[LogSegment]:
    """Compress every sealed plain segment of every family in `capture_dir` (and remove plain ones a
    compression cut short left beside their `.zst`); the ones compressed."""
    directory = Path(capture_dir)
    done: list[LogSegment] = []
    for name in sorted(_plain_sealed_names(directory)):
        match = SEALED_SEGMENT.fullmatch(name)
        family = capture_log_family(f"{match['stem']}.jsonl") if match else None
        if match is None or family is None:
            continue
        plain = LogSegment(directory / name, family, int(match["sequence"]), False)
        compressed = compress_segment(plain)
        if compressed is not None:
            done.append(compressed)
    remove_stale_temporaries(directory)
    return done


class SegmentCompressor:
    """Compresses sealed segments in a background thread of the capturing process.

    `notice()` is cheap enough to call after every batch: at most once per `interval_s` it looks for
    plain sealed segments (a directory listing) and, when there are some, starts a thread for them.
    Segments sealed by the log-writer child or another process are found the same way. Failures
    (a full disk) leave the plain segment in place, readable, for a later attempt; `errors` counts them.
    """

    def __init__(self, capture_dir: Path, interval_s: float = 1.0):
        self._capture_dir = capture_dir
        self._interval_s = interval_s
        self._next_look = 0.0
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.errors = 0
        self.last_error: BaseException | None = None

    def notice(self, *, now: bool = False) -> None:
        moment = time.monotonic()
        if not now and moment < self._next_look:
            return
        self._next_look = moment + self._interval_s
        with self._guard:
            if self._thread is not None and self._thread.is_alive():
                return
            if not _has_plain_sealed(self._capture_dir):
                return
            self._thread = threading.Thread(target=self._run, name="contexta-segment-compressor", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        """Compress until no plain sealed segment is left (more are sealed while it works), or until a
        pass compresses nothing (another process holds the rest)."""
        try:
            while compress_sealed_segments(self._capture_dir) and _has_plain_sealed(self._capture_dir):
                pass
        except Exception as error:  # never the capturing program's failure; counted, kept plain, told
            self.errors += 1
            self.last_error = error
            if self.errors == 1:
                warnings.warn(
                    CaptureWarning(
                        f"contexta: could not compress sealed capture-log segments in {self._capture_dir} "
                        f"({type(error).__name__}: {error}); they stay readable, uncompressed, and are "
                        "compressed by the next capture or by `contexta gc`"
                    ),
                    stacklevel=1,
                )

    def join(self, timeout: float | None = None) -> None:
        with self._guard:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def forget(self) -> None:
        """After a fork: the parent's thread is not ours."""
        self._guard = threading.Lock()
        self._thread = None


def _plain_sealed_names(capture_dir: Path) -> list[str]:
    try:
        names = os.listdir(capture_dir)
    except FileNotFoundError:
        return []
    return [
        name
        for name in names
        if (match := SEALED_SEGMENT.fullmatch(name)) is not None and match["zst"] is None
    ]


def _has_plain_sealed(capture_dir: Path) -> bool:
    return bool(_plain_sealed_names(capture_dir))


def read_segment_bytes(path: str | os.PathLike[str]) -> bytes:
    """The whole content of one log file, decompressed."""
    with open_segment(path) as handle:
        data: Any = handle.read()
    return bytes(data)
