"""Artifact models: a file an run produced, pinned by size and BLAKE3 digest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from contexta.contract._checks import (
    check_child_ref,
    check_choice,
    check_optional_ref,
    check_ref,
    check_text,
    check_timestamp,
    json_attributes,
)
from contexta.contract._model import ContractModel
from contexta.contract._refs import normalize_name
from contexta.errors import ValidationError

__all__ = [
    "BINDING_STATUSES",
    "HASH_ALGORITHMS",
    "ArtifactManifest",
    "ArtifactSource",
    "location_ref_for",
    "path_of_location",
]

HASH_ALGORITHMS = ("blake3",)
BINDING_STATUSES = ("BOUND", "PENDING")


def location_ref_for(path: str) -> str:
    """The `location_ref` of the file at absolute `path`: `path:<path>`, or, for a file name whose
    bytes are not UTF-8 (Python holds them as surrogate escapes, `os.fsdecode(b"model-\\xff.bin")`,
    which no UTF-8 log or SQLite text can), its `file:` URI: `file:///dir/model-%FF.bin`, whose %XX
    escapes keep every byte, so `path_of_location` finds the same file again."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        from urllib.parse import quote  # here: urllib costs `import contexta` 2 ms

        return "file://" + quote(os.fsencode(path))
    return f"path:{path}"


def path_of_location(location_ref: str) -> str:
    """The file path a `location_ref` names (`path:` as written, `file:` URIs decoded byte for byte)."""
    scheme, _, rest = location_ref.partition(":")
    if scheme == "file":
        from urllib.parse import unquote_to_bytes

        return os.fsdecode(unquote_to_bytes(rest.removeprefix("//")))
    return rest


@dataclass(frozen=True, slots=True)
class ArtifactManifest(ContractModel):
    artifact_ref: str
    artifact_kind: str
    run_ref: str
    location_ref: str
    created_at: str
    hash_algorithm: str = "blake3"
    hash_value: str | None = None
    size_bytes: int | None = None
    stage_execution_ref: str | None = None
    attributes: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        ref = check_ref(self.artifact_ref, "artifact", "artifact_ref")
        run = check_ref(self.run_ref, "run", "run_ref")
        check_child_ref(ref, run, "artifact_ref", "run_ref")
        if normalize_name(self.artifact_kind, "artifact_kind") != self.artifact_kind:
            raise ValidationError(
                f"artifact_kind {self.artifact_kind!r} must be a normalised name", code="name_invalid"
            )
        stage = check_optional_ref(self.stage_execution_ref, "stage", "stage_execution_ref")
        if stage is not None:
            check_child_ref(stage, run, "stage_execution_ref", "run_ref")
        check_text(self.location_ref, "location_ref", optional=False)
        if ":" not in self.location_ref:
            raise ValidationError(
                f"location_ref {self.location_ref!r} needs a scheme such as 'path:'", code="field_invalid"
            )
        object.__setattr__(self, "created_at", check_timestamp(self.created_at, "created_at"))
        check_choice(self.hash_algorithm, HASH_ALGORITHMS, "hash_algorithm")
        if self.hash_value is not None and (
            not isinstance(self.hash_value, str)
            or len(self.hash_value) != 64
            or any(c not in "0123456789abcdef" for c in self.hash_value)
        ):
            raise ValidationError(
                "hash_value must be a 64-character lower-case hex digest", code="field_invalid"
            )
        if self.size_bytes is not None and (type(self.size_bytes) is not int or self.size_bytes < 0):
            raise ValidationError("size_bytes must be a non-negative int", code="field_invalid")
        object.__setattr__(self, "attributes", json_attributes(self.attributes))


@dataclass(frozen=True, slots=True)
class ArtifactSource(ContractModel):
    """Where the registered bytes were read from, and whether they were there."""

    uri: str
    exists: bool
    kind: str = "PATH"

    def __post_init__(self) -> None:
        check_text(self.uri, "uri", optional=False)
        if type(self.exists) is not bool:
            raise ValidationError("exists must be a bool", code="field_invalid")
        check_choice(self.kind, ("PATH",), "kind")
