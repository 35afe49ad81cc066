"""The investigation half of the facade: queries and reports over the workspace's canonical store.

A mixin so that `Contexta` stays wiring and delegation, and so that the read-only workspace the
command line opens (`_workspace_reader.py`) answers the same questions the same way: each method asks
`_reads()` for the store (the facade first lets what this process captured reach it), then hands the
question to `contexta.query` / `contexta.reports`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from contexta._on_first_use import on_first_use
from contexta.config import UnifiedConfig
from contexta.contract._artifacts import ArtifactManifest, path_of_location
from contexta.contract._refs import parse_ref
from contexta.contract._verification import ArtifactVerification, verify_manifest
from contexta.errors import NotFoundError, ValidationError
from contexta.store import ArtifactStore, StoreDatabase, copy_verified

if TYPE_CHECKING:
    from contexta import capture, query, reports
    from contexta.store import S3ArtifactBackend
else:  # the read side is imported when a question is first asked, not by `import contexta`
    query = on_first_use("contexta.query")
    reports = on_first_use("contexta.reports")
    capture = on_first_use("contexta.capture")  # the capture log's reader, for artifact lookups

__all__ = ["Investigation"]

# The capture log's file of artifact registrations (see capture/_sinks/_jsonl.py).


class Investigation:
    _database: StoreDatabase
    _config: UnifiedConfig
    _s3_backend: S3ArtifactBackend | None = None

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

    def _stored_location(self, artifact_ref: str) -> str | None:
        """Where the kept copy of `artifact_ref` is (`keep_copy`), if one was kept."""
        return ArtifactStore(self._reads(), self._config.workspace.artifacts_dir).stored_location(
            artifact_ref
        )

    def _s3_artifacts(self, location: str) -> S3ArtifactBackend:
        """One S3 backend per workspace object (its client is reused), for copies at `location`."""
        if self._s3_backend is None:
            from contexta.store import S3ArtifactBackend

            self._s3_backend = S3ArtifactBackend.from_url(self._config.artifacts.url or location)
        return self._s3_backend

    def verify_artifact(self, artifact_ref: str) -> ArtifactVerification:
        """Re-hash a registered artifact: `verified`, `missing`, `size_mismatch` or `hash_mismatch`.

        A copy kept in S3 (`artifacts.url`) is what is checked when there is one, since that is the
        copy meant to outlive the original file: present, of the registered size, with the digest in
        its metadata, and bytes that hash to it (streamed, never held in memory whole)."""
        manifest = self._find_manifest(artifact_ref)
        stored = self._stored_location(artifact_ref)
        if stored is None or not stored.startswith("s3://") or manifest.hash_value is None:
            return verify_manifest(manifest)
        check = self._s3_artifacts(stored).verify(stored, manifest.hash_value, manifest.size_bytes)
        return ArtifactVerification(
            artifact_ref,
            check.status,
            stored,
            manifest.hash_value,
            check.actual_hash,
            manifest.size_bytes,
            check.actual_size,
        )

    def fetch_artifact(self, artifact_ref: str, destination: str | os.PathLike[str]) -> Path:
        """Write a registered artifact's bytes to `destination` (a file path, or a directory to put it in
        under its original name) and return the path written.

        The bytes come from the kept copy (S3 or `<workspace>/artifacts/`), else from the original
        file; they are checked against the registered digest on the way and renamed into place only
        when they match, so a damaged copy raises (`artifact_digest_mismatch`) and leaves nothing."""
        manifest = self._find_manifest(artifact_ref)
        if manifest.hash_value is None:
            raise ValidationError(
                f"{artifact_ref} was registered without a digest; its bytes cannot be checked",
                code="artifact_without_digest",
            )
        original = path_of_location(manifest.location_ref)
        target = Path(destination)
        if target.is_dir() or os.fspath(destination).endswith(("/", os.sep)):
            target = target / os.path.basename(original)
        stored = self._stored_location(artifact_ref)
        if stored is not None and stored.startswith("s3://"):
            return self._s3_artifacts(stored).download(
                stored, manifest.hash_value, manifest.size_bytes, target
            )
        for source in (stored, original):
            if source is not None and os.path.isfile(source):
                return copy_verified(Path(source), manifest.hash_value, target)
        raise NotFoundError(
            f"no copy of {artifact_ref} is left: the file {original} is gone and none was kept "
            "(ctx.artifact_store.keep_copy keeps one)",
            code="artifact_copy_missing",
            details={"artifact_ref": artifact_ref},
        )

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
        include_archived: bool = False,
    ) -> list[query.RunRecord]:
        """Runs, oldest first (all projects unless `project` is given): the latest execution of each
        run name, or with `all_executions` every execution (an earlier one is `run:p.r@n`); archived
        ones only with `include_archived`. `filter` keeps the runs an expression holds for
        (`metrics.accuracy > 0.9 and tags.team = nlp`), `sort` orders them (`-metrics.accuracy,name`),
        `limit` / `offset` page (see `query.list_runs`)."""
        return query.list_runs(
            self._reads(),
            project,
            status=status,
            limit=limit,
            offset=offset,
            filter=filter,
            sort=sort,
            all_executions=all_executions,
            include_archived=include_archived,
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
        higher_is_better: bool | None = True,
        aggregate: str | None = None,
    ) -> str | None:
        """The run with the best `metric_key` (ties: the earliest run); None if none has it. Judged by
        the latest value, or for a metric recorded inside samples by their mean (`aggregate` chooses:
        `latest`, `mean`, `p95`, `share`, ...); `higher_is_better=None` infers the direction."""
        return query.select_best_run(
            self._reads(),
            run_ids,
            metric_key,
            stage_name=stage_name,
            higher_is_better=higher_is_better,
            project=self._project,
            aggregate=aggregate,
        )

    def compare_runs(
        self, left: str, right: str, *, metric_keys: Sequence[str] | None = None
    ) -> query.RunComparison:
        """What changed from run `left` to run `right`: metric deltas per stage, per-sample metrics
        as statistics, artifact changes (by digest), and differences in arguments and environment;
        `metric_keys` keeps those metrics only (an unknown key raises `NotFoundError`)."""
        return query.compare_runs(self._reads(), left, right, project=self._project, metric_keys=metric_keys)

    def compare_multiple_runs(
        self, run_ids: Sequence[str], *, metric_keys: Sequence[str] | None = None
    ) -> query.MultiRunComparison:
        return query.compare_multiple_runs(
            self._reads(), run_ids, project=self._project, metric_keys=metric_keys
        )

    def build_run_report(self, left: str, right: str) -> reports.ReportDocument:
        return reports.build_run_report(self._reads(), left, right, project=self._project)

    def build_project_summary_report(self, project: str | None = None) -> reports.ReportDocument:
        """The history of `project` (this Contexta's project unless given)."""
        return reports.build_project_summary_report(self._reads(), project or self._project)

    def build_snapshot_report(self, run_id: str) -> reports.ReportDocument:
        return reports.build_snapshot_report(self._reads(), run_id, project=self._project)

    def build_multi_run_report(self, run_ids: Sequence[str]) -> reports.ReportDocument:
        return reports.build_multi_run_report(self._reads(), run_ids, project=self._project)

    def find_best_run(
        self,
        run_ids: Sequence[str],
        metric_key: str,
        *,
        stage_name: str | None = None,
        higher_is_better: bool | None = None,
        aggregate: str | None = None,
    ) -> query.BestRun:
        """The best run by `metric_key` with the value that won, the aggregate that judged it and the
        direction used (inferred from the key unless given); `NotFoundError` naming the closest keys
        or stages when no run has a finite value of it."""
        return query.find_best_run(
            self._reads(),
            run_ids,
            metric_key,
            stage_name=stage_name,
            higher_is_better=higher_is_better,
            aggregate=aggregate,
            project=self._project,
        )

    def get_sample_table(
        self, run_id: str, stage: str | None = None, *, failed_only: bool = False
    ) -> query.SampleTable:
        """The run's samples (of one stage) with status, end reason, metrics and event messages; with
        `failed_only`, the failed ones only."""
        return query.get_sample_table(
            self._reads(), run_id, stage, failed_only=failed_only, project=self._project
        )

    def get_metric_summaries(self, run_id: str) -> list[query.MetricSummary]:
        """Each metric per stage: latest, min, max and count outside samples, and the per-sample
        values summarised (`SampleAggregate`)."""
        return query.get_metric_summaries(self._reads(), run_id, project=self._project)

    def get_metric_trend(
        self,
        key: str,
        *,
        stage: str | None = None,
        project: str | None = None,
        filter: str | None = None,
        aggregation: str = "latest",
    ) -> query.MetricTrend:
        """`key`'s value per run, oldest first: the `aggregation` (latest, min, max, mean, p50, p95,
        count) of each run's points in the stage named `stage` (else the whole run); runs of
        `project` (every project when None); runs without the metric are listed in `skipped`."""
        return query.get_metric_trend(
            self._reads(), key, stage=stage, project=project, filter=filter, aggregation=aggregation
        )

    def get_stage_duration_trend(
        self, stage: str, *, project: str | None = None, filter: str | None = None
    ) -> query.StageDurationTrend:
        """How long the stage named `stage` took in each run (seconds), oldest run first."""
        return query.get_stage_duration_trend(self._reads(), stage, project=project, filter=filter)

    def get_artifact_size_trend(
        self, kind: str, *, project: str | None = None, filter: str | None = None
    ) -> query.ArtifactSizeTrend:
        """The total size of each run's artifacts of `kind` (and each one's), oldest run first."""
        return query.get_artifact_size_trend(self._reads(), kind, project=project, filter=filter)

    def evaluate_alerts(
        self,
        rules: Sequence[query.AlertRule],
        *,
        run: str | None = None,
        project: str | None = None,
        filter: str | None = None,
    ) -> query.AlertReport:
        """Every rule on the run `run` (a bare name is looked up in this project first), or on every
        run of `project` (every project when None); `.any_fired` is what a CI job fails on. Rules
        files are read with `contexta.query.load_alert_rules(path)`."""
        if run is not None and project is None:
            project = self._project
        return query.evaluate_alerts(self._reads(), rules, run=run, project=project, filter=filter)

    def metric_history(
        self, run_id: str, keys: str | Sequence[str] | None = None, stage: str | None = None
    ) -> query.MetricHistory:
        """Every point the run captured of `keys` (default: all its metrics), optionally within one
        stage, as one tidy table (one row per point): `.to_pandas()`, `.to_arrow()`, `.write(path)`;
        `history["loss"]` is one key's series."""
        return query.metric_history(self._reads(), run_id, keys, stage, project=self._project)

    # -- lineage and reproducibility ----------------------------------------------------------------

    def traverse_lineage(
        self, ref: str, *, direction: str = "both", max_depth: int | None = None
    ) -> query.LineageGraph:
        """The datasets, runs, artifacts and deployments linked to `ref` by captured facts
        (`direction`: both, upstream or downstream; `max_depth` hops, None for no limit)."""
        return query.traverse_lineage(
            self._reads(), ref, direction=direction, max_depth=max_depth, project=self._project
        )

    def get_artifact_origin(self, artifact_ref: str) -> query.ArtifactOrigin:
        """The run and stage that registered an artifact, when, its digest and size, and the
        deployments that name it."""
        return query.get_artifact_origin(self._reads(), artifact_ref)

    def audit_reproducibility(self, run_id: str) -> query.ReproducibilityAudit:
        """What running `run_id` again would need, each check ok, missing or unknown (artifacts are
        re-hashed)."""
        return query.audit_reproducibility(self._reads(), run_id, project=self._project)

    def compare_environments(self, left: str, right: str) -> query.EnvironmentComparison:
        """How run `right`'s environment differs from run `left`'s: Python, platform, git revision,
        packages added, removed and changed."""
        return query.compare_environments(self._reads(), left, right, project=self._project)

    def get_runs_table(
        self,
        project: str | None = None,
        *,
        filter: str | query.RunFilter | None = None,  # as query.list_runs
        sort: str | Sequence[str | query.SortKey] | None = None,
        columns: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        include_archived: bool = False,
    ) -> query.RunsTable:
        """The runs `list_runs` finds, as a table of chosen fields (`name,status,params.lr,
        metrics.accuracy,duration`); see `query.get_runs_table`."""
        return query.get_runs_table(
            self._reads(),
            project,
            filter=filter,
            sort=sort,
            columns=columns,
            limit=limit,
            offset=offset,
            include_archived=include_archived,
        )

    def get_series_view(
        self,
        run_id: str,
        key: str,
        *,
        stage: str | None = None,
        x: query.SeriesAxis = "step",
        width: int = 1500,
        x_range: tuple[float, float] | None = None,
    ) -> query.SeriesView:
        """`key` in the run (one stage, or all) ready for a chart `width` pixels wide: at most ~2
        points per bucket (each bucket's smallest and largest, its first NaN, the range's first and
        last point), within `x_range` when given; see `query.get_series_view`."""
        return query.get_series_view(
            self._reads(), run_id, key, stage=stage, x=x, width=width, x_range=x_range, project=self._project
        )
