"""A backup's manifest: every file it holds with its size and BLAKE3 digest, and the artifact files
it names but does not hold (they lie outside the workspace).

The manifest is written last, under a temporary name and renamed into place: a backup cut short
(a kill, a full disk) has no manifest, and a restore refuses it rather than restore half a workspace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from contexta._backup._files import CopiedFile, safe_relative_path, sync_directory
from contexta.errors import ValidationError

__all__ = [
    "FILES_DIRECTORY",
    "MANIFEST_NAME",
    "BackupManifest",
    "ExternalArtifact",
    "read_manifest",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
FILES_DIRECTORY = "workspace"  # the workspace's files, at their paths relative to its root
_FORMAT = "contexta-backup"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class ExternalArtifact:
    """A registered artifact file outside the workspace: named by the backup, not copied into it."""

    artifact_ref: str
    location: str
    hash_value: str | None


@dataclass(frozen=True, slots=True)
class BackupManifest:
    """What a backup holds: when and from where it was taken, by which Contexta, each file with its
    size and BLAKE3 digest, and the registered artifact files it names but does not hold."""

    created_at: str
    source: str  # the workspace root the backup was taken from
    contexta_version: str
    files: tuple[CopiedFile, ...]
    external_artifacts: tuple[ExternalArtifact, ...]

    def to_json(self) -> bytes:
        document = {
            "format": _FORMAT,
            "version": _VERSION,
            "created_at": self.created_at,
            "source": self.source,
            "contexta_version": self.contexta_version,
            "files": [
                {"path": item.path, "role": item.role, "size_bytes": item.size_bytes, "blake3": item.blake3}
                for item in self.files
            ],
            "external_artifacts": [
                {"artifact_ref": item.artifact_ref, "location": item.location, "hash_value": item.hash_value}
                for item in self.external_artifacts
            ],
        }
        return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def write_manifest(directory: Path, manifest: BackupManifest) -> Path:
    """Write `manifest.json` into `directory` atomically (temporary name, fsync, rename)."""
    target = directory / MANIFEST_NAME
    temporary = directory / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    with open(temporary, "wb") as out:
        out.write(manifest.to_json())
        out.flush()
        os.fsync(out.fileno())
    os.rename(temporary, target)
    sync_directory(directory)
    return target


def _invalid(source: Path, why: str) -> ValidationError:
    return ValidationError(
        f"{source / MANIFEST_NAME} is not a Contexta backup manifest ({why}); point at a directory "
        "`contexta backup` wrote, or make the backup again",
        code="backup_manifest_invalid",
        details={"path": str(source)},
    )


def _file(entry: Any, source: Path) -> CopiedFile:
    if not isinstance(entry, dict):
        raise _invalid(source, "a file entry is not an object")
    path, role, size, digest = (entry.get(key) for key in ("path", "role", "size_bytes", "blake3"))
    safe_relative_path(path)
    if not isinstance(role, str) or type(size) is not int or size < 0 or not isinstance(digest, str):
        raise _invalid(source, f"the entry of {path!r} lacks its role, size or digest")
    return CopiedFile(str(path), role, size, digest)


def read_manifest(source: Path) -> BackupManifest:
    """The manifest of the backup in `source`; `ValidationError` with `backup_manifest_missing` (not a
    backup, or one cut short before its manifest) or `backup_manifest_invalid` (unreadable, altered,
    or a path that would leave the backup)."""
    path = source / MANIFEST_NAME
    try:
        document = orjson.loads(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError):  # nothing there, or a file rather than a backup
        raise ValidationError(
            f"{source} holds no {MANIFEST_NAME}: it is not a Contexta backup, or its backup was cut short "
            "(the manifest is written last); make the backup again",
            code="backup_manifest_missing",
            details={"path": str(source)},
        ) from None
    except orjson.JSONDecodeError:
        raise _invalid(source, "it is not JSON: truncated or altered") from None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise _invalid(source, "its format is not contexta-backup")
    if document.get("version") != _VERSION:
        raise _invalid(source, f"version {document.get('version')!r}; this Contexta reads version {_VERSION}")
    files = document.get("files")
    externals = document.get("external_artifacts", [])
    if not isinstance(files, list) or not isinstance(externals, list):
        raise _invalid(source, "its file lists are not lists")
    return BackupManifest(
        created_at=str(document.get("created_at")),
        source=str(document.get("source")),
        contexta_version=str(document.get("contexta_version")),
        files=tuple(_file(entry, source) for entry in files),
        external_artifacts=tuple(
            ExternalArtifact(str(item.get("artifact_ref")), str(item.get("location")), item.get("hash_value"))
            for item in externals
            if isinstance(item, dict)
        ),
    )
