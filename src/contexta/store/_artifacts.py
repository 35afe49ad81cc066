"""The artifact index: registered manifests, and optional content-addressed copies of the files
(under `<workspace>/artifacts/`, or in S3-compatible storage when `artifacts.url` is set)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from contexta.contract._artifacts import ArtifactManifest, path_of_location
from contexta.contract._hashing import hash_file
from contexta.errors import ArtifactStorageError, NotFoundError, ValidationError
from contexta.store._database import StoreDatabase
from contexta.store._executions import latest_execution_id
from contexta.store._metadata import manifest_from_row, require_parent
from contexta.store._tables import TABLES

__all__ = ["ArtifactStore", "copy_verified"]

if TYPE_CHECKING:  # the S3 backend is imported when a workspace with artifacts.url first copies
    from contexta.store._s3_artifacts import S3ArtifactBackend

_TABLE = TABLES["artifacts"]


def copy_verified(source: Path, digest: str, target: Path) -> Path:
    """Copy `source` to `target` through a partial file renamed into place only when the copy hashes
    to `digest`; `ArtifactStorageError(artifact_digest_mismatch)` (and nothing at `target`) otherwise."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(source, partial)
        actual = hash_file(partial).hash_value
        if actual != digest:
            raise ArtifactStorageError(
                f"{source} hashes to {actual[:16]}…, not the registered {digest[:16]}…; "
                f"nothing was written to {target}",
                code="artifact_digest_mismatch",
                details={"location": str(source), "expected_hash": digest, "actual_hash": actual},
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


class ArtifactStore:
    """`ctx.artifact_store`: find what was registered; keep a copy that outlives the original file."""

    def __init__(self, database: StoreDatabase, content_dir: Path, *, remote_url: str | None = None):
        self._database = database
        self.content_dir = content_dir
        self.remote_url = remote_url
        self._remote: S3ArtifactBackend | None = None

    def remote(self) -> S3ArtifactBackend | None:
        """The S3 backend copies go to (`artifacts.url`), or None for the workspace's own directory."""
        if self.remote_url is None:
            return None
        if self._remote is None:
            from contexta.store._s3_artifacts import S3ArtifactBackend

            self._remote = S3ArtifactBackend.from_url(self.remote_url)
        return self._remote

    def put_manifest(self, manifest: ArtifactManifest, *, binding_status: str = "BOUND") -> None:
        if not isinstance(manifest, ArtifactManifest):
            raise ValidationError("put_manifest takes an ArtifactManifest", code="model_type_invalid")
        if binding_status not in ("BOUND", "PENDING"):
            raise ValidationError("binding_status must be BOUND or PENDING", code="binding_status_invalid")
        with self._database.transaction() as connection:
            require_parent(connection, "run_ref", manifest.run_ref)
            _TABLE.upsert(
                connection,
                {**manifest.to_dict(), "execution_id": latest_execution_id(connection, manifest.run_ref)},
                binding_status=binding_status,
                source_exists=int(binding_status == "BOUND"),
            )

    def get_manifest(self, artifact_ref: str) -> ArtifactManifest:
        with self._database.read() as connection:
            # A ref given by hand can be registered by several executions: the last one registered.
            row = connection.execute(
                f"SELECT {_TABLE.column_list} FROM artifacts WHERE artifact_ref = ? ORDER BY rowid DESC",
                (artifact_ref,),
            ).fetchone()
        if row is None:
            raise NotFoundError(
                f"no artifact {artifact_ref} in the store",
                code="artifact_not_found",
                details={"artifact_ref": artifact_ref},
            )
        return manifest_from_row(row)

    def list_manifests(self, run_ref: str | None = None) -> list[ArtifactManifest]:
        """Every manifest, or those of the latest execution of `run_ref`."""
        with self._database.read() as connection:
            where, parameters = (
                ("WHERE execution_id = ?", (latest_execution_id(connection, run_ref) or "",))
                if run_ref
                else ("", ())
            )
            rows = connection.execute(
                f"SELECT {_TABLE.column_list} FROM artifacts {where} ORDER BY created_at, rowid", parameters
            ).fetchall()
        return [manifest_from_row(row) for row in rows]

    def stored_location(self, artifact_ref: str) -> str | None:
        """Where the kept copy of `artifact_ref` is (a path, or `s3://bucket/key`); None if none was kept."""
        with self._database.read() as connection:
            row = connection.execute(
                "SELECT stored_path FROM artifacts WHERE artifact_ref = ? ORDER BY rowid DESC",
                (artifact_ref,),
            ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def keep_copy(self, artifact_ref: str) -> Path | str:
        """Keep a copy of the artifact's file, once per digest: the `Path` of
        `<workspace>/artifacts/<aa>/<digest>`, or with `artifacts.url` set the `s3://bucket/key` of
        `<prefix>/blake3/<aa>/<digest>`. The index records where (`stored_location`).

        The copy is checked against the registered digest before it appears under the digest's name:
        locally a temporary file renamed into place, in S3 a multipart upload completed only once
        the bytes sent hash to the digest. Endpoint and credentials never reach the index.
        """
        manifest = self.get_manifest(artifact_ref)
        if manifest.hash_value is None:
            raise ValidationError(
                f"{artifact_ref} was registered without a digest; nothing to keep",
                code="artifact_without_digest",
            )
        remote = self.remote()
        if remote is not None:
            source = Path(path_of_location(manifest.location_ref))
            size = manifest.size_bytes if manifest.size_bytes is not None else source.stat().st_size
            location = remote.put_file(source, manifest.hash_value, size)
            self._record_copy(artifact_ref, manifest.hash_value, location)
            return location
        target = self.content_dir / manifest.hash_value[:2] / manifest.hash_value
        if not target.exists():
            source = Path(path_of_location(manifest.location_ref))
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            shutil.copyfile(source, partial)
            if hash_file(partial).hash_value != manifest.hash_value:
                partial.unlink()
                raise ValidationError(
                    f"{source} no longer matches the digest registered for {artifact_ref}",
                    code="artifact_changed",
                )
            os.replace(partial, target)
        self._record_copy(artifact_ref, manifest.hash_value, str(target))
        return target

    def _record_copy(self, artifact_ref: str, digest: str, location: str) -> None:
        with self._database.transaction() as connection:
            connection.execute(
                "UPDATE artifacts SET stored_path = ? WHERE artifact_ref = ? AND hash_value = ?",
                (location, artifact_ref, digest),
            )
