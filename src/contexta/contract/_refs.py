"""Refs: the stable, human-readable identifiers that tie every record to its place in a run.

A ref is `kind:component.component...`; each component is `[a-z0-9]+(-[a-z0-9]+)*`, at most 63
characters, and a child's ref extends its parent's, so ownership can be read off the ref.

A name becomes its component by `ref_component`: a name already in ref form is its own component
(`linear-svm`, `epoch-1`); any other name is normalised (lower-case, other characters folded into
`-`) and suffixed with a hash of the exact name typed, so `ResNet 50`, `resnet_50` and `resnet-50`
get three refs and two names never share one. The name itself is kept beside the ref.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

import xxhash

from contexta.errors import ValidationError

__all__ = [
    "EXECUTION_ID_LENGTH",
    "MAX_COMPONENT_LENGTH",
    "MAX_REF_LENGTH",
    "REF_KINDS",
    "ParsedRef",
    "artifact_ref",
    "batch_ref",
    "deployment_ref",
    "execution_of_record_ref",
    "is_component",
    "is_execution_id",
    "new_execution_id",
    "normalize_name",
    "operation_ref",
    "parse_ref",
    "project_ref",
    "record_id_prefix",
    "record_ref",
    "ref_component",
    "run_ref",
    "sample_ref",
    "stage_ref",
]

MAX_COMPONENT_LENGTH = 63
MAX_REF_LENGTH = 255
# A name as typed may be longer than its component (a hashed component keeps only part of it).
MAX_NAME_LENGTH = 512
# Hex digits of the name's hash in a hashed component: 64 bits, so even a million names in one
# scope that share their normalised form (names in a script without Latin letters or digits
# normalise to nothing) collide with a chance of about 3 in 100 million.
NAME_HASH_LENGTH = 16

_COMPONENT = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_NOT_COMPONENT_CHARS = re.compile(r"[^a-z0-9]+")

# kind -> how many components its ref has (None: sample refs have 4 or 5, stage- or batch-owned).
REF_KINDS: dict[str, tuple[int, ...]] = {
    "project": (1,),
    "run": (2,),
    "stage": (3,),
    "batch": (4,),
    "sample": (4, 5),
    "operation": (4,),
    "deployment": (2,),
    "record": (3,),
    "artifact": (3,),
}


def is_component(text: str) -> bool:
    """True when `text` is already a valid ref component."""
    return len(text) <= MAX_COMPONENT_LENGTH and _COMPONENT.fullmatch(text) is not None


def normalize_name(name: str, what: str = "name") -> str:
    """The ref component for a user-given name: lower-case, other characters folded into `-`."""
    if not isinstance(name, str):
        raise ValidationError(
            f"{what} must be a string, got {type(name).__name__}", code="name_invalid", details={"what": what}
        )
    return _normalize_text(name, what)


@lru_cache(maxsize=4096)
def _normalize_text(name: str, what: str) -> str:
    return _normalised(name, what, letters_of_any_script=False)


def _normalised(name: str, what: str, *, letters_of_any_script: bool) -> str:
    """The name lower-cased with every run of other characters folded into one `-`; refused when
    that leaves nothing (unless the name has letters of another script, which `ref_component`
    keeps apart by its hash) or more than a component holds."""
    stem = _NOT_COMPONENT_CHARS.sub("-", name.lower()).strip("-")
    if not stem and not (letters_of_any_script and any(character.isalnum() for character in name)):
        raise ValidationError(
            f"{what} {name[:80]!r} has no letters or digits; give it a name such as 'train' or 'epoch-1'",
            code="name_empty",
            details={"what": what, "name": name[:80]},
        )
    if len(stem) > MAX_COMPONENT_LENGTH:
        raise ValidationError(
            f"{what} {name[:80]!r} is {len(stem)} characters once normalised; the limit is "
            f"{MAX_COMPONENT_LENGTH}",
            code="name_too_long",
            details={"what": what, "name": name[:80]},
        )
    return stem


def ref_component(name: str, what: str = "name") -> str:
    """The ref component of a name as typed: itself when already in ref form, otherwise its
    normalised form (shortened to fit) joined by `-` to a 16-hex-digit hash of the exact name.

    Stable (the same name always gives the same component) and never shared by two different names:
    a name kept as it is never ends in 16 hex digits (one that does, in ref form or not, is hashed
    like any other), so it cannot be another name's hashed component, and the hash tells every other
    pair apart. `ValidationError` for a name without letters or digits (`name_empty`) or whose normalised
    form exceeds 63 characters (`name_too_long`), as `normalize_name` refuses them.
    """
    if not isinstance(name, str):
        raise ValidationError(
            f"{what} must be a string, got {type(name).__name__}", code="name_invalid", details={"what": what}
        )
    return _component_of(name, what)


# What `ref_component` appends to a name not in ref form. A name in ref form that ends like this (a
# component copied from a listing and typed as a name) is hashed too, so the ref it would have kept
# can never be another name's.
_HASHED_ENDING = re.compile(rf"(?:^|-)[0-9a-f]{{{NAME_HASH_LENGTH}}}$")


@lru_cache(maxsize=8192)
def _component_of(name: str, what: str) -> str:
    if is_component(name) and _HASHED_ENDING.search(name) is None:
        return name
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"{what} is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}",
            code="name_too_long",
            details={"what": what, "name": name[:80]},
        )
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"{what} {name[:80]!r} is not valid text (it holds a lone surrogate); decode it properly",
            code="name_invalid",
            details={"what": what},
        ) from None
    stem = _normalised(name, what, letters_of_any_script=True)
    digest = xxhash.xxh3_64_hexdigest(encoded)
    stem = stem[: MAX_COMPONENT_LENGTH - NAME_HASH_LENGTH - 1].rstrip("-")
    return f"{stem}-{digest}" if stem else digest


_EXECUTION_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
EXECUTION_ID_LENGTH = 16


def new_execution_id() -> str:
    """A fresh execution id: 16 hex digits, never all digits (`run@3` means the third execution, so
    an id must not read as a number)."""
    while True:
        candidate = os.urandom(EXECUTION_ID_LENGTH // 2).hex()
        if not candidate.isdigit():
            return candidate


def is_execution_id(text: str) -> bool:
    """True for text shaped like an execution id (ids of stores migrated from schema 1 have a `v1-`
    prefix); a plain number is an execution's position, not its id."""
    return _EXECUTION_ID.fullmatch(text) is not None and not text.isdigit()


def record_id_prefix(execution_id: str | None, id_prefix: str) -> str:
    """What a captured record's id starts with: its run execution's id, then the capturing process's
    prefix (`{execution id}-{8 hex}-`), so a record names the execution it belongs to wherever it is
    read (the capture log's envelope keeps exactly the fields SPEC section 5 lists)."""
    return id_prefix if not execution_id else f"{execution_id}-{id_prefix}"


def execution_of_record_ref(record_ref: str) -> str | None:
    """The execution a captured record ref names (see `record_id_prefix`), or None for a ref that
    names none (written by hand, by a run-less deployment, or before executions existed)."""
    record_id = record_ref.rpartition(".")[2]
    head, dash, _ = record_id.partition("-")
    return head if dash and len(head) == EXECUTION_ID_LENGTH and is_execution_id(head) else None


@dataclass(frozen=True, slots=True)
class ParsedRef:
    """A ref split into its kind and components."""

    kind: str
    components: tuple[str, ...]

    @property
    def ref(self) -> str:
        return f"{self.kind}:{'.'.join(self.components)}"

    @property
    def name(self) -> str:
        """The last component: the subject's own name."""
        return self.components[-1]

    @property
    def project(self) -> str:
        return self.components[0]

    def extends(self, parent: ParsedRef) -> bool:
        """True when this ref lives under `parent` (its components start with the parent's)."""
        size = len(parent.components)
        return len(self.components) > size and self.components[:size] == parent.components


def parse_ref(ref: str, expected_kind: str | None = None) -> ParsedRef:
    """Split and check a ref; raises `ValidationError(code="ref_invalid")` saying what is wrong."""
    if not isinstance(ref, str):
        raise ValidationError(f"a ref must be a string, got {type(ref).__name__}", code="ref_invalid")
    return _parse_text(ref, expected_kind)


@lru_cache(maxsize=16384)
def _parse_text(ref: str, expected_kind: str | None) -> ParsedRef:
    if len(ref) > MAX_REF_LENGTH:
        raise ValidationError(
            f"ref is {len(ref)} characters; the limit is {MAX_REF_LENGTH}",
            code="ref_invalid",
            details={"ref": ref},
        )
    kind, sep, body = ref.partition(":")
    if not sep or kind not in REF_KINDS:
        raise ValidationError(
            f"{ref!r} is not a ref; expected 'kind:project...' with kind one of {', '.join(REF_KINDS)}",
            code="ref_invalid",
            details={"ref": ref},
        )
    if expected_kind is not None and kind != expected_kind:
        raise ValidationError(
            f"{ref!r} is a {kind} ref; a {expected_kind} ref is needed here",
            code="ref_kind_mismatch",
            details={"ref": ref, "expected": expected_kind},
        )
    components = tuple(body.split("."))
    if len(components) not in REF_KINDS[kind]:
        counts = " or ".join(str(n) for n in REF_KINDS[kind])
        raise ValidationError(
            f"{ref!r} has {len(components)} components; a {kind} ref has {counts}",
            code="ref_invalid",
            details={"ref": ref},
        )
    for component in components:
        if not is_component(component):
            raise ValidationError(
                f"{ref!r} has the component {component!r}; components are lower-case letters and digits "
                f"joined by single '-', at most {MAX_COMPONENT_LENGTH} characters",
                code="ref_invalid",
                details={"ref": ref},
            )
    return ParsedRef(kind, components)


def _join(kind: str, *components: str) -> str:
    ref = f"{kind}:{'.'.join(components)}"
    if len(ref) > MAX_REF_LENGTH:
        raise ValidationError(
            f"the {kind} ref {ref[:80]}... would be {len(ref)} characters; the limit is {MAX_REF_LENGTH}: "
            "use shorter names",
            code="ref_too_long",
        )
    return ref


def _components(ref: str, kind: str) -> tuple[str, ...]:
    return parse_ref(ref, kind).components


def project_ref(project: str) -> str:
    return _join("project", ref_component(project, "project name"))


def run_ref(project: str, run: str) -> str:
    return _join("run", ref_component(project, "project name"), ref_component(run, "run name"))


def stage_ref(parent_run_ref: str, stage: str) -> str:
    return _join("stage", *_components(parent_run_ref, "run"), ref_component(stage, "stage name"))


def batch_ref(parent_stage_ref: str, batch: str) -> str:
    return _join("batch", *_components(parent_stage_ref, "stage"), ref_component(batch, "batch name"))


def sample_ref(owner_ref: str, sample: str) -> str:
    """A sample ref under a stage (`sample:p.r.s.x`) or a batch (`sample:p.r.s.b.x`)."""
    owner = parse_ref(owner_ref)
    if owner.kind not in ("stage", "batch"):
        raise ValidationError(
            f"a sample belongs to a stage or a batch, not to {owner_ref!r}", code="ref_kind_mismatch"
        )
    return _join("sample", *owner.components, ref_component(sample, "sample name"))


def operation_ref(parent_stage_ref: str, operation: str) -> str:
    return _join(
        "operation", *_components(parent_stage_ref, "stage"), ref_component(operation, "operation name")
    )


def deployment_ref(project: str, deployment: str) -> str:
    return _join(
        "deployment", ref_component(project, "project name"), ref_component(deployment, "deployment name")
    )


def _checked_component(component: str, what: str) -> str:
    if not isinstance(component, str) or not is_component(component):
        raise ValidationError(
            f"{what} {component!r} is not a ref component: lower-case letters and digits joined by "
            f"single '-', "
            f"at most {MAX_COMPONENT_LENGTH} characters",
            code="ref_component_invalid",
            details={"what": what},
        )
    return component


def record_ref(owner_ref: str, record_id: str) -> str:
    """`record:{project}.{run}.{id}`; a deployment without a run owns its records the same way."""
    owner = parse_ref(owner_ref)
    if owner.kind not in ("run", "deployment"):
        raise ValidationError(
            f"records belong to a run or a deployment, not {owner_ref!r}", code="ref_kind_mismatch"
        )
    return _join("record", *owner.components, _checked_component(record_id, "record id"))


def artifact_ref(parent_run_ref: str, kind: str, suffix: str) -> str:
    """`artifact:{project}.{run}.{kind}-{suffix}`: the suffix keeps two files of one kind apart."""
    kind_component = normalize_name(kind, "artifact kind")
    return _join(
        "artifact",
        *_components(parent_run_ref, "run"),
        _checked_component(f"{kind_component}-{suffix}", "artifact kind with its suffix"),
    )
