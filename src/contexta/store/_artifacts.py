"""The artifact index: registered manifests, and optional content-addressed copies of the files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from contexta.contract._artifacts import ArtifactManifest, path_of_location
from contexta.contract._hashing import hash_file
from contexta.errors import NotFoundError, ValidationError
from contexta.store._database import StoreDatabase
from contexta.store._executions import latest_execution_id
from contexta.store._metadata import manifest_from_row, require_parent
from contexta.store._tables import TABLES

__all__ = ["ArtifactStore"]

_TABLE = TABLES["artifacts"]


class ArtifactStore:
    """`ctx.artifact_store`: find what was registered; keep a copy that outlives the original file."""

    def __init__(self, database: StoreDatabase, content_dir: Path):
        self._database = database
        self.content_dir = content_dir

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

    def keep_copy(self, artifact_ref: str) -> Path:
        """Copy the artifact's file into `<workspace>/artifacts/<digest>` (once per digest) and return it.

        The copy is written under a temporary name, checked against the registered digest and renamed
        into place, so a half-copied file never appears under a digest's name.
        """
        manifest = self.get_manifest(artifact_ref)
        if manifest.hash_value is None:
            raise ValidationError(
                f"{artifact_ref} was registered without a digest; nothing to keep",
                code="artifact_without_digest",
            )
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
        with self._database.transaction() as connection:
            connection.execute(
                "UPDATE artifacts SET stored_path = ? WHERE artifact_ref = ? AND hash_value = ?",
                (str(target), artifact_ref, manifest.hash_value),
            )
        return target
