"""Streaming BLAKE3 digests of artifact files, fast enough for multi-GB checkpoints.

Large regular files go through one `update_mmap` call with blake3's own threads: it releases the GIL
for the whole file, where a Python read loop would wait for the GIL at every chunk beside a busy
training thread. Only regular files are mapped (a FIFO or a device could block or never end), and a
file that changes while it is hashed is refused rather than given a digest of bytes that never existed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

from contexta.errors import ValidationError

__all__ = ["MMAP_THRESHOLD_BYTES", "FileDigest", "hash_file"]

MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
_SMALL_READ_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileDigest:
    hash_value: str
    size_bytes: int


def _fingerprint(info: os.stat_result) -> tuple[int, int, int]:
    return (info.st_size, info.st_mtime_ns, info.st_ino)


def hash_file(path: Path) -> FileDigest:
    """The BLAKE3 digest and size of the regular file at `path`."""
    try:
        before = os.stat(path)
    except FileNotFoundError:
        raise ValidationError(
            f"artifact file {str(path)!r} does not exist",
            code="artifact_missing",
            details={"path": str(path)},
        ) from None
    if not stat.S_ISREG(before.st_mode):
        kind = "a directory" if stat.S_ISDIR(before.st_mode) else "not a regular file"
        raise ValidationError(
            f"artifact path {str(path)!r} is {kind}; register a regular file (archive a directory first)",
            code="artifact_not_regular_file",
            details={"path": str(path)},
        )
    hasher = blake3(max_threads=blake3.AUTO)
    if before.st_size >= MMAP_THRESHOLD_BYTES:
        hasher.update_mmap(path)
        size = before.st_size
    else:
        size = 0
        with open(path, "rb") as handle:
            while chunk := handle.read(_SMALL_READ_BYTES):
                hasher.update(chunk)
                size += len(chunk)
                if size > before.st_size:
                    break
    after = os.stat(path)
    if _fingerprint(after) != _fingerprint(before) or size != before.st_size:
        raise ValidationError(
            f"artifact file {str(path)!r} changed while it was hashed; register it once it is fully written",
            code="artifact_changed_while_hashing",
            details={"path": str(path)},
        )
    return FileDigest(hasher.hexdigest(), size)
