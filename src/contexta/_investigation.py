"""The investigation half of the facade: queries and reports over the workspace's canonical store.

A mixin so that `Contexta` stays wiring and delegation: each method brings the store up to date with
what this process captured, then hands the question to `contexta.query` / `contexta.reports`.
"""

from __future__ import annotations

from collections.abc import Sequence

from contexta import query, reports
from contexta.capture._pipeline import CapturePipeline
from contexta.config import UnifiedConfig
from contexta.store._database import StoreDatabase

__all__ = ["Investigation"]


class Investigation:
    _database: StoreDatabase
    _pipeline: CapturePipeline
    _config: UnifiedConfig

    def _reads(self) -> StoreDatabase:
        """The store, after this process's captured records have reached it (a bounded wait)."""
        writer = self._pipeline.writer
        if len(self._pipeline.queue) or writer.in_flight or writer.pending_in_lanes:
            self._pipeline.barrier_for_scope_exit()
        return self._database

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
        all_executions: bool = False,
    ) -> list[query.RunRecord]:
        """Runs, oldest first (all projects unless `project` is given): the latest execution of each
        run name, or with `all_executions` every execution (an earlier one is `run:p.r@n`)."""
        return query.list_runs(
            self._reads(), project, status=status, limit=limit, all_executions=all_executions
        )

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
