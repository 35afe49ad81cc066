"""Checking that an artifact is still the file it was registered as, by hashing it again.

Both wings need it: a capture verifies what it registered (`ctx.verify_artifact`), and a reader of a
workspace (`contexta verify`) checks what the store holds, without capturing anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contexta.contract._artifacts import ArtifactManifest, location_ref_for, path_of_location
from contexta.contract._hashing import hash_file

__all__ = ["ArtifactVerification", "verify_manifest"]


@dataclass(frozen=True, slots=True)
class ArtifactVerification:
    """The result of re-hashing a registered artifact: `verified`, `missing`, `size_mismatch`,
    `hash_mismatch`, or `unverifiable` (registered without a digest)."""

    artifact_ref: str
    status: str
    path: str
    expected_hash: str | None
    actual_hash: str | None
    expected_size: int | None
    actual_size: int | None

    @property
    def ok(self) -> bool:
        return self.status == "verified"

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON can carry them: a path whose bytes are not UTF-8 as its `file:` URI
        (see `location_ref_for`), since JSON text cannot hold the surrogate escapes `path` keeps."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        location = location_ref_for(self.path)
        if not location.startswith("path:"):
            fields["path"] = location
        return fields


def verify_manifest(manifest: ArtifactManifest) -> ArtifactVerification:
    """Re-hash the file a manifest points to and say whether it is still the registered one."""
    path = path_of_location(manifest.location_ref)

    def result(
        status: str, actual_hash: str | None = None, actual_size: int | None = None
    ) -> ArtifactVerification:
        return ArtifactVerification(
            manifest.artifact_ref,
            status,
            path,
            manifest.hash_value,
            actual_hash,
            manifest.size_bytes,
            actual_size,
        )

    if not os.path.isfile(path):
        return result("missing")
    if manifest.hash_value is None:
        return result("unverifiable", None, os.stat(path).st_size)
    digest = hash_file(Path(path))
    if manifest.size_bytes is not None and digest.size_bytes != manifest.size_bytes:
        return result("size_mismatch", digest.hash_value, digest.size_bytes)
    if digest.hash_value != manifest.hash_value:
        return result("hash_mismatch", digest.hash_value, digest.size_bytes)
    return result("verified", digest.hash_value, digest.size_bytes)
