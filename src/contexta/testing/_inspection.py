"""Reading what was captured, and asserting on it with failure messages that say what was there.

Lookups that find nothing raise `AssertionError` rather than returning an empty value: in a test the
next line would fail anyway, and this way the message names what was captured instead (the metric
keys, the runs, the event keys, the artifact kinds), which is usually the fix.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from contexta.capture import CapturedEntry
from contexta.testing._views import (
    CapturedArtifact,
    CapturedEvent,
    CapturedMetric,
    CapturedPoint,
    CapturedScope,
    Snapshot,
    read_entries,
)

__all__ = ["CaptureInspection"]

_SHOWN = 10  # values listed in a failure message before "... (N more)"


class CaptureInspection(ABC):
    """Accessors and assertions over the entries a capture received (see `MemoryCapture`)."""

    # What the last snapshot was read from (how many entries, and the last of them) and the snapshot.
    _cache: tuple[int, CapturedEntry | None, Snapshot] | None = None

    @abstractmethod
    def _entries(self) -> list[CapturedEntry]:
        """Every entry captured so far, in capture order."""

    def _snapshot(self) -> Snapshot:
        entries = self._entries()
        last = entries[-1] if entries else None
        cached = self._cache
        if cached is not None and cached[0] == len(entries) and cached[1] is last:
            return cached[2]
        snapshot = read_entries(entries)
        self._cache = (len(entries), last, snapshot)
        return snapshot

    # -- scopes --------------------------------------------------------------------------------

    def _of_kind(self, kind: str) -> list[CapturedScope]:
        return [scope for scope in self._snapshot().scopes if scope.kind == kind]

    @property
    def scopes(self) -> list[CapturedScope]:
        """Every run, stage, batch, sample, operation and deployment, in the order they opened."""
        return list(self._snapshot().scopes)

    @property
    def runs(self) -> list[CapturedScope]:
        """Each run execution, in the order they opened."""
        return self._of_kind("run")

    @property
    def stages(self) -> list[CapturedScope]:
        return self._of_kind("stage")

    @property
    def batches(self) -> list[CapturedScope]:
        return self._of_kind("batch")

    @property
    def samples(self) -> list[CapturedScope]:
        return self._of_kind("sample")

    @property
    def operations(self) -> list[CapturedScope]:
        return self._of_kind("operation")

    @property
    def deployments(self) -> list[CapturedScope]:
        return self._of_kind("deployment")

    def run(self, name: str | None = None) -> CapturedScope:
        """The run named `name` (its latest execution), or the only run captured."""
        runs = self.runs
        if name is None:
            if len(runs) != 1:
                raise AssertionError(
                    f"{len(runs)} runs were captured{_listed(runs)}; name the one you mean: run(name)"
                )
            return runs[0]
        return self._one("run", name, None)

    def stage(self, name: str, *, run: str | None = None) -> CapturedScope:
        """The stage named `name` (in run `run`, if given), opened last."""
        return self._one("stage", name, run)

    def sample(self, name: str, *, run: str | None = None) -> CapturedScope:
        """The sample named `name` (in run `run`, if given), opened last."""
        return self._one("sample", name, run)

    def _one(self, kind: str, name: str, run: str | None) -> CapturedScope:
        snapshot = self._snapshot()
        scopes = [
            scope
            for scope in snapshot.scopes
            if scope.kind == kind and (run is None or snapshot.named(run, scope.run_ref))
        ]
        found = [scope for scope in scopes if snapshot.named(name, scope.ref)]
        if not found:
            where = "" if run is None else f" in run {run!r}"
            raise AssertionError(f"no {kind} {name!r} was captured{where}; {kind}s: {_names(scopes)}")
        return found[-1]

    # -- metrics -------------------------------------------------------------------------------

    @property
    def metric_keys(self) -> list[str]:
        """Every metric key captured, in the order each first appeared."""
        return list(dict.fromkeys(point.key for point in self._snapshot().points))

    def metric(self, key: str, *, run: str | None = None, stage: str | None = None) -> CapturedMetric:
        """Every point of metric `key` (in run / stage `run` / `stage`, named by name or ref), in
        capture order: `.values`, `.steps`, `.last`."""
        snapshot = self._snapshot()
        points = [
            point
            for point in snapshot.points
            if (run is None or snapshot.named(run, point.run_ref))
            and (stage is None or snapshot.named(stage, point.stage_ref))
        ]
        found = tuple(point for point in points if point.key == key)
        if not found:
            keys = list(dict.fromkeys(point.key for point in points))
            raise AssertionError(
                f"metric {key!r} was never captured{_where(run, stage)}; "
                f"captured metric keys{_where(run, stage)}: {_quoted(keys)}"
            )
        return CapturedMetric(key, found)

    def assert_metric(
        self,
        key: str,
        *,
        at_least: float | None = None,
        at_most: float | None = None,
        equals: float | None = None,
        step: int | None = None,
        run: str | None = None,
        stage: str | None = None,
    ) -> CapturedMetric:
        """Assert that metric `key` was captured and that its last value (or its value at `step`)
        is within the bounds given; `equals` allows a relative difference of 1e-9. Returns the metric."""
        metric = self.metric(key, run=run, stage=stage)
        if step is None:
            point = metric.points[-1]
            which = "its last value"
        else:
            at_step = [point for point in metric.points if point.step == step]
            if not at_step:
                raise AssertionError(
                    f"metric {key!r}{_where(run, stage)} has no value at step {step}; "
                    f"its steps: {_shortened([str(step) for step in metric.steps])}"
                )
            point = at_step[-1]
            which = f"its value at step {step}"
        value = point.value
        failed = []
        if at_least is not None and not value >= at_least:
            failed.append(f"at least {_value(at_least)}")
        if at_most is not None and not value <= at_most:
            failed.append(f"at most {_value(at_most)}")
        if equals is not None and not math.isclose(value, equals, rel_tol=1e-9):
            failed.append(f"equal to {_value(equals)}")
        if failed:
            place = "" if point.step is None or step is not None else f" at step {point.step}"
            raise AssertionError(
                f"metric {key!r} is {_value(value)} ({which}{place}, on {point.subject_ref}), "
                f"expected {' and '.join(failed)}; all {len(metric)} values: "
                f"{_shortened([_value(item) for item in metric.values])}"
            )
        return metric

    # -- events --------------------------------------------------------------------------------

    def events(self, key: str | None = None, *, level: str | None = None) -> list[CapturedEvent]:
        """Events (of key `key`, of level `level`), in capture order; the closing of a scope that
        failed or was cancelled adds one too (`run.failed`, `sample.cancelled`, ...)."""
        return [
            event
            for event in self._snapshot().events
            if (key is None or event.key == key) and (level is None or event.level == level)
        ]

    def assert_event(
        self, key: str, *, level: str | None = None, count: int | None = None
    ) -> list[CapturedEvent]:
        """Assert that event `key` (of `level`) was captured, `count` times when given. Returns them."""
        found = self.events(key, level=level)
        if not found or (count is not None and len(found) != count):
            described = f"event {key!r}" + ("" if level is None else f" at level {level!r}")
            expected = "" if count is None else f", expected {count}"
            counts: dict[str, int] = {}
            for event in self.events():
                label = f"{event.key} ({event.level})"
                counts[label] = counts.get(label, 0) + 1
            captured = ", ".join(f"{label} x{number}" for label, number in counts.items()) or "none"
            times = "once" if len(found) == 1 else f"{len(found)} times"
            raise AssertionError(f"{described} was captured {times}{expected}; events captured: {captured}")
        return found

    # -- endings -------------------------------------------------------------------------------

    def assert_run(
        self, name: str | None = None, *, status: str = "completed", end_reason: str | None = None
    ) -> CapturedScope:
        """Assert how the run `name` (or the only run) ended: its `status`, and its `end_reason`
        when given. Returns the run."""
        run = self.run(name)
        if run.status != status or (end_reason is not None and run.end_reason != end_reason):
            expected = status if end_reason is None else f"{status} ({end_reason})"
            raise AssertionError(f"{run.describe()}; expected {expected}")
        return run

    def assert_completed(self) -> None:
        """Assert that every scope captured ended `completed` (none failed, was cancelled or is open)."""
        scopes = self.scopes
        others = [scope for scope in scopes if scope.status != "completed"]
        if others:
            lines = "".join(f"\n  {scope.describe()}" for scope in others)
            raise AssertionError(f"{len(others)} of {len(scopes)} scopes did not complete:{lines}")

    # -- artifacts and records -----------------------------------------------------------------

    @property
    def artifacts(self) -> list[CapturedArtifact]:
        """Every registered artifact, in the order registered."""
        return list(self._snapshot().artifacts)

    def assert_artifact(self, kind: str, *, run: str | None = None) -> CapturedArtifact:
        """Assert that an artifact of `kind` was registered (in run `run`); returns the last one."""
        snapshot = self._snapshot()
        artifacts = [
            artifact
            for artifact in snapshot.artifacts
            if run is None or snapshot.named(run, artifact.run_ref)
        ]
        found = [artifact for artifact in artifacts if artifact.kind == kind]
        if not found:
            kinds = list(dict.fromkeys(artifact.kind for artifact in artifacts))
            raise AssertionError(
                f"no artifact of kind {kind!r} was registered{_where(run, None)}; "
                f"kinds registered: {_quoted(kinds)}"
            )
        return found[-1]

    @property
    def records(self) -> list[Any]:
        """Every metric, event, span and degraded record as its contract model, in capture order."""
        return list(self._snapshot().records)

    @property
    def points(self) -> list[CapturedPoint]:
        """Every metric point of every key, in capture order."""
        return list(self._snapshot().points)


def _value(value: float | int) -> str:
    """Exact (`repr`), with `nan` and `inf` spelled plainly."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return repr(value)


def _shortened(texts: Sequence[str]) -> str:
    shown = ", ".join(texts[:_SHOWN])
    return shown if len(texts) <= _SHOWN else f"{shown}, ... ({len(texts) - _SHOWN} more)"


def _quoted(texts: Sequence[str]) -> str:
    return _shortened([repr(text) for text in texts]) if texts else "none"


def _names(scopes: Sequence[CapturedScope]) -> str:
    return _quoted(list(dict.fromkeys(scope.name for scope in scopes)))


def _listed(scopes: Sequence[CapturedScope]) -> str:
    return f" ({_names(scopes)})" if scopes else ""


def _where(run: str | None, stage: str | None) -> str:
    parts = [] if run is None else [f"run {run!r}"]
    if stage is not None:
        parts.append(f"stage {stage!r}")
    return f" in {' and '.join(parts)}" if parts else ""
