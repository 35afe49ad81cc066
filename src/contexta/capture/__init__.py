"""The write path: scopes, the bounded queue and its writer, sinks, artifact hashing."""

from contexta.capture._artifacts import ArtifactRegistration, ArtifactVerification
from contexta.capture._batch import CaptureBatch, CapturedEntry
from contexta.capture._hashing import FileDigest, hash_file
from contexta.capture._log_reader import CaptureLogRead, read_capture_log
from contexta.capture._outbox import ReplayReport
from contexta.capture._results import ACCEPTED, DROPPED, CaptureResult, CaptureStats, FlushReport
from contexta.capture._scopes import (
    BatchScope,
    DeploymentScope,
    OperationScope,
    RunScope,
    SampleScope,
    Scope,
    StageScope,
)
from contexta.capture._sinks import CompositeSink, InMemorySink, LocalJsonlSink, Sink, StdoutSink
from contexta.capture._writer import CaptureWarning

__all__ = [
    "ACCEPTED",
    "DROPPED",
    "ArtifactRegistration",
    "ArtifactVerification",
    "BatchScope",
    "CaptureBatch",
    "CaptureLogRead",
    "CaptureResult",
    "CaptureStats",
    "CaptureWarning",
    "CapturedEntry",
    "CompositeSink",
    "DeploymentScope",
    "FileDigest",
    "FlushReport",
    "InMemorySink",
    "LocalJsonlSink",
    "OperationScope",
    "ReplayReport",
    "RunScope",
    "SampleScope",
    "Scope",
    "Sink",
    "StageScope",
    "StdoutSink",
    "hash_file",
    "read_capture_log",
]
