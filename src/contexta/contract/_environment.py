"""Environment and lineage models: what a run ran on, and how subjects lead to one another."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contexta.contract._checks import (
    check_metric_key,
    check_ref,
    check_text,
    check_timestamp,
    json_attributes,
)
from contexta.contract._model import ContractModel
from contexta.contract._refs import parse_ref

__all__ = ["EnvironmentSnapshot", "LineageEdge"]


@dataclass(frozen=True, slots=True)
class EnvironmentSnapshot(ContractModel):
    run_ref: str
    captured_at: str
    python_version: str
    platform: str
    packages: dict[str, Any] | None = None
    git_revision: str | None = None
    attributes: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_ref(self.run_ref, "run", "run_ref")
        object.__setattr__(self, "captured_at", check_timestamp(self.captured_at, "captured_at"))
        check_text(self.python_version, "python_version", optional=False)
        check_text(self.platform, "platform", optional=False)
        check_text(self.git_revision, "git_revision")
        object.__setattr__(self, "packages", json_attributes(self.packages, "packages"))
        object.__setattr__(self, "attributes", json_attributes(self.attributes))


@dataclass(frozen=True, slots=True)
class LineageEdge(ContractModel):
    """`source_ref` led to `target_ref` (a run produced an artifact, a deployment shipped a run)."""

    source_ref: str
    target_ref: str
    relation: str
    recorded_at: str
    attributes: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        parse_ref(self.source_ref)
        parse_ref(self.target_ref)
        check_metric_key(self.relation)
        object.__setattr__(self, "recorded_at", check_timestamp(self.recorded_at, "recorded_at"))
        object.__setattr__(self, "attributes", json_attributes(self.attributes))
