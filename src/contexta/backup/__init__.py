"""Backing up a workspace, live or not, and restoring it: `backup_workspace` writes a consistent
copy with a manifest of BLAKE3 digests; `restore_workspace` checks the whole backup before it
replaces anything, and keeps the workspace it replaces.

Also exported from `contexta` itself (imported when first used)."""

from contexta.backup._backup import BackupResult, backup_workspace
from contexta.backup._files import CopiedFile
from contexta.backup._manifest import MANIFEST_NAME, BackupManifest, ExternalArtifact, read_manifest
from contexta.backup._restore import RestoreResult, restore_workspace

__all__ = [
    "MANIFEST_NAME",
    "BackupManifest",
    "BackupResult",
    "CopiedFile",
    "ExternalArtifact",
    "RestoreResult",
    "backup_workspace",
    "read_manifest",
    "restore_workspace",
]
