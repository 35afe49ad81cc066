"""Copying each kind of a live workspace's files into a backup, each consistently while another
process may be capturing into it.

- The store through SQLite's online backup API, in one step: one read transaction, so the copy is
  the store as some committed transaction left it, whatever writers do meanwhile.
- The capture log family by family: the sealed segments and the active file opened as one set (a
  segment sealed meanwhile makes it open them again, as readers do), and the active file copied up
  to the end of its last whole line at a moment no append is in progress (appends hold a shared
  `flock` while they write; a copy takes it exclusively for as long as it takes to read the size).
  Sealed segments are copied as they are on disk, compressed or not.
- Parked outbox batches, stored artifact copies and the gc ledger as the regular files they are
  (written whole and renamed into place); temporaries (hidden names) and symbolic links are left
  out, so nothing outside the workspace is ever copied.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from contexta.backup._files import CopiedFile, copy_hashed, sync_and_hash
from contexta.backup._manifest import ExternalArtifact
from contexta.config import CAPTURE_LOG_FILES, STORE_FILE_NAME
from contexta.contract._artifacts import path_of_location
from contexta.errors import StoreError
from contexta.store import StoreDatabase

__all__ = [
    "STORE_PATH",
    "copy_capture_log",
    "copy_directory",
    "copy_store",
    "copy_workspace_artifacts",
]

# Where each kind goes in a backup (and in a restored workspace): the default layout under the root.
STORE_PATH = f"metadata/{STORE_FILE_NAME}"
CAPTURE_PATH = "cache/capture"
_STORE_ATTEMPTS = 5
_TAIL_BYTES = 64 << 10
_LOCK_WAIT_S = 5.0


def copy_store(store_file: Path, files: Path) -> CopiedFile:
    """The store, copied with SQLite's online backup API through a read-only connection (nothing is
    written beside the workspace's store); retried when a writer changed the file under an
    unlocked read (see store/_read_only.py)."""
    target = files / STORE_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(_STORE_ATTEMPTS):
        database = StoreDatabase(store_file, read_only=True)
        try:
            with database.read() as source, contextlib.closing(sqlite3.connect(target)) as copy:
                source.backup(copy)
            break
        except StoreError as error:
            if error.code != "store_changed_while_read" or attempt == _STORE_ATTEMPTS - 1:
                raise
            target.unlink(missing_ok=True)
        finally:
            database.close_all()
    size, digest = sync_and_hash(target)
    return CopiedFile(STORE_PATH, "store", size, digest)


def _append_paused(descriptor: int) -> bool:
    """Take the active file's lock exclusively, so no append is half written while its size is read;
    False when it cannot be had (no locks on this file system, or an appender held it past
    `_LOCK_WAIT_S`: a stopped process must not stop a backup). The size is then cut at the last
    newline all the same, so only a line that was whole before the copy is in it."""
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)
        except OSError:
            return False


def _whole_lines_end(handle: IO[bytes]) -> int:
    """The size of the active file up to its last newline, read while no append is in progress."""
    descriptor = handle.fileno()
    locked = _append_paused(descriptor)
    try:
        size = os.fstat(descriptor).st_size
    finally:
        if locked:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    end = size
    while end > 0:
        start = max(0, end - _TAIL_BYTES)
        tail = os.pread(descriptor, end - start, start)
        newline = tail.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def _segment_names(capture_dir: Path, family: str) -> list[str]:
    from contexta.capture import log_segments  # the capture log's reader, imported by backups alone

    return [segment.path.name for segment in log_segments(capture_dir, family)]


@contextlib.contextmanager
def _opened_family(capture_dir: Path, family: str) -> Iterator[list[tuple[str, IO[bytes]]]]:
    """(file name, raw handle) of every segment of `family`, oldest first and the active file last,
    opened as one set: listed, opened, and listed again until nothing was sealed or compressed in
    between (an open handle keeps its file's bytes even if it is renamed or removed afterwards)."""
    while True:
        names = _segment_names(capture_dir, family)
        opened: list[tuple[str, IO[bytes]]] = []
        try:
            try:
                for name in names:
                    opened.append((name, open(capture_dir / name, "rb")))  # noqa: SIM115 - closed below
            except FileNotFoundError:
                continue  # sealed or compressed between listing and opening: list again
            if _segment_names(capture_dir, family) == names:
                yield opened
                return
        finally:
            for _, handle in opened:
                handle.close()


def copy_capture_log(capture_dir: Path, files: Path) -> list[CopiedFile]:
    """Every family's sealed segments and active file, each family as one consistent set."""
    copied: list[CopiedFile] = []
    for family, active_name in CAPTURE_LOG_FILES.items():
        with _opened_family(capture_dir, family) as opened:
            for name, handle in opened:
                limit = _whole_lines_end(handle) if name == active_name else None
                relative = f"{CAPTURE_PATH}/{name}"
                size, digest = copy_hashed(handle, files / relative, limit)
                copied.append(CopiedFile(relative, "capture_log", size, digest))
    return copied


def _regular_files(directory: Path) -> Iterator[Path]:
    """Regular files under `directory`, hidden names (temporaries, locks, notes) and links left out."""
    for folder, folders, names in os.walk(directory):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(names):
            path = Path(folder, name)
            if not name.startswith(".") and path.is_file() and not path.is_symlink():
                yield path


def copy_directory(directory: Path, prefix: str, role: str, files: Path) -> list[CopiedFile]:
    """The regular files under `directory`, copied to `prefix/<path below directory>`; a file removed
    while the copy runs (a batch delivered, a copy reclaimed) is left out."""
    copied: list[CopiedFile] = []
    for path in _regular_files(directory):
        relative = f"{prefix}/{path.relative_to(directory).as_posix()}"
        try:
            with open(path, "rb") as handle:
                size, digest = copy_hashed(handle, files / relative)
        except FileNotFoundError:
            continue
        copied.append(CopiedFile(relative, role, size, digest))
    return copied


def copy_workspace_artifacts(
    store_copy: Path, root: Path, files: Path, already: set[str]
) -> tuple[list[CopiedFile], list[ExternalArtifact]]:
    """Registered artifact files that lie inside the workspace (copied at their path below the root,
    unless `already` copied), and those outside it (named, never copied). Read from the backup's own
    copy of the store, so the list matches the store it is restored with."""
    uri = store_copy.resolve().as_uri() + "?mode=ro&immutable=1"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        rows = connection.execute(
            "SELECT artifact_ref, location_ref, hash_value FROM artifacts ORDER BY rowid"
        ).fetchall()
    real_root = os.path.realpath(root)
    copied: list[CopiedFile] = []
    external: list[ExternalArtifact] = []
    for artifact_ref, location_ref, hash_value in rows:
        path = os.path.realpath(path_of_location(str(location_ref)))
        if os.path.commonpath([real_root, path]) != real_root:
            external.append(ExternalArtifact(str(artifact_ref), str(location_ref), hash_value))
            continue
        relative = Path(os.path.relpath(path, real_root)).as_posix()
        if relative in already or not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as handle:
                size, digest = copy_hashed(handle, files / relative)
        except FileNotFoundError:
            continue
        already.add(relative)
        copied.append(CopiedFile(relative, "artifact", size, digest))
    return copied, external
