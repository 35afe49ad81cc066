"""What every importer hands the writer: one source run, read whole, with the source's own times.

Importers (MLflow, TensorBoard) know nothing of the store or the capture log; the writer
(`_writer.py`) knows nothing of MLflow or TensorBoard. This module is the shape between them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3
import orjson

from contexta.contract import ref_component

__all__ = [
    "ImportedArtifact",
    "ImportedRun",
    "MetricHistory",
    "execution_id_for",
    "metric_key_for",
]

# The metric keys the capture API accepts (SPEC §2); MLflow and TensorBoard allow more (spaces, `:`).
_METRIC_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_NOT_KEY_CHARS = re.compile(r"[^A-Za-z0-9_./-]")
_MAX_KEY = 200


@dataclass(slots=True)
class MetricHistory:
    """One metric's points as parallel columns, in the source's order: epoch nanoseconds (the
    source's own timestamp of each point), steps, values."""

    times_ns: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def append(self, time_ns: int, step: int, value: float) -> None:
        self.times_ns.append(time_ns)
        self.steps.append(step)
        self.values.append(value)

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class ImportedArtifact:
    """A file the source run kept: its absolute path and its path relative to the run's artifacts."""

    path: Path
    relative: str


@dataclass(slots=True)
class ImportedRun:
    """One run of the source. `source_id` is stable across imports (MLflow's run id, TensorBoard's
    event directory relative to the log directory): the run's ref and execution id derive from it,
    so importing again names the same run."""

    source: str  # "mlflow" | "tensorboard"
    source_id: str
    project: str
    ref_name: str  # the run's ref component, as typed (hashed by `ref_component` when needed)
    display_name: str
    status: str  # a contract status: completed | failed | cancelled
    started_ns: int
    ended_ns: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, MetricHistory] = field(default_factory=dict)
    artifacts: list[ImportedArtifact] = field(default_factory=list)
    renamed_keys: dict[str, str] = field(default_factory=dict)  # source key -> stored key

    @property
    def point_count(self) -> int:
        return sum(len(history) for history in self.metrics.values())

    def history(self, source_key: str) -> MetricHistory:
        """The history a source key's points go to (a key the capture API refuses is renamed)."""
        key = self.renamed_keys.get(source_key) or metric_key_for(source_key)
        if key != source_key:
            self.renamed_keys[source_key] = key
        history = self.metrics.get(key)
        if history is None:
            history = self.metrics[key] = MetricHistory()
        return history

    def fingerprint(self, artifact_digests: list[str]) -> str:
        """A digest of everything imported from this run: equal on a second import of an unchanged
        source (so it is skipped), different once the source changed (more points, a new tag)."""
        hasher = blake3.blake3()
        head = {
            "source": self.source,
            "id": self.source_id,
            "project": self.project,
            "name": self.display_name,
            "status": self.status,
            "times": [self.started_ns, self.ended_ns],
            "tags": self.tags,
            "params": self.params,
            "metadata": self.metadata,
            "artifacts": [[artifact.relative for artifact in self.artifacts], artifact_digests],
        }
        hasher.update(orjson.dumps(head, option=orjson.OPT_SORT_KEYS))
        for key in sorted(self.metrics):
            history = self.metrics[key]
            hasher.update(key.encode() + b"\0")
            hasher.update(orjson.dumps([history.times_ns, history.steps], option=orjson.OPT_SERIALIZE_NUMPY))
            hasher.update(repr(history.values).encode())  # repr keeps NaN and infinities apart
        return hasher.hexdigest()[:32]


def metric_key_for(source_key: str) -> str:
    """The stored key of a source metric key: itself when the capture API accepts it, else each
    refused character replaced by `_` (and a leading `.`, `/` or `-` prefixed with `_`)."""
    if len(source_key) <= _MAX_KEY and _METRIC_KEY.fullmatch(source_key):
        return source_key
    key = _NOT_KEY_CHARS.sub("_", source_key) or "_"
    if not _METRIC_KEY.fullmatch(key):
        key = "_" + key
    return key[:_MAX_KEY]


def execution_id_for(source: str, source_id: str) -> str:
    """The execution id an imported run is stored under: 16 hex digits derived from the source and
    its run id, so every import of one source run writes the same execution (never all digits:
    `run@3` means a position, see `new_execution_id`)."""
    digest = blake3.blake3(f"contexta-import|{source}|{source_id}".encode()).hexdigest()[:16]
    return digest if not digest.isdigit() else "a" + digest[1:]


def run_component(name: str) -> str:
    """The ref component of an imported run's name (see `ref_component`)."""
    return ref_component(name, "run name")
