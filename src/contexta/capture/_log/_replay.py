"""Finding a replayed batch's lines in the capture log, so a retried replay never appends them twice.

Before the capture log appends a batch replayed from the outbox, it notes where the file ended
(`file_end`). If that replay is cut short and the batch is handed over again, the lines an earlier
attempt appended are somewhere after that place, in that same file (found by its inode, also after a
rotation renamed it, or in the segment it was sealed and compressed into): `lines_already_in` says
how many leading bytes of the batch are there, whole lines only. Other processes may have appended
in between, so the batch is searched for, not assumed to start exactly at the noted place; a line
the kill cut in half is not counted (it stays one unreadable line, as any kill mid-write leaves).
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

from contexta.capture._log._line_writer import next_sequence
from contexta.capture._log._segments import DamagedSegmentError, LogSegment, log_segments, read_segment_bytes
from contexta.config import capture_log_family

__all__ = ["file_end", "lines_already_in"]


def file_end(fd: int, path: str) -> dict[str, int]:
    """Where the file open at `fd` (the active segment at `path`) ends now, which file it is, and
    the lowest number it can be sealed as."""
    status = os.fstat(fd)
    return {
        "dev": status.st_dev,
        "ino": status.st_ino,
        "size": status.st_size,
        "sequence": next_sequence(path),
    }


def lines_already_in(path: Path, place: dict[str, Any], data: bytes) -> int:
    """How many leading bytes of `data` (whole lines) the file noted in `place` holds after its noted
    end. `path` is where that file was; rotated siblings (`record.jsonl.1`, ...) and the segments it
    may have been sealed into are looked at too."""
    if not data:
        return 0
    start = int(place["size"])
    found = _file_with_inode(path, int(place["dev"]), int(place["ino"]))
    if found is None:
        return _lines_in_compressed_segments(path, place, start, data)
    try:
        with open(found, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size <= start:
                return 0
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                return _matching_lines(view, start, data)
    except OSError:
        return 0


def _lines_in_compressed_segments(path: Path, place: dict[str, Any], start: int, data: bytes) -> int:
    """The file was sealed and compressed since it was noted: look in the compressed segments it
    can have become (numbered from the noted `sequence` on); its bytes, and so `start`, are the
    same there."""
    family = capture_log_family(path.name)
    if family is None or "sequence" not in place:
        return 0
    for segment in log_segments(path.parent, family):
        if segment.compressed and segment.sequence is not None and segment.sequence >= int(place["sequence"]):
            try:
                content = read_segment_bytes(segment.path)
            except (OSError, DamagedSegmentError):
                continue
            if len(content) > start and (matched := _matching_lines(content, start, data)):
                return matched
    return 0


def _file_with_inode(path: Path, dev: int, ino: int) -> Path | None:
    sealed = [segment.path for segment in _plain_sealed(path)]  # compressed ones have new inodes
    candidates = [path, *sorted(path.parent.glob(f"{path.name}?*")), *sealed]
    for candidate in candidates:
        try:
            status = candidate.stat()
        except OSError:
            continue
        if status.st_ino == ino and status.st_dev == dev:
            return candidate
    return None


def _plain_sealed(path: Path) -> list[LogSegment]:
    family = capture_log_family(path.name)
    if family is None:
        return []
    segments = log_segments(path.parent, family)
    return [segment for segment in segments if not segment.active and not segment.compressed]


def _matching_lines(view: mmap.mmap | bytes, start: int, data: bytes) -> int:
    first = data[: data.find(b"\n") + 1] or data
    at = view.find(first, start)
    while at > start and view[at - 1] != ord("\n"):  # only where a line starts
        at = view.find(first, at + 1)
    if at < 0:
        return 0
    matched = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n") or view[at + matched : at + matched + len(line)] != line:
            break
        matched += len(line)
    return matched
