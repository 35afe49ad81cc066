"""The context models: where a record happened (project, run, stage, batch, sample, deployment)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contexta.contract._checks import (
    check_child_ref,
    check_component,
    check_lifecycle,
    check_optional_ref,
    check_optional_timestamp,
    check_order_index,
    check_ref,
    check_text,
    check_timestamp,
    json_attributes,
)
from contexta.contract._model import ContractModel
from contexta.errors import ValidationError

__all__ = [
    "BatchExecution",
    "DeploymentExecution",
    "OperationExecution",
    "Project",
    "Run",
    "SampleObservation",
    "StageExecution",
]


def _set(model: object, name: str, value: Any) -> None:
    object.__setattr__(model, name, value)


def _check_owned_name(ref_name: str, name: Any, field: str) -> None:
    check_component(name, field)
    if ref_name != name:
        raise ValidationError(
            f"{field} {name!r} does not match its ref's last component {ref_name!r}",
            code="ref_name_mismatch",
            details={"field": field},
        )


def _string_mapping(value: Any, field: str) -> dict[str, Any] | None:
    return json_attributes(value, field)


@dataclass(frozen=True, slots=True)
class Project(ContractModel):
    project_ref: str
    name: str
    created_at: str
    description: str | None = None
    tags: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        ref = check_ref(self.project_ref, "project", "project_ref")
        _check_owned_name(ref.name, self.name, "name")
        _set(self, "created_at", check_timestamp(self.created_at, "created_at"))
        check_text(self.description, "description")
        _set(self, "tags", _string_mapping(self.tags, "tags"))


@dataclass(frozen=True, slots=True)
class Run(ContractModel):
    """One execution of a piece of ML work; its arguments travel with it so they can be compared."""

    run_ref: str
    project_ref: str
    name: str
    status: str
    started_at: str
    ended_at: str | None = None
    description: str | None = None
    dataset_ref: str | None = None
    code_revision: str | None = None
    tags: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    config_snapshot: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        ref = check_ref(self.run_ref, "run", "run_ref")
        check_child_ref(ref, check_ref(self.project_ref, "project", "project_ref"), "run_ref", "project_ref")
        _check_owned_name(ref.name, self.name, "name")
        _set(self, "started_at", check_timestamp(self.started_at, "started_at"))
        _set(self, "ended_at", check_optional_timestamp(self.ended_at, "ended_at"))
        check_lifecycle(self.status, self.started_at, self.ended_at)
        for field in ("description", "dataset_ref", "code_revision"):
            check_text(getattr(self, field), field)
        for field in ("tags", "metadata", "config_snapshot"):
            _set(self, field, _string_mapping(getattr(self, field), field))


@dataclass(frozen=True, slots=True)
class StageExecution(ContractModel):
    stage_execution_ref: str
    run_ref: str
    stage_name: str
    status: str
    started_at: str
    ended_at: str | None = None
    order_index: int | None = None

    def __post_init__(self) -> None:
        ref = check_ref(self.stage_execution_ref, "stage", "stage_execution_ref")
        check_child_ref(ref, check_ref(self.run_ref, "run", "run_ref"), "stage_execution_ref", "run_ref")
        _check_owned_name(ref.name, self.stage_name, "stage_name")
        _set(self, "started_at", check_timestamp(self.started_at, "started_at"))
        _set(self, "ended_at", check_optional_timestamp(self.ended_at, "ended_at"))
        check_lifecycle(self.status, self.started_at, self.ended_at)
        check_order_index(self.order_index)


@dataclass(frozen=True, slots=True)
class BatchExecution(ContractModel):
    batch_execution_ref: str
    run_ref: str
    stage_execution_ref: str
    batch_name: str
    status: str
    started_at: str
    ended_at: str | None = None
    order_index: int | None = None

    def __post_init__(self) -> None:
        ref = check_ref(self.batch_execution_ref, "batch", "batch_execution_ref")
        stage = check_ref(self.stage_execution_ref, "stage", "stage_execution_ref")
        check_child_ref(stage, check_ref(self.run_ref, "run", "run_ref"), "stage_execution_ref", "run_ref")
        check_child_ref(ref, stage, "batch_execution_ref", "stage_execution_ref")
        _check_owned_name(ref.name, self.batch_name, "batch_name")
        _set(self, "started_at", check_timestamp(self.started_at, "started_at"))
        _set(self, "ended_at", check_optional_timestamp(self.ended_at, "ended_at"))
        check_lifecycle(self.status, self.started_at, self.ended_at)
        check_order_index(self.order_index)


@dataclass(frozen=True, slots=True)
class SampleObservation(ContractModel):
    sample_observation_ref: str
    run_ref: str
    stage_execution_ref: str
    sample_name: str
    observed_at: str
    batch_execution_ref: str | None = None
    retention_class: str | None = None
    redaction_profile: str | None = None
    status: str = "completed"
    ended_at: str | None = None

    def __post_init__(self) -> None:
        ref = check_ref(self.sample_observation_ref, "sample", "sample_observation_ref")
        stage = check_ref(self.stage_execution_ref, "stage", "stage_execution_ref")
        check_child_ref(stage, check_ref(self.run_ref, "run", "run_ref"), "stage_execution_ref", "run_ref")
        batch = check_optional_ref(self.batch_execution_ref, "batch", "batch_execution_ref")
        owner, owner_field = (batch, "batch_execution_ref") if batch else (stage, "stage_execution_ref")
        if batch is not None:
            check_child_ref(batch, stage, "batch_execution_ref", "stage_execution_ref")
        check_child_ref(ref, owner, "sample_observation_ref", owner_field)
        if len(ref.components) != len(owner.components) + 1:
            raise ValidationError(
                f"sample_observation_ref {ref.ref!r} is not directly under {owner_field} {owner.ref!r}",
                code="ref_parent_mismatch",
            )
        _check_owned_name(ref.name, self.sample_name, "sample_name")
        _set(self, "observed_at", check_timestamp(self.observed_at, "observed_at"))
        _set(self, "ended_at", check_optional_timestamp(self.ended_at, "ended_at"))
        # A hand-recorded observation is an instant (no ended_at); a captured sample scope has a span.
        closed_at = self.ended_at if self.ended_at is not None or self.status == "open" else self.observed_at
        check_lifecycle(self.status, self.observed_at, closed_at)
        check_text(self.retention_class, "retention_class")
        check_text(self.redaction_profile, "redaction_profile")


@dataclass(frozen=True, slots=True)
class OperationExecution(ContractModel):
    """A named unit of work inside a stage (a tokenisation pass, a retrieval call)."""

    operation_ref: str
    run_ref: str
    stage_execution_ref: str
    operation_name: str
    status: str
    started_at: str
    ended_at: str | None = None

    def __post_init__(self) -> None:
        ref = check_ref(self.operation_ref, "operation", "operation_ref")
        stage = check_ref(self.stage_execution_ref, "stage", "stage_execution_ref")
        check_child_ref(stage, check_ref(self.run_ref, "run", "run_ref"), "stage_execution_ref", "run_ref")
        check_child_ref(ref, stage, "operation_ref", "stage_execution_ref")
        _check_owned_name(ref.name, self.operation_name, "operation_name")
        _set(self, "started_at", check_timestamp(self.started_at, "started_at"))
        _set(self, "ended_at", check_optional_timestamp(self.ended_at, "ended_at"))
        check_lifecycle(self.status, self.started_at, self.ended_at)


@dataclass(frozen=True, slots=True)
class DeploymentExecution(ContractModel):
    deployment_execution_ref: str
    project_ref: str
    deployment_name: str
    status: str
    started_at: str
    ended_at: str | None = None
    order_index: int | None = None
    run_ref: str | None = None
    artifact_ref: str | None = None

    def __post_init__(self) -> None:
        ref = check_ref(self.deployment_execution_ref, "deployment", "deployment_execution_ref")
        project = check_ref(self.project_ref, "project", "project_ref")
        check_child_ref(ref, project, "deployment_execution_ref", "project_ref")
        _check_owned_name(ref.name, self.deployment_name, "deployment_name")
        run = check_optional_ref(self.run_ref, "run", "run_ref")
        if run is not None:
            check_child_ref(run, project, "run_ref", "project_ref")
        check_optional_ref(self.artifact_ref, "artifact", "artifact_ref")
        _set(self, "started_at", check_timestamp(self.started_at, "started_at"))
        _set(self, "ended_at", check_optional_timestamp(self.ended_at, "ended_at"))
        check_lifecycle(self.status, self.started_at, self.ended_at)
        check_order_index(self.order_index)
