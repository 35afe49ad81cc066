"""What every scope of one `Contexta` shares: the project, the pipeline, and the open runs."""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from contexta.capture._artifacts import ArtifactRegistration
from contexta.capture._compiled import MetricCall
from contexta.capture._pipeline import CapturePipeline
from contexta.capture._redaction import redact_secrets
from contexta.contract._checks import json_attributes

if TYPE_CHECKING:
    from contexta.capture._scopes import RunScope, Scope

__all__ = ["CURRENT_SCOPE", "CaptureSession"]

# The innermost scope entered with `with` in this thread or task.
CURRENT_SCOPE: ContextVar[Scope | None] = ContextVar("contexta_current_scope", default=None)


class CaptureSession:
    def __init__(
        self,
        project: str,
        pipeline: CapturePipeline,
        *,
        redact_secrets: bool = True,
        compiled_metric: bool = True,
    ):
        self.project = project
        self.pipeline = pipeline
        self.redact_secrets = redact_secrets
        # The compiled `metric()` call its scopes use, or None for the Python method alone.
        self.metric_call = MetricCall if compiled_metric else None
        # Re-entrant: a signal handler may end the open runs while this thread holds it.
        self._lock = threading.RLock()
        self._open_runs: dict[str, RunScope] = {}
        self._open_deployments: dict[str, Scope] = {}
        self._inherited: frozenset[int] = frozenset()  # ids of a forked child's parent's scopes
        self.artifacts: dict[str, ArtifactRegistration] = {}

    def attributes(self, value: Any, field: str = "attributes") -> dict[str, Any] | None:
        """A checked, detached copy of captured attributes, with secrets redacted unless opted out."""
        checked = json_attributes(value, field)
        return redact_secrets(checked) if self.redact_secrets else checked

    def claim(self, registry: str, ref: str, scope: Scope) -> Scope | None:
        """Register an open run/deployment; returns the scope already open under `ref`, if any."""
        table = self._open_runs if registry == "run" else self._open_deployments
        with self._lock:
            existing = table.get(ref)
            if existing is not None:
                return existing
            table[ref] = scope  # type: ignore[assignment]
            return None

    def replace(self, registry: str, ref: str, scope: Scope) -> None:
        table = self._open_runs if registry == "run" else self._open_deployments
        with self._lock:
            table[ref] = scope  # type: ignore[assignment]

    def release(self, registry: str, ref: str) -> None:
        table = self._open_runs if registry == "run" else self._open_deployments
        with self._lock:
            table.pop(ref, None)

    def open_runs(self) -> list[RunScope]:
        with self._lock:
            return list(self._open_runs.values())

    def open_top_level(self) -> list[Scope]:
        with self._lock:
            return [*self._open_runs.values(), *self._open_deployments.values()]

    def owned_top_level(self) -> list[Scope]:
        """The open runs and deployments this process opened: a forked child never ends its parent's."""
        return [scope for scope in self.open_top_level() if id(scope) not in self._inherited]

    def after_fork_in_child(self) -> None:
        """The runs open at fork belong to the parent; a lock another thread held then is free here."""
        self._lock = threading.RLock()
        self._inherited = frozenset(map(id, [*self._open_runs.values(), *self._open_deployments.values()]))
