"""The async facade: awaitable capture scopes over the one capture pipeline (SPEC §3)."""

from contexta._async._scopes import (
    AsyncBatchScope,
    AsyncDeploymentScope,
    AsyncOperationScope,
    AsyncRunScope,
    AsyncSampleScope,
    AsyncScope,
    AsyncStageScope,
)

__all__ = [
    "AsyncBatchScope",
    "AsyncDeploymentScope",
    "AsyncOperationScope",
    "AsyncRunScope",
    "AsyncSampleScope",
    "AsyncScope",
    "AsyncStageScope",
]
