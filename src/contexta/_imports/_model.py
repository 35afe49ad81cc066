"""What every importer hands the writer: one source run, read whole, with the source's own times.

Importers (MLflow, TensorBoard) know nothing of the store or the capture log; the writer
(`_writer.py`) knows nothing of MLflow or TensorBoard. This module is the shape between them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3
import orjson

from contexta.contract import ref_component
from contexta.contract._refs import MAX_COMPONENT_LENGTH
from contexta.errors import ValidationError

__all__ = [
    "ImportedArtifact",
    "ImportedRun",
    "MetricHistory",
    "derived_component",
    "execution_id_for",
    "metric_key_for",
    "stored_keys",
]

# The metric keys the capture API accepts (SPEC §2); MLflow and TensorBoard allow more (spaces, `:`).
_METRIC_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_NOT_KEY_CHARS = re.compile(r"[^A-Za-z0-9_./-]")
_MAX_KEY = 200
_NOT_COMPONENT = re.compile(r"[^a-z0-9]+")


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
    source_metrics: dict[str, MetricHistory] = field(default_factory=dict)  # by the source's own key
    artifacts: list[ImportedArtifact] = field(default_factory=list)

    @property
    def point_count(self) -> int:
        return sum(len(history) for history in self.source_metrics.values())

    def history(self, source_key: str) -> MetricHistory:
        """The history of one source key (its stored key is decided once the run is read whole:
        see `stored_keys`)."""
        history = self.source_metrics.get(source_key)
        if history is None:
            history = self.source_metrics[source_key] = MetricHistory()
        return history

    @property
    def metrics(self) -> dict[str, MetricHistory]:
        """The run's histories by stored key: one per source key, never two merged."""
        keys = stored_keys(self.source_metrics)
        return {keys[source_key]: history for source_key, history in self.source_metrics.items()}

    @property
    def renamed_keys(self) -> dict[str, str]:
        """Source key -> stored key, for the keys stored under another spelling."""
        return {source: key for source, key in stored_keys(self.source_metrics).items() if source != key}

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


def stored_keys(source_keys: Iterable[str]) -> dict[str, str]:
    """Source key -> stored key for one run's keys. A key the capture API accepts is stored as it is;
    another is renamed (`metric_key_for`), and when that name is taken (by an accepted key, or by an
    earlier rename: `精度` and `召回` both become `__`, `acc:1` becomes the `acc_1` the run also
    logs) it ends in `-` and digits of its source key's digest, so two source metrics never share a
    series. Renamed keys are settled in sorted order: the same keys always get the same names."""
    keys = set(source_keys)
    stored = {key: key for key in keys if metric_key_for(key) == key}
    taken = set(stored)
    for key in sorted(keys - taken):
        name = metric_key_for(key)
        if name in taken:
            digest = blake3.blake3(key.encode("utf-8", "surrogatepass")).hexdigest()
            width = 8
            while name in taken:  # a digest prefix that is taken too: one more digit
                name = f"{metric_key_for(key)[: _MAX_KEY - width - 1]}-{digest[:width]}"
                width += 1
        stored[key] = name
        taken.add(name)
    return stored


def execution_id_for(source: str, source_id: str, generation: int = 0) -> str:
    """The execution id an imported run is stored under: 16 hex digits derived from the source and
    its run id, so every import of one source run writes the same execution (never all digits:
    `run@3` means a position, see `new_execution_id`). `generation` counts the earlier executions of
    it that were deleted (`contexta delete`): importing it again writes a new one, which replaying
    the deletion (`contexta repair`) leaves alone."""
    seed = f"contexta-import|{source}|{source_id}" + (f"|{generation}" if generation else "")
    digest = blake3.blake3(seed.encode()).hexdigest()[:16]
    return digest if not digest.isdigit() else "a" + digest[1:]


def run_component(name: str) -> str:
    """The ref component of an imported run's name (see `ref_component`). A name `ref_component`
    refuses (longer than a component once normalised, as Ray Tune's trial directories are, or with
    no letter or digit) is still a run of its own: its normalised start and a digest of the whole
    name. The name itself stays the run's display name."""
    try:
        return ref_component(name, "run name")
    except ValidationError as error:
        if error.code not in ("name_too_long", "name_empty"):
            raise
    return derived_component(name)


def derived_component(name: str, *, empty: str = "", digest_of: str | None = None) -> str:
    """A stable ref component for any text: its letters and digits (lower-cased, other runs folded
    into `-`, cut to fit) and 16 hex digits of its digest (or of `digest_of`); `empty` stands in
    front of the digest when the text has no Latin letter or digit."""
    digested = name if digest_of is None else digest_of
    digest = blake3.blake3(digested.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    stem = _NOT_COMPONENT.sub("-", name.lower()).strip("-") or empty
    stem = stem[: MAX_COMPONENT_LENGTH - len(digest) - 1].rstrip("-")
    return f"{stem}-{digest}" if stem else digest
