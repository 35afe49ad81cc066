"""Read models of lineage and reproducibility: how captured subjects lead to one another, where an
artifact came from, what a run would need to be run again, and how two runs' environments differ.

Like the other read models these are frozen views of the store with `to_dict()`; they live apart
from `_models.py` because they answer a different question (provenance, not what a run measured).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contexta.query._models import DeploymentRecord, EnvironmentRecord, FieldDifference, ReadModel

__all__ = [
    "AUDIT_STATUSES",
    "LINEAGE_DIRECTIONS",
    "ArtifactOrigin",
    "AuditCheck",
    "EnvironmentComparison",
    "LineageGraph",
    "LineageLink",
    "LineageNode",
    "PackageChange",
    "ReproducibilityAudit",
]

LINEAGE_DIRECTIONS = ("both", "upstream", "downstream")
# ok: captured and still true; missing: needed to run it again and not there (or no longer true);
# unknown: the capture does not say, so nothing is claimed either way.
AUDIT_STATUSES = ("ok", "missing", "unknown")


@dataclass(frozen=True, slots=True)
class LineageNode(ReadModel):
    """A subject in a lineage graph. `kind` is dataset, run, artifact, deployment, or the kind of a
    ref only the relations table names; `label` is what a person calls it (a run's name as typed, an
    artifact's kind, a deployment's name, a dataset ref as given)."""

    ref: str  # a run execution is named as queries name it: the run ref, or `run:p.r@n` for an earlier one
    kind: str
    label: str
    depth: int  # hops from the ref the graph was traversed from (0 for that ref)


@dataclass(frozen=True, slots=True)
class LineageLink(ReadModel):
    """`source_ref` led to `target_ref`. `relation` says how (`input_of`: a dataset a run read;
    `produced`: an artifact a run registered; `deployed`: the run a deployment names; `deployed_as`:
    the artifact a deployment names; or a relation stored in the relations table), and `evidence`
    which captured fact says so, so nothing in a graph is inferred."""

    source_ref: str
    target_ref: str
    relation: str
    evidence: str


@dataclass(frozen=True, slots=True)
class LineageGraph(ReadModel):
    """The subjects reachable from `root_ref` (in `direction`, up to `max_depth` hops) and the links
    between them, in the order they were reached."""

    root_ref: str
    direction: str
    max_depth: int | None
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageLink, ...]

    def node(self, ref: str) -> LineageNode | None:
        """The node named `ref`, or None when the graph does not reach it."""
        return next((node for node in self.nodes if node.ref == ref), None)


@dataclass(frozen=True, slots=True)
class ArtifactOrigin(ReadModel):
    """Where an artifact came from: the run execution (and stage) that registered it, when, the file
    it registered (digest and size), and the deployments that name it."""

    artifact_ref: str
    kind: str
    run_id: str
    stage_id: str | None
    registered_at: str
    location: str
    hash_algorithm: str
    hash_value: str | None
    size_bytes: int | None
    binding_status: str
    deployments: tuple[DeploymentRecord, ...]


@dataclass(frozen=True, slots=True)
class AuditCheck(ReadModel):
    """One thing re-running a run needs: `status` is ok, missing or unknown (see AUDIT_STATUSES);
    `detail` says what was found or what to do; `subject_ref` names an artifact the check is about."""

    name: str
    status: str
    detail: str
    subject_ref: str | None = None


@dataclass(frozen=True, slots=True)
class ReproducibilityAudit(ReadModel):
    """What is captured, missing or unknown for running `run_id` again, one check per need."""

    run_id: str
    checks: tuple[AuditCheck, ...]

    @property
    def missing(self) -> tuple[AuditCheck, ...]:
        return tuple(check for check in self.checks if check.status == "missing")

    @property
    def unknown(self) -> tuple[AuditCheck, ...]:
        return tuple(check for check in self.checks if check.status == "unknown")

    @property
    def complete(self) -> bool:
        """True when nothing needed is missing (an `unknown` check does not count against it)."""
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        """The fields, and `complete` (what a CI job reading the JSON decides on)."""
        return {**ReadModel.to_dict(self), "complete": self.complete}


@dataclass(frozen=True, slots=True)
class PackageChange(ReadModel):
    """A package installed in one run's environment and not the other's (a version is None there),
    or installed in both at different versions."""

    name: str
    left_version: str | None
    right_version: str | None


@dataclass(frozen=True, slots=True)
class EnvironmentComparison(ReadModel):
    """How run `right_run_id`'s environment differs from run `left_run_id`'s: the Python version,
    platform and git revision that differ (`differences`), and packages added, removed and changed."""

    left_run_id: str
    right_run_id: str
    left: EnvironmentRecord
    right: EnvironmentRecord
    differences: tuple[FieldDifference, ...]
    packages_added: tuple[PackageChange, ...]
    packages_removed: tuple[PackageChange, ...]
    packages_changed: tuple[PackageChange, ...]

    @property
    def identical(self) -> bool:
        """True when nothing compared differs."""
        return not (self.differences or self.packages_added or self.packages_removed or self.packages_changed)

    def to_dict(self) -> dict[str, Any]:
        """The fields, and `identical`."""
        return {**ReadModel.to_dict(self), "identical": self.identical}
