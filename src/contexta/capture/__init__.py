"""The write path: scopes (sync and async), the bounded queue and its writer, sinks, artifact hashing."""

import importlib
from typing import TYPE_CHECKING, Any

from contexta.capture._artifacts import ArtifactRegistration
from contexta.capture._log._batch import CaptureBatch, CapturedEntry
from contexta.capture._log._compaction import (
    LogUsage,
    SegmentRewrite,
    SegmentUsage,
    execution_of_line,
    log_usage,
    remove_from_sealed_segments,
)
from contexta.capture._log._reader import CaptureLogRead, iter_capture_log, read_capture_log
from contexta.capture._log._segments import (
    DamagedSegmentError,
    LogSegment,
    compress_sealed_segments,
    log_segments,
    open_segment,
)
from contexta.capture._outbox_reclaim import OutboxReclaim, outbox_usage, reclaim_outbox
from contexta.capture._pipeline._outbox import ReplayReport
from contexta.capture._pipeline._results import ACCEPTED, DROPPED, CaptureResult, CaptureStats, FlushReport
from contexta.capture._scopes._scope import (
    BatchScope,
    DeploymentScope,
    OperationScope,
    RunScope,
    SampleScope,
    Scope,
    StageScope,
)
from contexta.capture._sinks import CompositeSink, InMemorySink, LocalJsonlSink, Sink, StdoutSink, StoreSink
from contexta.capture._sinks._repair import RepairReport, rebuild_store
from contexta.capture._sinks._sync import SyncReport, sync_capture_log, workspace_id
from contexta.contract._hashing import FileDigest, hash_file
from contexta.contract._verification import ArtifactVerification
from contexta.errors import CaptureWarning

if TYPE_CHECKING:
    from contexta._async import (
        AsyncBatchScope,
        AsyncDeploymentScope,
        AsyncOperationScope,
        AsyncRunScope,
        AsyncSampleScope,
        AsyncScope,
        AsyncStageScope,
    )

_ASYNC_SCOPES = frozenset(
    (
        "AsyncBatchScope",
        "AsyncDeploymentScope",
        "AsyncOperationScope",
        "AsyncRunScope",
        "AsyncSampleScope",
        "AsyncScope",
        "AsyncStageScope",
    )
)


def __getattr__(name: str) -> Any:
    # The async shells (contexta._async) are built on this package's modules, so importing them here
    # eagerly would be circular; they are looked up on first use instead.
    if name in _ASYNC_SCOPES:
        return getattr(importlib.import_module("contexta._async"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACCEPTED",
    "DROPPED",
    "ArtifactRegistration",
    "ArtifactVerification",
    "AsyncBatchScope",
    "AsyncDeploymentScope",
    "AsyncOperationScope",
    "AsyncRunScope",
    "AsyncSampleScope",
    "AsyncScope",
    "AsyncStageScope",
    "BatchScope",
    "CaptureBatch",
    "CaptureLogRead",
    "CaptureResult",
    "CaptureStats",
    "CaptureWarning",
    "CapturedEntry",
    "CompositeSink",
    "DamagedSegmentError",
    "DeploymentScope",
    "FileDigest",
    "FlushReport",
    "InMemorySink",
    "LocalJsonlSink",
    "LogSegment",
    "LogUsage",
    "OperationScope",
    "OutboxReclaim",
    "RepairReport",
    "ReplayReport",
    "RunScope",
    "SampleScope",
    "Scope",
    "SegmentRewrite",
    "SegmentUsage",
    "Sink",
    "StageScope",
    "StdoutSink",
    "StoreSink",
    "SyncReport",
    "compress_sealed_segments",
    "execution_of_line",
    "hash_file",
    "iter_capture_log",
    "log_segments",
    "log_usage",
    "open_segment",
    "outbox_usage",
    "read_capture_log",
    "rebuild_store",
    "reclaim_outbox",
    "remove_from_sealed_segments",
    "sync_capture_log",
    "workspace_id",
]
