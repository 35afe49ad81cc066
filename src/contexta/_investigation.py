"""The investigation half of the facade: queries and reports over the workspace's canonical store.

A mixin so that `Contexta` stays wiring and delegation, and so that the read-only workspace the
command line opens (`_workspace_reader.py`) answers the same questions the same way: each method asks
`_reads()` for the store (the facade first lets what this process captured reach it), then hands the
question to `contexta.query` / `contexta.reports`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from contexta._on_first_use import on_first_use
from contexta.config import UnifiedConfig
from contexta.contract._artifacts import ArtifactManifest
from contexta.contract._refs import parse_ref
from contexta.contract._verification import ArtifactVerification, verify_manifest
from contexta.errors import NotFoundError
from contexta.store import ArtifactStore, StoreDatabase

if TYPE_CHECKING:
    from contexta import capture, query, reports
else:  # the read side is imported when a question is first asked, not by `import contexta`
    query = on_first_use("contexta.query")
    reports = on_first_use("contexta.reports")
    capture = on_first_use("contexta.capture")  # the capture log's reader, for artifact lookups

__all__ = ["Investigation"]

# The capture log's file of artifact registrations (see capture/_sinks/_jsonl.py).


class Investigation:
    _database: StoreDatabase
    _config: UnifiedConfig

    @property
    def project_name(self) -> str:
        return self._config.project_name

    @property
    def workspace(self) -> Path:
        return self._config.workspace.root

    @property
    def config(self) -> UnifiedConfig:
        return self._config

    def _reads(self) -> StoreDatabase:
        """The store to answer from."""
        return self._database

    def _artifact_logs(self) -> list[Path]:
        """The capture-log files that may hold artifact registrations the store lacks."""
        return [self._config.workspace.capture_log_file("ARTIFACT")]

    def _find_manifest(self, artifact_ref: str) -> ArtifactManifest:
        """The store's artifact index, else the capture log (which has artifacts registered with
        `persist` off)."""
        parse_ref(artifact_ref, "artifact")
        database = self._reads()
        try:
            return ArtifactStore(database, self._config.workspace.artifacts_dir).get_manifest(artifact_ref)
        except NotFoundError:
            pass
        found: ArtifactManifest | None = None
        for path in self._artifact_logs():
            for line in capture.read_capture_log(path).lines:
                manifest = line.get("payload", {}).get("manifest", {})
                if manifest.get("artifact_ref") == artifact_ref:
                    found = ArtifactManifest.from_dict(manifest)
        if found is None:
            raise NotFoundError(
                f"no artifact {artifact_ref} is registered in {self._config.workspace.root}",
                code="artifact_not_found",
                details={"artifact_ref": artifact_ref},
            )
        return found

    def verify_artifact(self, artifact_ref: str) -> ArtifactVerification:
        """Re-hash a registered artifact: `verified`, `missing`, `size_mismatch` or `hash_mismatch`."""
        return verify_manifest(self._find_manifest(artifact_ref))

    @property
    def _project(self) -> str:
        return self._config.project_name

    def list_projects(self) -> list[query.ProjectRecord]:
        return query.list_projects(self._reads())

    def list_runs(
        self,
        project: str | None = None,
        *,
        status: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        filter: str | query.RunFilter | None = None,  # as query.list_runs
        sort: str | Sequence[str | query.SortKey] | None = None,
        all_executions: bool = False,
    ) -> list[query.RunRecord]:
        """Runs, oldest first (all projects unless `project` is given): the latest execution of each
        run name, or with `all_executions` every execution (an earlier one is `run:p.r@n`). `filter`
        keeps the runs an expression holds for (`metrics.accuracy > 0.9 and tags.team = nlp`), `sort`
        orders them (`-metrics.accuracy,name`), `limit` / `offset` page (see `query.list_runs`)."""
        return query.list_runs(
            self._reads(),
            project,
            status=status,
            limit=limit,
            offset=offset,
            filter=filter,
            sort=sort,
            all_executions=all_executions,
        )

    def get_run(self, run_id: str) -> query.RunRecord:
        """The run execution `run_id` names (a full ref, a name, `name@n`), as `list_runs` lists it."""
        return query.get_run(self._reads(), run_id, project=self._project)

    def list_stages(self, run_id: str) -> list[query.StageRecord]:
        return query.list_stages(self._reads(), run_id, project=self._project)

    def list_batches(self, run_id: str, stage_id: str | None = None) -> list[query.BatchRecord]:
        return query.list_batches(self._reads(), run_id, stage_id, project=self._project)

    def list_samples(
        self, run_id: str, stage_id: str | None = None, batch_id: str | None = None
    ) -> list[query.SampleRecord]:
        return query.list_samples(self._reads(), run_id, stage_id, batch_id, project=self._project)

    def list_deployments(
        self, project: str | None = None, run_id: str | None = None
    ) -> list[query.DeploymentRecord]:
        return query.list_deployments(self._reads(), project, run_id, run_project=self._project)

    def list_artifacts(self, run_id: str) -> list[query.ArtifactRecord]:
        return query.list_artifacts(self._reads(), run_id, project=self._project)

    def get_metric_series(self, run_id: str, key: str, stage: str | None = None) -> query.MetricSeries:
        """Every captured value of `key` in the run (optionally one stage), in capture order."""
        return query.get_metric_series(self._reads(), run_id, key, stage, project=self._project)

    def get_environment(self, run_id: str) -> query.EnvironmentRecord | None:
        return query.get_environment(self._reads(), run_id, project=self._project)

    def get_run_snapshot(self, run_id: str) -> query.RunSnapshot:
        return query.get_run_snapshot(self._reads(), run_id, project=self._project)

    def diagnose_run(self, run_id: str) -> query.DiagnosticsResult:
        return query.diagnose_run(self._reads(), run_id, project=self._project)

    def select_best_run(
        self,
        run_ids: Sequence[str],
        metric_key: str,
        *,
        stage_name: str | None = None,
        higher_is_better: bool = True,
    ) -> str | None:
        """The run with the best latest `metric_key` value (ties: the earliest run); None if none has it."""
        return query.select_best_run(
            self._reads(),
            run_ids,
            metric_key,
            stage_name=stage_name,
            higher_is_better=higher_is_better,
            project=self._project,
        )

    def compare_runs(self, left: str, right: str) -> query.RunComparison:
        """What changed from run `left` to run `right`: metric deltas per stage, artifact changes (by
        digest), and differences in arguments and environment."""
        return query.compare_runs(self._reads(), left, right, project=self._project)

    def compare_multiple_runs(self, run_ids: Sequence[str]) -> query.MultiRunComparison:
        return query.compare_multiple_runs(self._reads(), run_ids, project=self._project)

    def build_run_report(self, left: str, right: str) -> reports.ReportDocument:
        return reports.build_run_report(self._reads(), left, right, project=self._project)

    def build_project_summary_report(self, project: str | None = None) -> reports.ReportDocument:
        """The history of `project` (this Contexta's project unless given)."""
        return reports.build_project_summary_report(self._reads(), project or self._project)

    def build_snapshot_report(self, run_id: str) -> reports.ReportDocument:
        return reports.build_snapshot_report(self._reads(), run_id, project=self._project)

    def build_multi_run_report(self, run_ids: Sequence[str]) -> reports.ReportDocument:
        return reports.build_multi_run_report(self._reads(), run_ids, project=self._project)

    def get_runs_table(
        self,
        project: str | None = None,
        *,
        filter: str | query.RunFilter | None = None,  # as query.list_runs
        sort: str | Sequence[str | query.SortKey] | None = None,
        columns: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> query.RunsTable:
        """The runs `list_runs` finds, as a table of chosen fields (`name,status,params.lr,
        metrics.accuracy,duration`); see `query.get_runs_table`."""
        return query.get_runs_table(
            self._reads(), project, filter=filter, sort=sort, columns=columns, limit=limit, offset=offset
        )
