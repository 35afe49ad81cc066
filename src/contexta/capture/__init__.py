"""The write path: scopes, the bounded queue and its writer, sinks, artifact hashing."""

from contexta.capture.artifacts import ArtifactRegistration, ArtifactVerification
from contexta.capture.batch import CaptureBatch, CapturedEntry
from contexta.capture.hashing import FileDigest, hash_file
from contexta.capture.log_reader import CaptureLogRead, read_capture_log
from contexta.capture.outbox import ReplayReport
from contexta.capture.results import ACCEPTED, DROPPED, CaptureResult, CaptureStats, FlushReport
from contexta.capture.scopes import (
    BatchScope,
    DeploymentScope,
    OperationScope,
    RunScope,
    SampleScope,
    Scope,
    StageScope,
)
from contexta.capture.sinks import CompositeSink, InMemorySink, LocalJsonlSink, Sink, StdoutSink
from contexta.capture.writer import CaptureWarning

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
