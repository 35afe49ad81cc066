"""Taking reclaimed executions out of the capture log's sealed segments, and saying which execution
each segment's bytes belong to (for `contexta du` and `contexta gc`).

Only sealed segments are rewritten: nothing is appended to one after its seal, so a rewrite races no
writer. The active file (`record.jsonl`, ...) is never touched; a reclaimed execution's lines still in
it stay until it is sealed, and a later gc takes them out (gc remembers what it reclaimed).

A rewrite is crash safe the way compression is (`_segments.py`): the new `.zst` is written under a
temporary name, synced and renamed over the old one, so a kill leaves the old segment or the new one,
never a mixture: the log stays an in-order prefix with nothing duplicated. Plain sealed segments are
compressed first (under the compressor's own lock); a compressed segment is rewritten under an
exclusive `flock` on it, so two gc processes never rewrite one segment at once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from contexta.capture._log._line_writer import names_file
from contexta.capture._log._segments import (
    DamagedSegmentError,
    LogSegment,
    compress_sealed_segments,
    iter_handle_lines,
    log_segments,
    open_segment,
    write_compressed_atomically,
)
from contexta.config import CAPTURE_LOG_FILES
from contexta.contract._refs import execution_of_record_ref

__all__ = [
    "LogUsage",
    "SegmentRewrite",
    "SegmentUsage",
    "execution_of_line",
    "execution_of_raw_line",
    "log_usage",
    "remove_from_sealed_segments",
]

_READ_SIZE = 1 << 20


def execution_of_line(line: dict[str, Any]) -> str | None:
    """The run execution a capture-log (or outbox) line belongs to: a scope's or an environment's
    `execution_id`, an artifact manifest's, or the one a captured record's ref starts with. None for a
    line that names none (a deployment's, one written before executions existed, or unreadable)."""
    payload = line.get("payload")
    if not isinstance(payload, dict):
        return None
    found = payload.get("execution_id")
    if isinstance(found, str) and found:
        return found
    manifest = payload.get("manifest")
    if isinstance(manifest, dict):
        found = manifest.get("execution_id")
        if isinstance(found, str) and found:
            return found
    envelope = payload.get("envelope")
    if isinstance(envelope, dict) and isinstance(envelope.get("record_ref"), str):
        return execution_of_record_ref(envelope["record_ref"])
    return None


def execution_of_raw_line(raw: bytes) -> str | None:
    """`execution_of_line` of one raw line; None when it is not a JSON object."""
    text = raw.strip()
    if not text:
        return None
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return execution_of_line(parsed) if isinstance(parsed, dict) else None


@dataclass(frozen=True, slots=True)
class SegmentUsage:
    """One log file: its bytes on disk and, by execution (None: lines that name none), the share of
    its uncompressed line bytes each holds."""

    path: Path
    kind: str  # "sealed_compressed", "sealed_plain" or "active"
    size: int
    line_bytes: dict[str | None, int]

    def apportioned(self) -> dict[str | None, float]:
        """Its bytes on disk split by execution, in proportion to their line bytes."""
        whole = sum(self.line_bytes.values())
        if whole <= 0:
            return {None: float(self.size)} if self.size else {}
        return {execution: self.size * share / whole for execution, share in self.line_bytes.items()}


@dataclass(frozen=True, slots=True)
class LogUsage:
    """The capture directory's files: the log's segments (read through, line by line) and any other
    file there (`other`: rotated copies, temporaries), by path and size."""

    segments: list[SegmentUsage]
    other: dict[str, int] = field(default_factory=dict)


def _kind(segment: LogSegment) -> str:
    if segment.active:
        return "active"
    return "sealed_compressed" if segment.compressed else "sealed_plain"


def log_usage(capture_dir: str | os.PathLike[str]) -> LogUsage:
    """Read every segment of every family to apportion the log's bytes to executions."""
    directory = Path(capture_dir)
    segments: list[SegmentUsage] = []
    for family in CAPTURE_LOG_FILES:
        for segment in log_segments(directory, family):
            size = segment.size()
            shares: dict[str | None, int] = {}
            try:
                with open_segment(segment.path) as handle:
                    for raw in _lines(handle):
                        execution = execution_of_raw_line(raw)
                        shares[execution] = shares.get(execution, 0) + len(raw)
            except FileNotFoundError:
                continue  # compressed (or rewritten) since it was listed: counted by its new name
            segments.append(SegmentUsage(segment.path, _kind(segment), size, shares))
    counted = {segment.path.name for segment in segments}
    other: dict[str, int] = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if entry.name not in counted and entry.is_file(follow_symlinks=False):
            try:
                other[entry.name] = entry.stat(follow_symlinks=False).st_size
            except OSError:
                pass
    return LogUsage(segments, other)


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        yield from iter_handle_lines(handle)
    except DamagedSegmentError:
        return  # the readable part is counted; the rest is the segment's, unattributed


@dataclass(frozen=True, slots=True)
class SegmentRewrite:
    """What `remove_from_sealed_segments` did: lines taken out, segments rewritten, bytes of those
    segments before and after, and segments left as they were (`skipped`: path and why)."""

    lines_removed: int = 0
    segments_rewritten: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    skipped: tuple[tuple[str, str], ...] = ()


def remove_from_sealed_segments(
    capture_dir: str | os.PathLike[str], execution_ids: Collection[str]
) -> SegmentRewrite:
    """Rewrite every sealed segment that holds lines of `execution_ids` without them (compressing plain
    sealed segments first). The active segments are never touched."""
    directory = Path(capture_dir)
    compress_sealed_segments(directory)
    wanted = frozenset(execution_ids)
    removed = rewritten = before = after = 0
    skipped: list[tuple[str, str]] = []
    if not wanted:
        return SegmentRewrite()
    for family in CAPTURE_LOG_FILES:
        for segment in log_segments(directory, family):
            if segment.active:
                continue
            if not segment.compressed:
                skipped.append((str(segment.path), "still plain: another process is compressing it"))
                continue
            outcome = _rewrite(segment.path, wanted)
            if isinstance(outcome, str):
                skipped.append((str(segment.path), outcome))
            elif outcome is not None:
                count, old_size, new_size = outcome
                removed += count
                rewritten += 1
                before += old_size
                after += new_size
    return SegmentRewrite(removed, rewritten, before, after, tuple(skipped))


def _rewrite(path: Path, wanted: frozenset[str]) -> tuple[int, int, int] | str | None:
    """Rewrite one compressed segment without the lines of `wanted`: (lines removed, old size, new
    size), None when it holds none of them, or why it was left alone."""
    try:
        source = open(path, "rb")  # noqa: SIM115 - closed below, after the lock
    except FileNotFoundError:
        return "gone"
    with source:
        try:
            fcntl.flock(source.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return "another gc is rewriting it"
        except OSError:
            pass  # no locks on this file system: the rename below stays atomic
        if not names_file(str(path), source.fileno()):
            return "rewritten by another gc meanwhile"
        old_size = os.fstat(source.fileno()).st_size
        if not _holds_any(path, wanted):
            return None
        removed = [0]
        try:
            new_size = write_compressed_atomically(path, _kept_chunks(path, wanted, removed))
        except DamagedSegmentError:
            return "damaged: not readable to its end, left as it is"
    return removed[0], old_size, new_size


def _holds_any(path: Path, wanted: frozenset[str]) -> bool:
    with open_segment(path) as handle:
        return any(execution_of_raw_line(raw) in wanted for raw in _lines(handle))


def _kept_chunks(path: Path, wanted: frozenset[str], removed: list[int]) -> Iterator[bytes]:
    """The segment's lines but those of `wanted`, about a megabyte at a time; counts the others in
    `removed[0]`."""
    pending: list[bytes] = []
    pending_size = 0
    with open_segment(path) as handle:
        for raw in iter_handle_lines(handle):
            if execution_of_raw_line(raw) in wanted:
                removed[0] += 1
                continue
            pending.append(raw)
            pending_size += len(raw)
            if pending_size >= _READ_SIZE:
                yield b"".join(pending)
                pending, pending_size = [], 0
    yield b"".join(pending)
