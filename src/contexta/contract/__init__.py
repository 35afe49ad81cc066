"""The shared vocabulary of the write and read paths: refs, context and record models, (de)serialisation."""

from contexta.contract._artifacts import ArtifactManifest, ArtifactSource
from contexta.contract._checks import STATUSES
from contexta.contract._context import (
    BatchExecution,
    DeploymentExecution,
    OperationExecution,
    Project,
    Run,
    SampleObservation,
    StageExecution,
)
from contexta.contract._environment import EnvironmentSnapshot, LineageEdge
from contexta.contract._non_finite import decode_metric_value, encode_metric_value
from contexta.contract._records import (
    DegradedPayload,
    DegradedRecord,
    MetricPayload,
    MetricRecord,
    RecordEnvelope,
    StructuredEventPayload,
    StructuredEventRecord,
    TraceSpanPayload,
    TraceSpanRecord,
)
from contexta.contract._refs import (
    ParsedRef,
    artifact_ref,
    batch_ref,
    deployment_ref,
    execution_of_record_ref,
    normalize_name,
    operation_ref,
    parse_ref,
    project_ref,
    record_ref,
    ref_component,
    run_ref,
    sample_ref,
    stage_ref,
)
from contexta.contract._serialization import from_json, model_from_dict, to_json
from contexta.contract._timestamps import parse_timestamp, utc_now

__all__ = [
    "STATUSES",
    "ArtifactManifest",
    "ArtifactSource",
    "BatchExecution",
    "DegradedPayload",
    "DegradedRecord",
    "DeploymentExecution",
    "EnvironmentSnapshot",
    "LineageEdge",
    "MetricPayload",
    "MetricRecord",
    "OperationExecution",
    "ParsedRef",
    "Project",
    "RecordEnvelope",
    "Run",
    "SampleObservation",
    "StageExecution",
    "StructuredEventPayload",
    "StructuredEventRecord",
    "TraceSpanPayload",
    "TraceSpanRecord",
    "artifact_ref",
    "batch_ref",
    "decode_metric_value",
    "deployment_ref",
    "encode_metric_value",
    "execution_of_record_ref",
    "from_json",
    "model_from_dict",
    "normalize_name",
    "operation_ref",
    "parse_ref",
    "parse_timestamp",
    "project_ref",
    "record_ref",
    "ref_component",
    "run_ref",
    "sample_ref",
    "stage_ref",
    "to_json",
    "utc_now",
]
