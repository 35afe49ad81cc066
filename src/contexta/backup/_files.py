"""Copying a file while hashing it with BLAKE3, and the checks every path in a backup must pass.

One pass does both: what a backup records as a file's digest is the digest of the bytes it wrote,
and what a restore writes is checked against the manifest as it is written, so a file changed or
damaged between a check and a copy cannot slip through.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from blake3 import blake3

from contexta.errors import ValidationError

__all__ = ["CopiedFile", "copy_hashed", "safe_relative_path", "sync_and_hash", "sync_directory"]

_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class CopiedFile:
    """A file written into a backup or a restored workspace: where (relative), what it is for, its
    size and the BLAKE3 digest of its bytes."""

    path: str  # relative, with `/` separators
    role: str  # store, capture_log, outbox, artifact, gc_ledger
    size_bytes: int
    blake3: str


def copy_hashed(source: IO[bytes], target: Path, limit: int | None = None) -> tuple[int, str]:
    """Write `source`'s bytes (the first `limit` of them, when given) to a new file `target`, synced,
    and return their size and BLAKE3 digest. The target must not exist."""
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = blake3()
    size = 0
    with open(target, "xb") as out:
        while limit is None or size < limit:
            chunk = source.read(_CHUNK_BYTES if limit is None else min(_CHUNK_BYTES, limit - size))
            if not chunk:
                break
            hasher.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return size, hasher.hexdigest()


def sync_and_hash(path: Path) -> tuple[int, str]:
    """fsync a file something else wrote (SQLite's backup) and return its size and BLAKE3 digest."""
    hasher = blake3()
    size = 0
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
        while chunk := handle.read(_CHUNK_BYTES):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.hexdigest()


def safe_relative_path(text: object) -> PurePosixPath:
    """A manifest's file path as a relative path that stays inside the directory it is joined to;
    `ValidationError(backup_manifest_invalid)` for an absolute path, `..`, or anything else."""
    path = PurePosixPath(text) if isinstance(text, str) and text else None
    if path is None or path.is_absolute() or ".." in path.parts or str(path) != text or "\\" in text:
        raise ValidationError(
            f"the backup manifest lists a file path {text!r} that is not a plain relative path; "
            "the manifest was altered: make the backup again",
            code="backup_manifest_invalid",
            details={"path": str(text)},
        )
    return path


def sync_directory(directory: Path) -> None:
    """fsync a directory, so renames and new files in it survive a crash (where the OS allows)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
