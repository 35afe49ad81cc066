"""The `Contexta` facade: wiring of config, pipeline and sinks, and delegation to them."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from contexta._investigation import Investigation
from contexta._run_management import RunManagement
from contexta.capture import LocalJsonlSink, RepairReport, Sink, StoreSink, rebuild_store
from contexta.capture._pipeline._capture_pipeline import CapturePipeline
from contexta.capture._pipeline._outbox import Outbox, ReplayReport
from contexta.capture._pipeline._results import CaptureResult, CaptureStats, FlushReport
from contexta.capture._scopes._endings import Ending
from contexta.capture._scopes._process_endings import watch
from contexta.capture._scopes._scope import (
    ENVIRONMENT_WAIT_S,
    BatchScope,
    DeploymentScope,
    RunScope,
    SampleScope,
    Scope,
    StageScope,
    open_deployment,
    open_run,
)
from contexta.capture._scopes._session import CaptureSession
from contexta.capture._system_metrics import resolve_interval
from contexta.config import UnifiedConfig, load_config
from contexta.contract._artifacts import ArtifactManifest
from contexta.contract._checks import plain_text
from contexta.contract._refs import parse_ref
from contexta.errors import LifecycleError, StoreError, ValidationError
from contexta.store import (
    ArtifactStore,
    MetadataStore,
    RecordStore,
    StoreDatabase,
    holds_name_of_before,
    latest_execution_start,
    mark_interrupted_runs,
)
from contexta.store._backend import open_store_database

if TYPE_CHECKING:  # the async facade (anyio) is imported by the first `arun`/`adeployment`
    from contexta._async import AsyncDeploymentScope, AsyncRunScope

__all__ = ["Contexta"]

_ScopeT = TypeVar("_ScopeT", bound=Scope)
_CLOSED_BY_CONTEXTA = Ending("cancelled", "contexta_closed")


def _optional_text(value: str | None, field: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValidationError(
            f"{field} must be a non-empty string, got {value!r}",
            code="field_invalid",
            details={"field": field},
        )
    return None if value is None else plain_text(value)


class Contexta(Investigation, RunManagement):
    """One project's capture, investigation and management of runs over one workspace."""

    def __init__(
        self,
        *,
        workspace: str | os.PathLike[str] = ".contexta",
        profile: str | None = None,
        config: UnifiedConfig | Mapping[str, Any] | None = None,
        sinks: Sequence[Sink] | None = None,
    ):
        self._config = load_config(config, workspace=workspace, profile=profile)
        layout = self._config.workspace
        if layout.create_missing_dirs:
            layout.capture_dir.mkdir(parents=True, exist_ok=True)
        if sinks is None:
            capture = self._config.capture
            sinks = [
                LocalJsonlSink(
                    layout.capture_dir,
                    durability=capture.durability,
                    log_process=capture.log_process,
                    segment_bytes=capture.segment_bytes,
                    segment_age_s=capture.segment_age_s,
                    min_free_bytes=capture.min_free_bytes,
                )
            ]
        else:
            for sink in sinks:
                if not isinstance(sink, Sink):
                    raise ValidationError(
                        f"{sink!r} is not a sink: it needs a name and write(batch), flush(), close()",
                        code="sink_invalid",
                    )
        self._database = open_store_database(layout.store_file, self._config.store.url)
        with self._database.read():  # open (and migrate) now: a corrupt or foreign file fails here, clearly
            pass
        # Runs left open by processes that died (killed, crashed) stop looking like they still run.
        live_dir = layout.live_dir if layout.create_missing_dirs or layout.live_dir.is_dir() else None
        self._interrupted_runs = tuple(mark_interrupted_runs(self._database, live_dir))
        self._metadata_store = MetadataStore(self._database)
        self._record_store = RecordStore(self._database)
        # With artifacts.url set, kept copies go to S3 (the client is made on first use, from env).
        self._artifact_store = ArtifactStore(
            self._database, layout.artifacts_dir, remote_url=self._config.artifacts.url
        )
        store_sinks: list[Sink] = (
            [StoreSink(self._database, live_dir=live_dir)] if self._config.capture.persist else []
        )
        self._pipeline = CapturePipeline(
            self._config.capture, [*sinks, *store_sinks], Outbox(layout.outbox_dir)
        )
        self._capture_sinks = tuple(sink for sink in self._pipeline.sinks if not isinstance(sink, StoreSink))
        self._session = CaptureSession(
            self._config.project_name,
            self._pipeline,
            redact_secrets=self._config.capture.redact_secrets,
            compiled_metric=self._config.capture.compiled_metric,
            record_non_finite=self._config.capture.non_finite == "record",
            latest_stored_execution=partial(latest_execution_start, self._database),
            live_dir=live_dir,
            stored_before=partial(holds_name_of_before, self._database),
        )
        # Runs still open when the process ends (exit, SIGTERM, SIGHUP) close with the status that is true.
        watch(self._session, handle_signals=self._config.capture.handle_signals)

    @classmethod
    def open(cls, **kwargs: Any) -> Contexta:
        """Same as `Contexta(...)`."""
        return cls(**kwargs)

    # -- properties ----------------------------------------------------------------------------

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """The capture sinks (the live store sink is not among them: it does not depend on `sinks=`)."""
        return self._capture_sinks

    @property
    def metadata_store(self) -> MetadataStore:
        return self._metadata_store

    @property
    def record_store(self) -> RecordStore:
        return self._record_store

    @property
    def artifact_store(self) -> ArtifactStore:
        return self._artifact_store

    # -- scopes --------------------------------------------------------------------------------

    def run(
        self,
        name: str,
        *,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        code_revision: str | None = None,
        config_snapshot: Mapping[str, Any] | None = None,
        dataset_ref: str | None = None,
        resume: bool = False,
        system_metrics: bool | float | None = None,
    ) -> RunScope:
        """Open a run; use it as `with ctx.run(...) as run:` so it closes (and flushes) on exit.

        `system_metrics=True` samples CPU, memory, disk, network and GPUs into the run's `system` stage
        every `capture.system_metrics_interval_s` seconds (1 s when that is 0, the default), a number
        samples that often, False never; None (the default) follows the config (see
        docs/integrations/system-metrics.md)."""
        interval = resolve_interval(system_metrics, self._config.capture.system_metrics_interval_s)
        # Free text a connection URL may end up in: its credentials are redacted like an attribute's.
        dataset = _optional_text(dataset_ref, "dataset_ref")
        details: dict[str, Any] = {
            "dataset_ref": None if dataset is None else self._session.text(dataset),
            "code_revision": _optional_text(code_revision, "code_revision"),
            "tags": self._session.attributes(tags, "tags"),
            "metadata": self._session.attributes(metadata, "metadata"),
            "config_snapshot": self._session.attributes(config_snapshot, "config_snapshot"),
        }
        if resume:
            details["resumed"] = True
        return open_run(
            self._session,
            name,
            run_id=run_id,
            details={k: v for k, v in details.items() if v is not None},
            resume=resume,
            system_metrics_s=interval,
        )

    def deployment(
        self, name: str, *, run_ref: str | None = None, artifact_ref: str | None = None
    ) -> DeploymentScope:
        """Open a deployment (putting a run's result somewhere), optionally linked to its run and artifact."""
        return open_deployment(self._session, name, run_ref_value=run_ref, artifact_ref=artifact_ref)

    def arun(
        self,
        name: str,
        *,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        code_revision: str | None = None,
        config_snapshot: Mapping[str, Any] | None = None,
        dataset_ref: str | None = None,
        resume: bool = False,
        system_metrics: bool | float | None = None,
    ) -> AsyncRunScope:
        """`run()` for async code: `async with ctx.arun(...) as run:`; closing it awaits its flush."""
        from contexta._async import AsyncRunScope

        return AsyncRunScope(
            self.run(
                name,
                run_id=run_id,
                tags=tags,
                metadata=metadata,
                code_revision=code_revision,
                config_snapshot=config_snapshot,
                dataset_ref=dataset_ref,
                resume=resume,
                system_metrics=system_metrics,
            )
        )

    def adeployment(
        self, name: str, *, run_ref: str | None = None, artifact_ref: str | None = None
    ) -> AsyncDeploymentScope:
        """`deployment()` for async code: `async with ctx.adeployment(...) as deployment:`."""
        from contexta._async import AsyncDeploymentScope

        return AsyncDeploymentScope(self.deployment(name, run_ref=run_ref, artifact_ref=artifact_ref))

    async def aflush(self, timeout: float | None = None) -> FlushReport:
        """`flush()` without blocking the event loop (it waits in a worker thread)."""
        import anyio

        return await anyio.to_thread.run_sync(self.flush, timeout, abandon_on_cancel=True)

    async def aclose(self, timeout: float | None = None) -> FlushReport:
        """`close()` without blocking the event loop; shielded, so a cancelled caller still closes."""
        import anyio

        with anyio.CancelScope(shield=True):
            report = await anyio.to_thread.run_sync(self.close, timeout)
        return report

    def _current(self, kind: type[_ScopeT]) -> _ScopeT | None:
        scope = self._session.current_scope.get()
        while scope is not None:
            if isinstance(scope, kind) and scope.status == "open":
                return scope
            scope = scope.parent
        return None

    def current_scope(self) -> Scope | None:
        """The innermost open scope entered in this thread or task, or the only open run of this Contexta."""
        scope = self._current(Scope)
        if scope is not None:
            return scope
        return self._only_open_run()

    def current_run(self) -> RunScope | None:
        run = self._current(RunScope)
        if run is not None:
            return run
        return self._only_open_run()

    def _only_open_run(self) -> RunScope | None:
        runs = self._session.open_runs()
        return runs[0] if len(runs) == 1 and isinstance(runs[0], RunScope) else None

    def current_stage(self) -> StageScope | None:
        return self._current(StageScope)

    def current_batch(self) -> BatchScope | None:
        return self._current(BatchScope)

    def current_sample(self) -> SampleScope | None:
        return self._current(SampleScope)

    def current_deployment(self) -> DeploymentScope | None:
        return self._current(DeploymentScope)

    def _scope_for_capture(self) -> Scope:
        scope = self._session.current_scope.get()
        if isinstance(scope, Scope) and scope.status == "open":
            return scope  # the common case, checked first: ctx.metric(...) in a `with` block
        scope = self.current_scope()
        if scope is None:
            raise LifecycleError(
                "no run is open here: capture inside `with ctx.run(...)`, "
                "or call the run/stage object directly",
                code="no_active_run",
            )
        return scope

    # -- emission on the current scope ---------------------------------------------------------

    def metric(
        self,
        key: str,
        value: float | int,
        *,
        unit: str | None = None,
        step: int | None = None,
        aggregation_scope: str = "step",
        tags: Mapping[str, Any] | None = None,
    ) -> CaptureResult:
        scope = self._scope_for_capture()
        if unit is None and aggregation_scope == "step" and tags is None:
            return scope.metric(key, value, step=step)  # the shape the compiled call takes itself
        return scope.metric(key, value, unit=unit, step=step, aggregation_scope=aggregation_scope, tags=tags)

    def metrics(
        self, values: Mapping[str, float | int], *, step: int | None = None, unit: str | None = None
    ) -> CaptureResult:
        return self._scope_for_capture().metrics(values, step=step, unit=unit)

    def event(
        self, key: str, *, message: str, level: str = "info", attributes: Mapping[str, Any] | None = None
    ) -> CaptureResult:
        return self._scope_for_capture().event(key, message=message, level=level, attributes=attributes)

    def span(
        self,
        name: str,
        *,
        started_at: str | datetime | None = None,
        ended_at: str | datetime | None = None,
        status: str = "ok",
        attributes: Mapping[str, Any] | None = None,
    ) -> CaptureResult:
        return self._scope_for_capture().span(
            name, started_at=started_at, ended_at=ended_at, status=status, attributes=attributes
        )

    def register_artifact(
        self,
        kind: str,
        path: Any,
        *,
        attributes: Mapping[str, Any] | None = None,
        artifact_ref: str | None = None,
        compute_hash: bool = True,
        allow_missing: bool = False,
    ) -> CaptureResult:
        return self._scope_for_capture().register_artifact(
            kind,
            path,
            attributes=attributes,
            artifact_ref=artifact_ref,
            compute_hash=compute_hash,
            allow_missing=allow_missing,
        )

    # -- pipeline control ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> FlushReport:
        """Wait until everything captured so far is in every sink; the report lists any losses.

        A run's environment snapshot is taken by a thread of its own as the run opens, and is part of
        what the run captured: a flush right after the run opened waits for it to be queued first,
        or the report counted it queued and not written, and the store had no environment for the
        run yet. That wait takes at most half of `timeout` (`ENVIRONMENT_WAIT_S` without one), so a
        short timeout still leaves the records queued before the call their time."""
        started = time.monotonic()
        environments_by = started + (ENVIRONMENT_WAIT_S if timeout is None else timeout / 2)
        for run in self._session.open_runs():
            run.wait_for_environment(environments_by - time.monotonic())
        if timeout is None:
            return self._pipeline.flush(None)
        return self._pipeline.flush(max(0.0, started + timeout - time.monotonic()))

    def close(self, timeout: float | None = None) -> FlushReport:
        """Close open runs and deployments, flush, stop the writer and close the sinks (idempotent)."""
        if not self._pipeline.closed:
            # Only what this process opened: in a forked child (a DataLoader worker) the runs open at
            # the fork, their stages and their system-metrics sampling are the parent's to end.
            for _scope, end in self._session.owned_top_level():
                end(_CLOSED_BY_CONTEXTA, None)
        report = self._pipeline.close(timeout)
        self._database.close_all()
        return report

    def capture_stats(self) -> CaptureStats:
        return self._pipeline.stats()

    def replay_outbox(self) -> ReplayReport:
        """Deliver batches that sinks refused earlier (parked under `<workspace>/cache/outbox/`)."""
        return self._pipeline.replay_outbox()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- artifacts -----------------------------------------------------------------------------

    def _reads(self) -> StoreDatabase:
        """The store, after this process's captured records have reached it (a bounded wait)."""
        if self._pipeline.undelivered:
            self._pipeline.barrier_for_scope_exit()
        return self._database

    def _artifact_logs(self) -> list[Path]:
        return [sink.file_path_for("ARTIFACT") for sink in self.sinks if isinstance(sink, LocalJsonlSink)]

    def _find_manifest(self, artifact_ref: str) -> ArtifactManifest:
        """This process's registration, else what the store or the capture log holds."""
        parse_ref(artifact_ref, "artifact")
        registration = self._session.artifacts.get(artifact_ref)
        if registration is not None:
            return registration.manifest
        return super()._find_manifest(artifact_ref)

    def repair(self) -> RepairReport:
        """Rebuild the store from the capture log; the previous store is kept beside it (see
        `RepairReport.previous_store`). Run it while no other process captures into the workspace.
        A PostgreSQL store is shared by every machine and is not rebuilt from one machine's log."""
        if self._database.path is None:
            raise StoreError(
                "repair rebuilds the workspace's SQLite store from its capture log; this workspace's store "
                "is in PostgreSQL (store.url), shared by other machines, so it is not rebuilt from this one",
                code="store_not_repairable",
            )
        self.flush()
        self._database.close_all()  # this process lets go of the file; queries reopen the new one
        layout = self._config.workspace
        return rebuild_store(self._database.path, layout.capture_dir, layout.live_dir)
