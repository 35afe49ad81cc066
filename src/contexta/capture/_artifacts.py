"""Registering artifact files (manifest, digest, binding) and verifying them later."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from contexta.capture._items import ScopeContext
from contexta.contract._artifacts import (
    ArtifactManifest,
    ArtifactSource,
    location_ref_for,
)
from contexta.contract._checks import json_attributes
from contexta.contract._hashing import hash_file
from contexta.contract._refs import artifact_ref as build_artifact_ref
from contexta.contract._refs import normalize_name, parse_ref
from contexta.contract._timestamps import utc_now
from contexta.errors import LifecycleError, ValidationError

__all__ = ["ArtifactRegistration", "register_artifact"]

_suffix_counter = itertools.count()


@dataclass(frozen=True, slots=True)
class ArtifactRegistration:
    manifest: ArtifactManifest
    source: ArtifactSource
    binding_status: str


def _unique_suffix(run_ref: str, kind: str, path: str) -> str:
    seed = f"{run_ref}|{kind}|{path}|{time.time_ns()}|{os.getpid()}|{next(_suffix_counter)}"
    return xxhash.xxh3_64_hexdigest(seed.encode("utf-8", "surrogatepass"))[:12]


def register_artifact(
    context: ScopeContext,
    kind: str,
    path: str | os.PathLike[str],
    *,
    attributes: Any = None,
    artifact_ref: str | None = None,
    compute_hash: bool = True,
    allow_missing: bool = False,
) -> ArtifactRegistration:
    """Check, hash and describe one artifact file for the run of `context` (runs in the caller)."""
    if context.run_ref is None:
        raise LifecycleError(
            f"{context.ref} has no run; artifacts belong to a run: pass run_ref= when opening the deployment",
            code="artifact_without_run",
        )
    kind = normalize_name(kind, "artifact kind")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValidationError(
            f"artifact path must be a non-empty path, got {path!r}", code="artifact_path_invalid"
        )
    absolute = os.path.abspath(os.fspath(path))
    try:  # a name decoded from non-UTF-8 bytes is fine (see location_ref_for); half an emoji is not
        os.fsencode(absolute)
    except UnicodeEncodeError:
        raise ValidationError(
            f"artifact path {absolute[:80]!r} holds a lone surrogate, which no file name can; "
            "decode the name with os.fsdecode() or fix the text",
            code="artifact_path_invalid",
        ) from None
    checked_attributes = json_attributes(attributes)
    if artifact_ref is None:
        artifact_ref = build_artifact_ref(
            context.run_ref, kind, _unique_suffix(context.run_ref, kind, absolute)
        )
    else:
        parsed = parse_ref(artifact_ref, "artifact")
        if parsed.components[:2] != parse_ref(context.run_ref).components:
            raise ValidationError(
                f"artifact_ref {artifact_ref!r} does not belong to {context.run_ref}",
                code="ref_parent_mismatch",
            )
    exists = os.path.exists(absolute)
    hash_value: str | None = None
    size: int | None = None
    if exists:
        if compute_hash:
            digest = hash_file(Path(absolute))
            hash_value, size = digest.hash_value, digest.size_bytes
        else:
            size = os.stat(absolute).st_size
    elif not allow_missing:
        raise ValidationError(
            f"artifact file {absolute!r} does not exist; write it first, "
            "or pass allow_missing=True to record "
            "a pending binding",
            code="artifact_missing",
            details={"path": absolute},
        )
    location_ref = location_ref_for(absolute)
    manifest = ArtifactManifest(
        artifact_ref=artifact_ref,
        artifact_kind=kind,
        run_ref=context.run_ref,
        location_ref=location_ref,
        created_at=utc_now(),
        hash_value=hash_value,
        size_bytes=size,
        stage_execution_ref=context.stage_ref,
        attributes=checked_attributes,
    )
    # The source's uri is the path itself, or the same `file:` URI when UTF-8 cannot spell the path.
    uri = absolute if location_ref.startswith("path:") else location_ref
    return ArtifactRegistration(
        manifest, ArtifactSource(uri=uri, exists=exists), "BOUND" if exists else "PENDING"
    )
