"""`backup_workspace`: a consistent copy of a workspace, live or not, with a manifest of digests.

Nothing in the workspace is written: the store is read through a read-only connection, the log and
the other files are only opened for reading (the active log file is briefly locked so that no append
is half-copied). The store is copied first and the capture log after it, so the log copy holds at
least everything the store copy does (`contexta repair` can rebuild a store from it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contexta import __version__
from contexta._backup._files import CopiedFile
from contexta._backup._manifest import FILES_DIRECTORY, BackupManifest, write_manifest
from contexta._backup._sources import (
    STORE_PATH,
    copy_capture_log,
    copy_directory,
    copy_store,
    copy_workspace_artifacts,
)
from contexta.config import UnifiedConfig, load_config, redacted_url
from contexta.contract import utc_now
from contexta.errors import StoreError, ValidationError
from contexta.store import require_store_file

__all__ = ["BackupResult", "backup_workspace"]


@dataclass(frozen=True, slots=True)
class BackupResult:
    """A finished backup: where it is and its manifest (every file, its size and BLAKE3 digest)."""

    destination: Path
    manifest: BackupManifest

    @property
    def total_bytes(self) -> int:
        return sum(item.size_bytes for item in self.manifest.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "destination": str(self.destination),
            "source": self.manifest.source,
            "created_at": self.manifest.created_at,
            "files": len(self.manifest.files),
            "total_bytes": self.total_bytes,
            "external_artifacts": [item.artifact_ref for item in self.manifest.external_artifacts],
        }


def _inside(path: Path, directory: Path) -> bool:
    real_path, real_directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([real_path, real_directory]) == real_directory


def _prepare_destination(dest: Path, root: Path) -> bool:
    """Make `dest` ready (created, or existing and empty); True when this call created it."""
    if _inside(dest, root):
        raise ValidationError(
            f"the backup destination {dest} is inside the workspace {root}; choose a directory outside it",
            code="backup_destination_inside_workspace",
            details={"destination": str(dest)},
        )
    if dest.exists() or dest.is_symlink():
        if not dest.is_dir() or any(dest.iterdir()):
            raise ValidationError(
                f"the backup destination {dest} already exists and is not an empty directory; a backup "
                "never writes over anything: choose a new directory",
                code="backup_destination_not_empty",
                details={"destination": str(dest)},
            )
        return False
    dest.mkdir(parents=True)
    return True


def _discard(dest: Path, created: bool) -> None:
    """Remove what a failed backup wrote (the destination was new or empty: nothing else is there)."""
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for entry in list(dest.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def backup_workspace(
    workspace: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    config: UnifiedConfig | Mapping[str, Any] | None = None,
) -> BackupResult:
    """Copy the workspace at `workspace` into the new (or empty) directory `dest`, consistently even
    while other processes capture into it: the store (SQLite's online backup), the capture log
    (sealed segments and whole lines of the active files), parked outbox batches, stored artifact
    copies and registered artifact files inside the workspace, then `manifest.json` listing each
    file's size and BLAKE3 digest. Artifact files outside the workspace are named in the manifest,
    never copied. `ValidationError` when `dest` exists and is not empty, or lies inside the
    workspace; `NotFoundError` when there is no workspace store there. A backup that fails removes
    what it wrote."""
    loaded = load_config(config, workspace=workspace)
    if loaded.store.url is not None:
        raise StoreError(
            f"backup copies the workspace's own SQLite store; this workspace's store is in PostgreSQL "
            f"({redacted_url(loaded.store.url)}): copy it with pg_dump",
            code="store_not_local",
        )
    layout = loaded.workspace
    root = layout.root
    require_store_file(root, layout.store_file)
    destination = Path(os.path.abspath(dest))
    created = _prepare_destination(destination, root)
    files = destination / FILES_DIRECTORY
    try:
        copied: list[CopiedFile] = [copy_store(layout.store_file, files)]
        copied += copy_capture_log(layout.capture_dir, files)
        copied += copy_directory(layout.outbox_dir, "cache/outbox", "outbox", files)
        # `contexta gc`'s ledger of reclaimed executions (cli/_gc_ledger.py): which stored artifact
        # copies a later gc may still remove.
        copied += copy_directory(layout.cache_dir / "gc", "cache/gc", "gc_ledger", files)
        copied += copy_directory(layout.artifacts_dir, "artifacts", "artifact", files)
        registered, external = copy_workspace_artifacts(
            files / STORE_PATH, root, files, {item.path for item in copied}
        )
        manifest = BackupManifest(
            created_at=utc_now(),
            source=str(root),
            contexta_version=__version__,
            files=(*copied, *registered),
            external_artifacts=tuple(external),
        )
        write_manifest(destination, manifest)
    except BaseException:
        _discard(destination, created)
        raise
    return BackupResult(destination, manifest)
