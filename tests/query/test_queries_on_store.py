"""The read path over a real store file: resolving ids, listing in order, series, snapshots,
diagnostics and choosing the best run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from contexta.contract import DegradedRecord, MetricRecord, StructuredEventRecord
from contexta.errors import ConflictError, NotFoundError, ValidationError
from contexta.query import (
    DiagnosticsResult,
    diagnose_run,
    get_environment,
    get_metric_series,
    get_run_snapshot,
    list_artifacts,
    list_batches,
    list_deployments,
    list_projects,
    list_runs,
    list_samples,
    list_stages,
    resolve_batch,
    resolve_project,
    resolve_run,
    resolve_stage,
    select_best_run,
)
from contexta.store._database import StoreDatabase

if TYPE_CHECKING:
    from conftest import StoreBuilder

BASELINE = "run:vision.baseline"


# -- resolving ids ---------------------------------------------------------------------------------


def test_full_run_ref_resolves_to_itself(vision_store: StoreDatabase) -> None:
    assert resolve_run(vision_store, BASELINE) == BASELINE


def test_bare_run_name_resolves_when_unambiguous(vision_store: StoreDatabase) -> None:
    assert resolve_run(vision_store, "tuned") == "run:vision.tuned"
    assert resolve_run(vision_store, "Still Open") == "run:vision.still-open"  # normalised like capture does


def test_bare_run_name_in_two_projects_is_ambiguous(vision_store: StoreDatabase) -> None:
    with pytest.raises(ConflictError) as caught:
        resolve_run(vision_store, "baseline")
    assert caught.value.code == "run_ambiguous"
    assert caught.value.details["candidates"] == ["run:audio.baseline", "run:vision.baseline"]


def test_given_project_settles_an_ambiguous_name(vision_store: StoreDatabase) -> None:
    assert resolve_run(vision_store, "baseline", project="audio") == "run:audio.baseline"
    assert resolve_run(vision_store, "baseline", project="project:vision") == BASELINE
    # a name only another project has is still found
    assert resolve_run(vision_store, "tuned", project="audio") == "run:vision.tuned"


@pytest.mark.parametrize("run_id", ["missing", "run:vision.missing", "!!!"])
def test_unknown_run_is_not_found_with_a_hint(vision_store: StoreDatabase, run_id: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        resolve_run(vision_store, run_id)
    assert caught.value.code == "run_not_found"
    assert run_id in caught.value.message
    assert "list_runs" in caught.value.message


def test_a_ref_of_another_kind_is_refused(vision_store: StoreDatabase) -> None:
    with pytest.raises(ValidationError) as caught:
        resolve_run(vision_store, "stage:vision.baseline.train")
    assert caught.value.code == "ref_kind_mismatch"


def test_stage_resolves_by_name_or_ref_within_its_run(vision_store: StoreDatabase) -> None:
    assert resolve_stage(vision_store, BASELINE, "train") == "stage:vision.baseline.train"
    assert (
        resolve_stage(vision_store, BASELINE, "stage:vision.baseline.evaluate")
        == "stage:vision.baseline.evaluate"
    )
    with pytest.raises(NotFoundError) as caught:
        resolve_stage(vision_store, BASELINE, "deploy")
    assert caught.value.code == "stage_not_found"
    assert "train" in caught.value.message  # the run's stages are listed
    with pytest.raises(NotFoundError):
        resolve_stage(vision_store, BASELINE, "stage:vision.tuned.train")  # another run's stage


def test_batch_resolves_by_name_within_run_or_stage(vision_store: StoreDatabase) -> None:
    assert resolve_batch(vision_store, BASELINE, "epoch-1") == "batch:vision.baseline.train.epoch-1"
    assert resolve_batch(vision_store, BASELINE, "holdout", stage_id="evaluate") == (
        "batch:vision.baseline.evaluate.holdout"
    )
    with pytest.raises(NotFoundError) as caught:
        resolve_batch(vision_store, BASELINE, "holdout", stage_id="train")
    assert caught.value.code == "batch_not_found"


def test_batch_name_used_in_two_stages_is_ambiguous(
    vision_store: StoreDatabase, store_builder: StoreBuilder
) -> None:
    store_builder.batch("stage:vision.baseline.evaluate", "epoch-0", 1)
    with pytest.raises(ConflictError) as caught:
        resolve_batch(vision_store, BASELINE, "epoch-0")
    assert caught.value.code == "batch_ambiguous"
    assert (
        resolve_batch(vision_store, BASELINE, "epoch-0", stage_id="train")
        == "batch:vision.baseline.train.epoch-0"
    )


def test_project_resolves_by_name_or_ref(vision_store: StoreDatabase) -> None:
    assert resolve_project(vision_store, "vision") == "project:vision"
    assert resolve_project(vision_store, "project:audio") == "project:audio"
    with pytest.raises(NotFoundError) as caught:
        resolve_project(vision_store, "speech")
    assert caught.value.code == "project_not_found"
    assert "audio" in caught.value.message and "vision" in caught.value.message


# -- lists -----------------------------------------------------------------------------------------


def test_projects_are_listed_oldest_first(vision_store: StoreDatabase) -> None:
    projects = list_projects(vision_store)
    assert [project.name for project in projects] == ["vision", "audio"]
    assert projects[0].project_id == "project:vision"
    assert projects[0].description == "image classifier"


def test_runs_are_listed_oldest_first_by_instant_not_text(vision_store: StoreDatabase) -> None:
    runs = list_runs(vision_store, "vision")
    assert [run.name for run in runs] == ["baseline", "broken", "tuned", "still-open"]
    assert all(run.project_name == "vision" for run in runs)
    assert [run.run_id for run in list_runs(vision_store)] == [
        "run:vision.baseline",
        "run:audio.baseline",
        "run:vision.broken",
        "run:vision.tuned",
        "run:vision.still-open",
    ]


def test_run_records_carry_the_run_arguments(vision_store: StoreDatabase) -> None:
    (baseline,) = [run for run in list_runs(vision_store, "vision") if run.name == "baseline"]
    assert baseline.run_id == BASELINE
    assert baseline.dataset_ref == "dataset:vision.cifar"
    assert baseline.code_revision == "abc123"
    assert baseline.tags == {"team": "cv"}
    assert baseline.config_snapshot == {"lr": 0.01}
    assert baseline.to_dict()["tags"] == {"team": "cv"}


def test_runs_filter_by_status_and_limit_keeps_the_latest(vision_store: StoreDatabase) -> None:
    assert [run.name for run in list_runs(vision_store, "vision", status="open")] == ["still-open"]
    assert [run.name for run in list_runs(vision_store, "vision", limit=2)] == ["tuned", "still-open"]
    assert list_runs(vision_store, "nothing-here") == []
    with pytest.raises(ValidationError):
        list_runs(vision_store, status="finished")
    with pytest.raises(ValidationError):
        list_runs(vision_store, limit=0)


def test_stages_follow_their_order_index(vision_store: StoreDatabase) -> None:
    stages = list_stages(vision_store, BASELINE)
    assert [(stage.name, stage.order) for stage in stages] == [("train", 0), ("evaluate", 1)]
    assert stages[0].stage_id == "stage:vision.baseline.train"


def test_batches_follow_stage_order_then_their_own(vision_store: StoreDatabase) -> None:
    batches = list_batches(vision_store, BASELINE, stage_id="stage:vision.baseline.train")
    assert [(batch.name, batch.status, batch.started_at) for batch in batches] == [
        ("epoch-0", "completed", "2025-01-01T00:00:00Z"),
        ("epoch-1", "failed", "2025-01-01T00:10:00Z"),
        ("epoch-2", "open", "2025-01-01T00:20:00Z"),
    ]
    assert batches[0].stage_id == "stage:vision.baseline.train"
    everything = list_batches(vision_store, "run:vision.baseline")
    assert [batch.name for batch in everything] == ["epoch-0", "epoch-1", "epoch-2", "holdout"]
    assert [batch.name for batch in list_batches(vision_store, BASELINE, "evaluate")] == ["holdout"]


def test_samples_are_listed_in_observation_order(vision_store: StoreDatabase) -> None:
    samples = list_samples(vision_store, BASELINE, stage_id="evaluate")
    assert [(sample.name, sample.observed_at) for sample in samples] == [
        ("s-1", "2025-01-01T00:31:00Z"),
        ("s-2", "2025-01-01T00:35:00Z"),
        ("s-3", "2025-01-01T00:36:00Z"),
    ]
    assert samples[0].retention_class == "review"
    assert samples[1].redaction_profile == "pii-masked"
    (in_batch,) = list_samples(vision_store, BASELINE, batch_id="holdout")
    assert in_batch.sample_id == "sample:vision.baseline.evaluate.holdout.s-3"
    assert in_batch.batch_id == "batch:vision.baseline.evaluate.holdout"


def test_deployments_by_project_and_by_run(vision_store: StoreDatabase) -> None:
    deployments = list_deployments(vision_store, "vision")
    assert [(d.deployment_id, d.status, d.run_id) for d in deployments] == [
        ("deployment:vision.canary", "failed", BASELINE),
        ("deployment:vision.prod", "completed", "run:vision.tuned"),
    ]
    assert [d.name for d in list_deployments(vision_store, run_id="tuned")] == ["prod"]
    assert list_deployments(vision_store, "audio") == []


def test_artifacts_of_a_run(vision_store: StoreDatabase) -> None:
    artifacts = list_artifacts(vision_store, BASELINE)
    assert [(a.kind, a.binding_status) for a in artifacts] == [("model", "BOUND"), ("report", "PENDING")]
    assert artifacts[0].stage_id == "stage:vision.baseline.train"
    assert artifacts[0].size_bytes == 1024
    assert artifacts[1].hash_value is None


def test_environment_of_a_run(vision_store: StoreDatabase) -> None:
    environment = get_environment(vision_store, BASELINE)
    assert environment is not None
    assert environment.python_version == "3.11.9"
    assert environment.packages == {"numpy": "1.26.4", "contexta": "0.1.0", "six": "1.16"}
    assert get_environment(vision_store, "broken") is None


# -- metric series -----------------------------------------------------------------------------------


def test_metric_series_is_in_capture_order(vision_store: StoreDatabase) -> None:
    series = get_metric_series(vision_store, BASELINE, "loss")
    assert series.run_id == BASELINE
    assert series.metric_key == "loss"
    assert [(point.step, point.value) for point in series.points] == [(0, 0.9), (1, 0.5), (2, 0.3)]
    assert series.points[0].stage_id == "stage:vision.baseline.train"


def test_metric_series_keeps_capture_order_over_observation_time(
    vision_store: StoreDatabase,
    store_builder: StoreBuilder,
) -> None:
    # captured last, although observed earliest
    store_builder.metric(
        "stage:vision.baseline.train", "loss", 0.2, step=3, observed_at="2024-12-31T00:00:00Z"
    )
    assert get_metric_series(vision_store, BASELINE, "loss").values == (0.9, 0.5, 0.3, 0.2)


def test_metric_series_by_stage_and_of_a_missing_key(vision_store: StoreDatabase) -> None:
    evaluate = get_metric_series(vision_store, BASELINE, "accuracy", stage="evaluate")
    assert evaluate.values == (0.81, 0.83)
    assert evaluate.latest is not None and evaluate.latest.value == 0.83
    with pytest.raises(NotFoundError, match="recorded in stage 'evaluate'") as wrong_stage:
        get_metric_series(vision_store, BASELINE, "accuracy", stage="train")
    assert wrong_stage.value.code == "metric_not_found"
    with pytest.raises(NotFoundError, match="no metric 'bleu'"):
        get_metric_series(vision_store, BASELINE, "bleu")
    f1 = get_metric_series(vision_store, BASELINE, "macro.f1")
    assert f1.points[0].batch_id == "batch:vision.baseline.evaluate.holdout"
    assert get_metric_series(vision_store, BASELINE, "wall.seconds").values == (3600,)


# -- snapshot ----------------------------------------------------------------------------------------


def test_snapshot_holds_everything_about_the_run(vision_store: StoreDatabase) -> None:
    snapshot = get_run_snapshot(vision_store, BASELINE)
    assert snapshot.run.run_id == BASELINE
    assert [stage.name for stage in snapshot.stages] == ["train", "evaluate"]
    assert len(snapshot.batches) == 4
    assert len(snapshot.samples) == 3
    assert [d.name for d in snapshot.deployments] == ["canary"]
    assert len(snapshot.artifacts) == 2
    assert snapshot.environment is not None and snapshot.environment.git_revision == "0f3c2a1"
    kinds = [type(record) for record in snapshot.records]
    assert kinds == [StructuredEventRecord] + [MetricRecord] * 7
    losses = [
        r.payload.value
        for r in snapshot.records
        if isinstance(r, MetricRecord) and r.payload.metric_key == "loss"
    ]
    assert losses == [0.9, 0.5, 0.3]


def test_snapshot_notes_say_what_is_missing(vision_store: StoreDatabase) -> None:
    notes = get_run_snapshot(vision_store, BASELINE).completeness_notes
    assert any("epoch-2" in note and "still open" in note for note in notes)
    assert any("PENDING" in note and "report" in note for note in notes)
    assert not any("environment" in note for note in notes)

    broken = get_run_snapshot(vision_store, "broken")
    assert [type(record) for record in broken.records] == [DegradedRecord]
    assert any("Stage 'evaluate' recorded no metrics" in note for note in broken.completeness_notes)
    assert any("degraded record" in note and "7 items dropped" in note for note in broken.completeness_notes)
    assert any("environment" in note for note in broken.completeness_notes)

    still_open = get_run_snapshot(vision_store, "still-open").completeness_notes
    assert any("still open" in note for note in still_open)
    assert any("No metrics were recorded" in note for note in still_open)


def test_snapshot_to_dict_is_plain(vision_store: StoreDatabase) -> None:
    data = get_run_snapshot(vision_store, BASELINE).to_dict()
    assert data["run"]["run_id"] == BASELINE
    assert isinstance(data["stages"], list) and data["stages"][0]["name"] == "train"
    assert data["records"][1]["payload"]["metric_key"] == "loss"


# -- diagnostics -------------------------------------------------------------------------------------


def _codes(result: DiagnosticsResult) -> list[tuple[str, str, str]]:
    return [(issue.severity, issue.code, issue.subject_ref) for issue in result.issues]


def test_diagnostics_of_a_run_with_failures(vision_store: StoreDatabase) -> None:
    result = diagnose_run(vision_store, BASELINE)
    assert result.run_id == BASELINE
    assert _codes(result) == [
        ("error", "failed_batch", "batch:vision.baseline.train.epoch-1"),
        ("error", "failed_deployment", "deployment:vision.canary"),
        ("warning", "incomplete_batch", "batch:vision.baseline.train.epoch-2"),
        ("warning", "pending_artifact", "artifact:vision.baseline.report-0123456789ab"),
    ]
    failed_batch = result.issues[0]
    assert "epoch-1" in failed_batch.summary and "rerun" in failed_batch.summary
    assert result.max_severity == "error"
    assert result.completeness_notes == get_run_snapshot(vision_store, BASELINE).completeness_notes


def test_diagnostics_of_failed_stage_degraded_records_and_missing_results(
    vision_store: StoreDatabase,
) -> None:
    assert _codes(diagnose_run(vision_store, "tuned")) == [
        ("error", "failed_stage", "stage:vision.tuned.train")
    ]
    broken = diagnose_run(vision_store, "broken")
    assert [(issue.severity, issue.code) for issue in broken.issues] == [
        ("warning", "degraded_record"),
        ("warning", "missing_terminal_metrics"),
    ]
    assert broken.issues[0].subject_ref.startswith("record:vision.broken.")
    assert broken.issues[1].subject_ref == "stage:vision.broken.evaluate"
    assert broken.max_severity == "warning"
    assert broken.has_issues_at_least("warning") and not broken.has_issues_at_least("error")


def test_degraded_records_are_one_issue_per_reason(
    vision_store: StoreDatabase, store_builder: StoreBuilder
) -> None:
    first = store_builder.degraded("run:vision.tuned", "capture.dropped", 3)
    store_builder.degraded("run:vision.tuned", "capture.dropped", 4)
    store_builder.degraded("run:vision.tuned", "sink.failed", 0)
    degraded = [
        issue for issue in diagnose_run(vision_store, "tuned").issues if issue.code == "degraded_record"
    ]
    assert degraded[0].subject_ref == first
    assert len(degraded) == 2
    assert "2 degraded record(s) with reason 'capture.dropped': 7 items were dropped" in degraded[0].summary
    assert "sink.failed" in degraded[1].summary


def test_an_open_batch_of_an_open_run_is_not_yet_incomplete(
    vision_store: StoreDatabase, store_builder: StoreBuilder
) -> None:
    stage = store_builder.stage("run:vision.still-open", "train", 0, status="open")
    store_builder.batch(stage, "epoch-0", 0, status="open")
    result = diagnose_run(vision_store, "still-open")
    assert result.issues == ()
    assert any("still open" in note for note in result.completeness_notes)


# -- selecting the best run --------------------------------------------------------------------------


def test_best_run_by_latest_value_with_ties_to_the_earliest(vision_store: StoreDatabase) -> None:
    # baseline's latest accuracy 0.83 ties tuned's; baseline started first
    assert select_best_run(vision_store, ["tuned", BASELINE], "accuracy", stage_name="evaluate") == BASELINE
    assert select_best_run(vision_store, [BASELINE, "tuned"], "accuracy", higher_is_better=False) == BASELINE


def test_best_run_skips_runs_without_the_metric(
    vision_store: StoreDatabase, store_builder: StoreBuilder
) -> None:
    store_builder.metric("stage:vision.tuned.evaluate", "accuracy", 0.9)
    runs = ["broken", BASELINE, "tuned", "still-open"]
    assert select_best_run(vision_store, runs, "accuracy") == "run:vision.tuned"
    assert select_best_run(vision_store, runs, "accuracy", higher_is_better=False) == BASELINE
    assert select_best_run(vision_store, runs, "loss") == BASELINE  # only one run has it


def test_best_run_of_one_run_and_of_none(vision_store: StoreDatabase) -> None:
    assert select_best_run(vision_store, ["tuned"], "accuracy") == "run:vision.tuned"
    assert select_best_run(vision_store, ["tuned", BASELINE], "bleu") is None
    assert select_best_run(vision_store, [BASELINE], "accuracy", stage_name="train") is None
    assert select_best_run(vision_store, [], "accuracy") is None
    with pytest.raises(ValidationError):
        select_best_run(vision_store, "tuned", "accuracy")
    with pytest.raises(NotFoundError):
        select_best_run(vision_store, ["tuned", "nope"], "accuracy")
