"""What every scope of one `Contexta` shares: the project, the pipeline, and the open runs.

The scope classes (_scope.py) build on this module, never the other way round: the session knows a
scope only as an `OpenScope`, and ends one through the `EndScope` it registered when it opened.
"""

from __future__ import annotations

import os
import socket
import threading
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol

from contexta.capture._artifacts import ArtifactRegistration
from contexta.capture._pipeline._capture_pipeline import CapturePipeline
from contexta.capture._scopes._compiled import MetricCall, MetricsCall
from contexta.capture._scopes._endings import Ending
from contexta.capture._scopes._redaction import redact_secrets, redact_text
from contexta.contract._checks import json_attributes
from contexta.contract._refs import is_component, new_execution_id, normalize_name, ref_component
from contexta.errors import ValidationError

__all__ = ["CaptureSession", "EndScope", "OpenRun", "OpenScope"]


class OpenScope(Protocol):
    """What the session needs to know of a scope."""

    @property
    def ref(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def parent(self) -> OpenScope | None: ...


class OpenRun(OpenScope, Protocol):
    """What the session needs to know of a run beyond any scope."""

    def wait_for_environment(self, timeout: float) -> None:
        """Wait at most `timeout` seconds for the run's environment snapshot to be queued."""
        ...


# Ends a scope with an ending, waiting for nothing beyond an optional deadline (a time.monotonic()
# instant): what a scope hands the session when it opens, so a process ending can close it.
EndScope = Callable[[Ending, float | None], None]

# (execution id, start in ns since the epoch) of the latest stored execution of a run ref, or None.
LatestExecution = Callable[[str], "tuple[str, int] | None"]
# Whether the store holds (table, ref) under a name stored before typed names were kept (see
# store/_executions.py `holds_name_of_before`), for the name typed now.
StoredBefore = Callable[[str, str, str], bool]
_REMEMBERED_EXECUTIONS = 4_096


class CaptureSession:
    def __init__(
        self,
        project: str,
        pipeline: CapturePipeline,
        *,
        redact_secrets: bool = True,
        compiled_metric: bool = True,
        record_non_finite: bool = True,
        latest_stored_execution: LatestExecution | None = None,
        live_dir: Path | None = None,
        stored_before: StoredBefore | None = None,
    ):
        self.project = project  # the project's name as configured
        self._stored_before = stored_before
        self._kept_names: dict[str, str] = {}  # stored ref -> the name typed here that kept it
        self._lock = threading.RLock()
        self.project_component = self._kept_component("projects", "project", project, "project name")
        self.pipeline = pipeline
        self.redact_secrets = redact_secrets
        # NaN and infinite metric values are recorded, or refused at the call (capture.non_finite).
        self.record_non_finite = record_non_finite
        # The compiled `metric()` and `metrics()` calls its scopes use, or None for the Python methods alone.
        self.metric_call = MetricCall if compiled_metric else None
        self.metrics_call = MetricsCall if compiled_metric else None
        # Where runs hold their owner locks (see contexta/_liveness.py), or None for none.
        self.live_dir = live_dir
        self.host = socket.gethostname()
        self._latest_stored_execution = latest_stored_execution
        # Re-entrant: a signal handler may end the open runs while this thread holds it.
        self._lock = threading.RLock()
        # The innermost scope entered with `with` in this thread or task (one per session, so a
        # scope of another Contexta is never taken for this one's).
        self.current_scope: ContextVar[OpenScope | None] = ContextVar(
            f"contexta_current_scope_{id(self):x}", default=None
        )
        self._open_runs: dict[int, OpenRun] = {}  # by id(scope): one name may be open twice
        self._open_deployments: dict[str, OpenScope | None] = {}  # None: reserved, still opening
        self._enders: dict[int, EndScope] = {}  # how to end each open run and deployment, by id
        self._inherited: frozenset[int] = frozenset()  # ids of a forked child's parent's scopes
        # In a forked child, the scopes it opened itself (None in the process that made the session),
        # each with a weak reference to how it ends (a strong one would keep the scope alive).
        self._opened_in_child: weakref.WeakKeyDictionary[OpenScope, weakref.WeakMethod[EndScope]] | None = (
            None
        )
        # run ref -> (start ns, execution id) of the latest execution this session opened.
        self._executions: dict[str, tuple[int, str]] = {}
        self.artifacts: dict[str, ArtifactRegistration] = {}

    def _kept_component(self, table: str, kind: str, name: str, what: str, parent: str = "") -> str:
        """`ref_component(name)`, except for a name not in ref form whose normalised form the store
        already holds as a previous version stored it (see `holds_name_of_before`): it keeps that."""
        component = ref_component(name, what)
        if self._stored_before is None or is_component(name):
            return component
        try:
            legacy = normalize_name(name, what)
        except ValidationError:
            return component
        ref = f"{kind}:{parent}{legacy}"
        # The store only learns a typed name once its batch commits: names opened here meanwhile are
        # told apart by this session (the first to take the stored ref keeps it).
        holder = self._kept_names.get(ref)
        if holder is not None:
            return legacy if holder == name else component
        if not self._stored_before(table, ref, name):
            return component
        with self._lock:
            holder = self._kept_names.setdefault(ref, name)
        return legacy if holder == name else component

    def run_ref_for(self, name: str) -> str:
        """The ref of a run named `name` in this session's project (see `_kept_component`)."""
        component = self._kept_component("runs", "run", name, "run name", f"{self.project_component}.")
        return f"run:{self.project_component}.{component}"

    def execution_for(self, run_ref: str, started_ns: int, *, resume: bool) -> str:
        """The execution a run opening now belongs to: a new one, or with `resume` the latest one
        (opened by this session or found in the store; a new one when there is none)."""
        execution_id: str | None = None
        if resume:
            with self._lock:
                mine = self._executions.get(run_ref)
            stored = None if self._latest_stored_execution is None else self._latest_stored_execution(run_ref)
            candidates: list[tuple[int, str]] = []
            if mine is not None:
                candidates.append(mine)
            if stored is not None:
                candidates.append((stored[1], stored[0]))
            if candidates:
                execution_id = max(candidates)[1]
        if execution_id is None:
            execution_id = new_execution_id()
        with self._lock:
            if len(self._executions) >= _REMEMBERED_EXECUTIONS:
                self._executions.clear()
            known = self._executions.get(run_ref)
            if known is None or known[0] <= started_ns:
                self._executions[run_ref] = (started_ns, execution_id)
        return execution_id

    def latest_execution(self, run_ref: str) -> str | None:
        """The execution this session opened last under `run_ref` (a deployment links to it)."""
        with self._lock:
            known = self._executions.get(run_ref)
        return None if known is None else known[1]

    def owner_fields(self) -> dict[str, Any]:
        """Who captures a run opened now: stored with it, named when another process opens it too."""
        return {"owner_pid": os.getpid(), "owner_host": self.host}

    def attributes(self, value: Any, field: str = "attributes") -> dict[str, Any] | None:
        """A checked, detached copy of captured attributes, with secrets redacted unless opted out."""
        checked = json_attributes(value, field)
        return redact_secrets(checked) if self.redact_secrets else checked

    def text(self, value: str) -> str:
        """Captured free text (an event message, a dataset ref) with the credentials in it redacted
        (URL passwords, `name=value` secrets) unless opted out."""
        return redact_text(value) if self.redact_secrets else value

    def add_run(self, run: OpenRun) -> list[OpenRun]:
        """Register an open run; returns the runs of the same ref already open in this process (a
        forked child's inherited runs are its parent's, not open here)."""
        with self._lock:
            others = [
                open_run
                for open_run in self._open_runs.values()
                if open_run.ref == run.ref and id(open_run) not in self._inherited
            ]
            self._open_runs[id(run)] = run
        return others

    def remove_run(self, run: OpenScope) -> None:
        with self._lock:
            self._open_runs.pop(id(run), None)
            self._enders.pop(id(run), None)

    def claim(self, ref: str) -> bool:
        """Reserve `ref` for a deployment opening now; False when one is already open under it."""
        with self._lock:
            if ref in self._open_deployments:
                return False
            self._open_deployments[ref] = None
            return True

    def replace(self, ref: str, scope: OpenScope) -> None:
        """The deployment reserved under `ref` (see `claim`) is open."""
        with self._lock:
            self._open_deployments[ref] = scope

    def release(self, ref: str) -> None:
        with self._lock:
            scope = self._open_deployments.pop(ref, None)
            if scope is not None:
                self._enders.pop(id(scope), None)

    def open_runs(self) -> list[OpenRun]:
        with self._lock:
            return list(self._open_runs.values())

    def open_top_level(self) -> list[tuple[OpenScope, EndScope]]:
        """The open runs and deployments, each with how to end it (a deployment still being opened
        has none yet, and is left out)."""
        with self._lock:
            scopes = [*self._open_runs.values(), *filter(None, self._open_deployments.values())]
            return [(scope, self._enders[id(scope)]) for scope in scopes if id(scope) in self._enders]

    def owned_top_level(self) -> list[tuple[OpenScope, EndScope]]:
        """The open scopes this process must end when it ends, each with how to end it: the runs and
        deployments it opened and, in a forked child (a DataLoader worker), the outermost scopes it
        opened inside its parent's (a sample of the parent's stage); never a scope the parent opened."""
        owned = [entry for entry in self.open_top_level() if id(entry[0]) not in self._inherited]
        opened_here = self._opened_in_child
        if opened_here is not None:
            for scope, end_reference in list(opened_here.items()):
                end = end_reference()
                if end is None or scope.status != "open":
                    continue
                if scope.parent is not None and scope.parent not in opened_here:
                    owned.append((scope, end))
        return owned

    def note_opened(self, scope: OpenScope, end: EndScope) -> None:
        """A scope opened: a run or deployment is remembered with how to end it until it closes; in a
        forked child, every scope is, so the child ends what it opened itself."""
        if scope.parent is None:
            with self._lock:
                self._enders[id(scope)] = end
        if self._opened_in_child is not None:
            self._opened_in_child[scope] = weakref.WeakMethod(end)

    def after_fork_in_child(self) -> None:
        """The runs open at fork belong to the parent; a lock another thread held then is free here."""
        self._lock = threading.RLock()
        self._inherited = frozenset(map(id, [*self._open_runs.values(), *self._open_deployments.values()]))
        self._opened_in_child = weakref.WeakKeyDictionary()
