"""`restore_workspace`: a workspace rebuilt from a backup, checked whole before anything is replaced.

Every file the manifest lists is copied into a hidden sibling of the target and hashed as it is
copied; one that is missing, shorter, longer or different (BLAKE3) stops the restore, names the
file, removes the sibling, and leaves the target as it was. The restored store must pass SQLite's
quick check. Only then does the restored directory take the target's place (`_swap.py`), the old
workspace kept beside it. A target some process is capturing into (it holds a run's owner lock,
see contexta/_liveness.py) is refused, before the copy and again just before the swap.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contexta._backup._files import CopiedFile, copy_hashed, safe_relative_path
from contexta._backup._manifest import FILES_DIRECTORY, BackupManifest, read_manifest
from contexta._backup._sources import STORE_PATH
from contexta._backup._swap import put_in_place
from contexta.config import UnifiedConfig, load_config
from contexta.errors import ConflictError, ValidationError

__all__ = ["RestoreResult", "restore_workspace"]


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """A finished restore: the workspace, where the workspace it replaced was kept (None when there
    was none), and how many files and bytes were restored."""

    workspace: Path
    previous_workspace: Path | None
    files: int
    total_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "previous_workspace": None if self.previous_workspace is None else str(self.previous_workspace),
            "files": self.files,
            "total_bytes": self.total_bytes,
        }


def _damaged(item: CopiedFile, why: str, target: Path) -> ValidationError:
    return ValidationError(
        f"backup file {item.path} {why}: the backup is damaged or was altered, so nothing was restored "
        f"and {target} is unchanged; restore from another backup",
        code="backup_damaged",
        details={"path": item.path},
    )


def _check_listing(manifest: BackupManifest, source: Path) -> None:
    duplicated = [path for path, count in Counter(item.path for item in manifest.files).items() if count > 1]
    if duplicated or not any(item.path == STORE_PATH for item in manifest.files):
        why = f"it lists {duplicated[0]} twice" if duplicated else f"it lists no store ({STORE_PATH})"
        raise ValidationError(
            f"the manifest of {source} is not usable ({why}); make the backup again",
            code="backup_manifest_invalid",
            details={"path": str(source)},
        )


def _refuse_live(target: Path, live_dir: Path) -> None:
    from contexta.store import any_owner_alive

    if live_dir.is_dir() and any_owner_alive(live_dir):
        raise ConflictError(
            f"a process is capturing into {target} (it holds a run open); restoring would take the "
            "workspace from under it. Stop it first, or restore into another --workspace",
            code="workspace_live",
            details={"workspace": str(target)},
        )


def _restore_file(files: Path, staging: Path, item: CopiedFile, target: Path) -> None:
    relative = safe_relative_path(item.path)
    source = files / relative
    if source.is_symlink() or not source.is_file():
        raise _damaged(item, "is missing", target)
    with open(source, "rb") as handle:
        # One byte past the listed size: a longer file is found without reading all of it.
        size, digest = copy_hashed(handle, staging / relative, item.size_bytes + 1)
    if size != item.size_bytes:
        shorter = "truncated" if size < item.size_bytes else "longer than listed"
        raise _damaged(item, f"is {shorter} ({size} bytes, the manifest says {item.size_bytes})", target)
    if digest != item.blake3:
        raise _damaged(item, "does not match its BLAKE3 digest in the manifest", target)


def _check_store(store: Path, target: Path) -> None:
    uri = store.resolve().as_uri() + "?mode=ro&immutable=1"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            (verdict,) = connection.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as error:
        verdict = str(error)
    if verdict != "ok":
        raise ValidationError(
            f"the backup's store does not pass SQLite's check ({verdict}); nothing was restored and "
            f"{target} is unchanged",
            code="backup_damaged",
            details={"path": STORE_PATH},
        )


def restore_workspace(
    src: str | os.PathLike[str],
    workspace: str | os.PathLike[str],
    *,
    config: UnifiedConfig | Mapping[str, Any] | None = None,
) -> RestoreResult:
    """Restore the backup in `src` as the workspace at `workspace` (its root; the restored workspace
    has the default layout under it). Every file is checked against the manifest before anything is
    replaced: `ValidationError(backup_damaged)` names a missing, truncated or altered file and leaves
    the target untouched. `ConflictError(workspace_live)` when a process is capturing into the
    target. An existing workspace is kept beside the restored one (`previous_workspace`)."""
    source = Path(os.path.abspath(src))
    manifest = read_manifest(source)
    _check_listing(manifest, source)
    layout = load_config(config, workspace=workspace).workspace
    # A workspace path that is a symbolic link (put on another disk) is restored where it points:
    # the link stays, and the directory it names is the one replaced.
    target = Path(os.path.realpath(layout.root)) if layout.root.is_symlink() else layout.root
    if os.path.commonpath([os.path.realpath(source), os.path.realpath(target)]) in (
        os.path.realpath(source),
        os.path.realpath(target),
    ):
        raise ValidationError(
            f"the backup {source} and the workspace {target} overlap; restore into a directory of its own",
            code="restore_target_invalid",
        )
    if target.exists() and not target.is_dir():
        raise ValidationError(f"{target} is not a directory", code="restore_target_invalid")
    _refuse_live(target, layout.live_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.restoring-{os.getpid()}-{os.urandom(3).hex()}")
    staging.mkdir()
    try:
        for item in manifest.files:
            _restore_file(source / FILES_DIRECTORY, staging, item, target)
        _check_store(staging / STORE_PATH, target)
        _refuse_live(target, layout.live_dir)
        previous = put_in_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RestoreResult(
        target, previous, len(manifest.files), sum(item.size_bytes for item in manifest.files)
    )
