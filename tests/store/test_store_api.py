"""The store API of the seeds: repositories, the record store and the artifact index, each against a
real store file; and what happens when the file where the store belongs is not a Contexta store."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contexta import Contexta, ContextaError
from contexta.capture import hash_file
from contexta.contract import (
    ArtifactManifest,
    BatchExecution,
    DegradedPayload,
    DegradedRecord,
    DeploymentExecution,
    EnvironmentSnapshot,
    LineageEdge,
    MetricPayload,
    MetricRecord,
    Project,
    RecordEnvelope,
    Run,
    SampleObservation,
    StageExecution,
    StructuredEventPayload,
    StructuredEventRecord,
    TraceSpanPayload,
    TraceSpanRecord,
)
from contexta.errors import NotFoundError, StoreError, ValidationError
from contexta.store import MetadataStore

T0 = "2025-03-01T09:00:00Z"
T1 = "2025-03-01T10:00:00Z"
T2 = "2025-03-01T11:00:00Z"

PROJECT = "project:vision"
RUN = "run:vision.baseline"
TRAIN = "stage:vision.baseline.train"
EVALUATE = "stage:vision.baseline.evaluate"
EPOCH = "batch:vision.baseline.train.epoch-0"
HOLDOUT = "batch:vision.baseline.evaluate.holdout"
DATA = "artifact:vision.baseline.data-0123456789ab"


@pytest.fixture
def ctx(workspace: Path) -> Iterator[Contexta]:
    context = Contexta(workspace=workspace, config={"project_name": "vision"})
    yield context
    context.close()


@pytest.fixture
def store(ctx: Contexta) -> MetadataStore:
    return ctx.metadata_store


def _project(name: str = "vision", created_at: str = "2025-01-01T00:00:00Z", **extra: Any) -> Project:
    return Project(project_ref=f"project:{name}", name=name, created_at=created_at, **extra)


def _run(name: str = "baseline", project: str = "vision", **extra: Any) -> Run:
    fields: dict[str, Any] = {"status": "completed", "started_at": T0, "ended_at": T2, **extra}
    return Run(run_ref=f"run:{project}.{name}", project_ref=f"project:{project}", name=name, **fields)


def _stage(name: str = "train", run: str = RUN, **extra: Any) -> StageExecution:
    fields: dict[str, Any] = {"status": "completed", "started_at": T0, "ended_at": T1, **extra}
    return StageExecution(
        stage_execution_ref=f"stage:{run.removeprefix('run:')}.{name}", run_ref=run, stage_name=name, **fields
    )


def _batch(name: str = "epoch-0", stage: str = TRAIN, **extra: Any) -> BatchExecution:
    fields: dict[str, Any] = {"status": "completed", "started_at": T0, "ended_at": T1, **extra}
    run = "run:" + ".".join(stage.removeprefix("stage:").split(".")[:2])
    return BatchExecution(
        batch_execution_ref=f"batch:{stage.removeprefix('stage:')}.{name}",
        run_ref=run,
        stage_execution_ref=stage,
        batch_name=name,
        **fields,
    )


def _sample(name: str, owner: str, observed_at: str = T1, **extra: Any) -> SampleObservation:
    components = owner.partition(":")[2].split(".")
    in_batch = owner.startswith("batch:")
    return SampleObservation(
        sample_observation_ref=f"sample:{'.'.join(components)}.{name}",
        run_ref="run:" + ".".join(components[:2]),
        stage_execution_ref="stage:" + ".".join(components[:3]),
        batch_execution_ref=owner if in_batch else None,
        sample_name=name,
        observed_at=observed_at,
        **extra,
    )


def _deployment(name: str = "canary", project: str = "vision", **extra: Any) -> DeploymentExecution:
    fields: dict[str, Any] = {"status": "completed", "started_at": T1, "ended_at": T2, **extra}
    return DeploymentExecution(
        deployment_execution_ref=f"deployment:{project}.{name}",
        project_ref=f"project:{project}",
        deployment_name=name,
        **fields,
    )


def _environment(run: str = RUN) -> EnvironmentSnapshot:
    return EnvironmentSnapshot(
        run_ref=run,
        captured_at=T0,
        python_version="3.11.9",
        platform="Linux-6.1-x86_64",
        packages={"numpy": "1.26.4", "orjson": "3.10.0"},
        git_revision="0f3c2a1",
        attributes={"hostname": "trainer-1"},
    )


def _put_tree(store: MetadataStore) -> None:
    """A project with one run, its train and evaluate stages and a batch in each."""
    store.projects.put_project(_project())
    store.runs.put_run(_run())
    store.stages.put_stage_execution(_stage("train", order_index=0))
    store.stages.put_stage_execution(_stage("evaluate", order_index=1, started_at=T1, ended_at=T2))
    store.batches.put_batch_execution(_batch("epoch-0", order_index=0))
    store.batches.put_batch_execution(_batch("holdout", EVALUATE, started_at=T1, ended_at=T2))


# -- repositories: round trips ---------------------------------------------------------------------


def test_projects_round_trip_oldest_first(store: MetadataStore) -> None:
    audio = _project("audio", created_at="2025-02-01T00:00:00Z", tags={"modality": "sound"})
    vision = _project("vision", description="image classifier", tags={"team": "cv"})
    store.projects.put_project(audio)
    store.projects.put_project(vision)

    assert store.projects.get_project("project:vision") == vision
    assert store.projects.get_project("project:audio") == audio
    assert store.projects.list_projects() == [vision, audio]


def test_runs_round_trip_with_their_arguments(store: MetadataStore) -> None:
    store.projects.put_project(_project())
    store.projects.put_project(_project("audio"))
    later = _run("tuned", started_at=T1)
    full = _run(
        description="first try",
        dataset_ref="dataset:vision.cifar",
        code_revision="abc123",
        tags={"team": "cv"},
        metadata={"owner": "ana"},
        config_snapshot={"lr": 0.01, "layers": [64, 32]},
    )
    other = _run("baseline", "audio")
    store.runs.put_run(later)
    store.runs.put_run(full)
    store.runs.put_run(other)

    assert store.runs.get_run(RUN) == full
    assert store.runs.list_runs("project:vision") == [full, later]
    assert store.runs.list_runs() == [full, other, later]


def test_stages_round_trip_in_order(store: MetadataStore) -> None:
    store.projects.put_project(_project())
    store.runs.put_run(_run())
    evaluate = _stage("evaluate", order_index=1, started_at=T1, ended_at=T2)
    train = _stage("train", order_index=0)
    store.stages.put_stage_execution(evaluate)
    store.stages.put_stage_execution(train)

    assert store.stages.get_stage_execution(TRAIN) == train
    assert store.stages.list_stage_executions(RUN) == [train, evaluate]


def test_batches_round_trip_per_run_and_per_stage(store: MetadataStore) -> None:
    store.projects.put_project(_project())
    store.runs.put_run(_run())
    store.stages.put_stage_execution(_stage("train", order_index=0))
    store.stages.put_stage_execution(_stage("evaluate", order_index=1, started_at=T1, ended_at=T2))
    second = _batch("epoch-1", order_index=1, status="failed")
    first = _batch("epoch-0", order_index=0)
    holdout = _batch("holdout", EVALUATE, order_index=0, started_at=T1, ended_at=T2)
    for batch in (second, holdout, first):
        store.batches.put_batch_execution(batch)

    assert store.batches.get_batch_execution(EPOCH) == first
    assert store.batches.list_batch_executions(RUN, TRAIN) == [first, second]
    assert store.batches.list_batch_executions(RUN, EVALUATE) == [holdout]
    assert set(store.batches.list_batch_executions(RUN)) == {first, second, holdout}


def test_samples_round_trip_owned_by_a_stage_or_a_batch(store: MetadataStore) -> None:
    _put_tree(store)
    late = _sample("s-2", EVALUATE, observed_at="2025-03-01T10:30:00Z", redaction_profile="pii-masked")
    early = _sample("s-1", EVALUATE, observed_at="2025-03-01T10:10:00Z", retention_class="review")
    in_batch = _sample("s-3", HOLDOUT, observed_at="2025-03-01T10:20:00Z")
    for sample in (late, early, in_batch):
        store.samples.put_sample_observation(sample)

    assert store.samples.get_sample_observation("sample:vision.baseline.evaluate.s-2") == late
    assert store.samples.get_sample_observation("sample:vision.baseline.evaluate.holdout.s-3") == in_batch
    assert store.samples.list_sample_observations(RUN) == [early, in_batch, late]


def test_deployments_round_trip_per_project(store: MetadataStore) -> None:
    _put_tree(store)
    store.projects.put_project(_project("audio"))
    prod = _deployment("prod", started_at=T2, ended_at="2025-03-01T12:00:00Z", order_index=1)
    canary = _deployment(
        "canary",
        run_ref=RUN,
        artifact_ref="artifact:vision.baseline.model-0123456789ab",
        status="failed",
        order_index=0,
    )
    speech = _deployment("speech", "audio")
    for deployment in (prod, canary, speech):
        store.deployments.put_deployment_execution(deployment)

    assert store.deployments.get_deployment_execution("deployment:vision.canary") == canary
    assert store.deployments.list_deployment_executions("project:vision") == [canary, prod]
    assert store.deployments.list_deployment_executions("project:audio") == [speech]
    assert len(store.deployments.list_deployment_executions()) == 3


def test_environment_round_trip(store: MetadataStore) -> None:
    _put_tree(store)
    snapshot = _environment()
    store.environments.put_environment_snapshot(snapshot)

    assert store.environments.get_environment_snapshot(RUN) == snapshot


def test_relations_are_listed_from_either_end(store: MetadataStore) -> None:
    produced = LineageEdge(
        source_ref=RUN,
        target_ref="artifact:vision.baseline.model-0123456789ab",
        relation="produced",
        recorded_at=T1,
        attributes={"stage": "train"},
    )
    shipped = LineageEdge(
        source_ref="deployment:vision.canary",
        target_ref="artifact:vision.baseline.model-0123456789ab",
        relation="shipped",
        recorded_at=T2,
    )
    unrelated = LineageEdge(
        source_ref="run:vision.other",
        target_ref="artifact:vision.other.data-0123456789ab",
        relation="read",
        recorded_at=T0,
    )
    for edge in (shipped, produced, unrelated):
        store.relations.put_relation(edge)

    assert store.relations.list_relations("artifact:vision.baseline.model-0123456789ab") == [
        produced,
        shipped,
    ]
    assert store.relations.list_relations(RUN) == [produced]
    assert store.relations.list_relations("run:vision.nothing") == []


# -- repositories: upserts ---------------------------------------------------------------------------


def test_putting_again_updates_in_place(store: MetadataStore) -> None:
    store.projects.put_project(_project())
    store.projects.put_project(_project(description="now described"))
    assert store.projects.get_project(PROJECT).description == "now described"
    assert len(store.projects.list_projects()) == 1

    store.runs.put_run(_run(status="open", ended_at=None))
    assert store.runs.get_run(RUN).status == "open"
    finished = _run(status="failed", ended_at=T2)
    store.runs.put_run(finished)
    assert store.runs.get_run(RUN) == finished
    assert store.runs.list_runs() == [finished]

    store.stages.put_stage_execution(_stage(status="open", ended_at=None))
    store.stages.put_stage_execution(_stage(status="completed", order_index=0))
    assert [stage.status for stage in store.stages.list_stage_executions(RUN)] == ["completed"]

    store.batches.put_batch_execution(_batch(status="open", ended_at=None))
    store.batches.put_batch_execution(_batch(status="failed"))
    assert [batch.status for batch in store.batches.list_batch_executions(RUN)] == ["failed"]

    store.samples.put_sample_observation(_sample("s-1", TRAIN, status="open"))
    store.samples.put_sample_observation(_sample("s-1", TRAIN, status="completed", ended_at=T2))
    [sample] = store.samples.list_sample_observations(RUN)
    assert (sample.status, sample.ended_at) == ("completed", T2)

    store.deployments.put_deployment_execution(_deployment(status="open", ended_at=None))
    store.deployments.put_deployment_execution(_deployment(status="failed"))
    assert [item.status for item in store.deployments.list_deployment_executions()] == ["failed"]

    store.environments.put_environment_snapshot(_environment())
    newer = EnvironmentSnapshot(run_ref=RUN, captured_at=T1, python_version="3.12.1", platform="Darwin")
    store.environments.put_environment_snapshot(newer)
    assert store.environments.get_environment_snapshot(RUN) == newer

    edge = LineageEdge(source_ref=RUN, target_ref=DATA, relation="read", recorded_at=T0)
    store.relations.put_relation(edge)
    moved = LineageEdge(
        source_ref=RUN, target_ref=DATA, relation="read", recorded_at=T1, attributes={"rows": 9}
    )
    store.relations.put_relation(moved)
    assert store.relations.list_relations(RUN) == [moved]


# -- repositories: missing parents, unknown refs, wrong models ---------------------------------------


def _assert_not_found(call: Callable[[], object], code: str, missing_ref: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        call()
    assert caught.value.code == code
    assert missing_ref in caught.value.message


def test_a_run_needs_its_project(store: MetadataStore) -> None:
    _assert_not_found(lambda: store.runs.put_run(_run("r", "ghost")), "project_not_found", "project:ghost")
    assert store.runs.list_runs() == []


def test_a_stage_needs_its_run(store: MetadataStore) -> None:
    store.projects.put_project(_project())
    _assert_not_found(
        lambda: store.stages.put_stage_execution(_stage(run="run:vision.ghost")),
        "run_not_found",
        "run:vision.ghost",
    )


def test_a_batch_needs_its_stage(store: MetadataStore) -> None:
    store.projects.put_project(_project())
    store.runs.put_run(_run())
    _assert_not_found(lambda: store.batches.put_batch_execution(_batch()), "stage_not_found", TRAIN)
    assert store.batches.list_batch_executions(RUN) == []


def test_a_batch_needs_its_run(store: MetadataStore) -> None:
    store.projects.put_project(_project())
    _assert_not_found(lambda: store.batches.put_batch_execution(_batch()), "run_not_found", RUN)


def test_a_sample_needs_its_batch(store: MetadataStore) -> None:
    store.projects.put_project(_project())
    store.runs.put_run(_run())
    store.stages.put_stage_execution(_stage())
    _assert_not_found(
        lambda: store.samples.put_sample_observation(_sample("s-1", EPOCH)), "batch_not_found", EPOCH
    )
    assert store.samples.list_sample_observations(RUN) == []


def test_a_sample_needs_its_stage(store: MetadataStore) -> None:
    store.projects.put_project(_project())
    store.runs.put_run(_run())
    _assert_not_found(
        lambda: store.samples.put_sample_observation(_sample("s-1", TRAIN)), "stage_not_found", TRAIN
    )


def test_a_deployment_needs_its_run_and_project(store: MetadataStore) -> None:
    store.projects.put_project(_project())
    _assert_not_found(
        lambda: store.deployments.put_deployment_execution(_deployment(run_ref="run:vision.ghost")),
        "run_not_found",
        "run:vision.ghost",
    )
    _assert_not_found(
        lambda: store.deployments.put_deployment_execution(_deployment(project="ghost")),
        "project_not_found",
        "project:ghost",
    )
    assert store.deployments.list_deployment_executions() == []


def test_an_environment_needs_its_run(store: MetadataStore) -> None:
    _assert_not_found(
        lambda: store.environments.put_environment_snapshot(_environment("run:vision.ghost")),
        "run_not_found",
        "run:vision.ghost",
    )


@pytest.mark.parametrize(
    ("get", "ref", "code"),
    [
        (lambda store, ref: store.projects.get_project(ref), "project:ghost", "project_not_found"),
        (lambda store, ref: store.runs.get_run(ref), "run:vision.ghost", "run_not_found"),
        (
            lambda store, ref: store.stages.get_stage_execution(ref),
            "stage:vision.baseline.ghost",
            "stage_not_found",
        ),
        (
            lambda store, ref: store.batches.get_batch_execution(ref),
            "batch:vision.baseline.train.ghost",
            "batch_not_found",
        ),
        (
            lambda store, ref: store.samples.get_sample_observation(ref),
            "sample:vision.baseline.train.ghost",
            "sample_not_found",
        ),
        (
            lambda store, ref: store.deployments.get_deployment_execution(ref),
            "deployment:vision.ghost",
            "deployment_not_found",
        ),
        (
            lambda store, ref: store.environments.get_environment_snapshot(ref),
            "run:vision.ghost",
            "environment_not_found",
        ),
    ],
    ids=["project", "run", "stage", "batch", "sample", "deployment", "environment"],
)
def test_getting_an_unknown_ref_raises_not_found(
    store: MetadataStore, get: Callable[[MetadataStore, str], object], ref: str, code: str
) -> None:
    _put_tree(store)
    _assert_not_found(lambda: get(store, ref), code, ref)


def test_putting_the_wrong_model_is_refused(ctx: Contexta, store: MetadataStore) -> None:
    project = _project()
    run = _run()
    puts: list[Callable[[], object]] = [
        lambda: store.projects.put_project(run),  # type: ignore[arg-type]
        lambda: store.runs.put_run(project),  # type: ignore[arg-type]
        lambda: store.runs.put_run(run.to_dict()),  # type: ignore[arg-type]
        lambda: store.stages.put_stage_execution(run),  # type: ignore[arg-type]
        lambda: store.batches.put_batch_execution(_stage()),  # type: ignore[arg-type]
        lambda: store.samples.put_sample_observation(_batch()),  # type: ignore[arg-type]
        lambda: store.deployments.put_deployment_execution(run),  # type: ignore[arg-type]
        lambda: store.environments.put_environment_snapshot(run),  # type: ignore[arg-type]
        lambda: store.relations.put_relation(run),  # type: ignore[arg-type]
        lambda: ctx.artifact_store.put_manifest(run),  # type: ignore[arg-type]
        lambda: ctx.record_store.append(run),  # type: ignore[arg-type]
    ]
    for put in puts:
        with pytest.raises(ValidationError):
            put()
    assert store.projects.list_projects() == []
    assert store.runs.list_runs() == []


# -- the record store ----------------------------------------------------------------------------------


def _envelope(number: int, record_type: str, run: str = RUN, **refs: str) -> RecordEnvelope:
    return RecordEnvelope(
        record_ref=f"record:{run.removeprefix('run:')}.r{number:05d}",
        record_type=record_type,
        recorded_at=T1,
        observed_at=T1,
        producer_ref="tests.store",
        run_ref=run,
        **refs,
    )


def _metric(
    number: int, key: str, value: float | int, *, step: int | None = None, run: str = RUN, **refs: str
) -> MetricRecord:
    return MetricRecord(
        envelope=_envelope(number, "metric", run, **refs),
        payload=MetricPayload(
            metric_key=key,
            value=value,
            value_type="int64" if type(value) is int else "float64",
            step=step,
        ),
    )


def test_append_stores_records_and_scan_returns_them_equal(ctx: Contexta, store: MetadataStore) -> None:
    _put_tree(store)
    tagged = MetricRecord(
        envelope=_envelope(1, "metric", stage_execution_ref=TRAIN, batch_execution_ref=EPOCH),
        payload=MetricPayload(
            metric_key="loss",
            value=0.42,
            value_type="float64",
            unit="nats",
            step=3,
            aggregation_scope="batch",
            tags={"device": "gpu:0"},
        ),
    )
    counted = _metric(2, "images", 1024, step=3, stage_execution_ref=TRAIN)
    event = StructuredEventRecord(
        envelope=_envelope(3, "event"),
        payload=StructuredEventPayload(
            event_key="dataset.loaded",
            level="warning",
            message="loaded 150 rows, 2 skipped",
            attributes={"rows": 150, "skipped": [7, 9]},
        ),
    )
    span = TraceSpanRecord(
        envelope=_envelope(4, "span", stage_execution_ref=EVALUATE),
        payload=TraceSpanPayload(
            span_name="predict", started_at=T1, ended_at=T2, status="error", attributes={"rows": 16}
        ),
    )
    degraded = DegradedRecord(
        envelope=_envelope(5, "degraded"),
        payload=DegradedPayload(
            reason_code="capture.dropped",
            message="queue full",
            dropped_count=7,
            first_observed_at=T0,
            last_observed_at=T1,
        ),
    )
    records = [tagged, counted, event, span, degraded]

    first = ctx.record_store.append(tagged)
    rest = ctx.record_store.append_many(records[1:])

    assert first.accepted == (tagged.envelope.record_ref,)
    assert first.rejected == ()
    assert rest.accepted == tuple(record.envelope.record_ref for record in records[1:])
    assert rest.rejected == ()
    stored = ctx.record_store.scan(run=RUN)
    assert stored == records
    assert type(stored[1].payload.value) is int


def test_append_rejects_records_of_unknown_runs_and_known_refs(ctx: Contexta, store: MetadataStore) -> None:
    _put_tree(store)
    kept = _metric(1, "loss", 0.5, step=0)
    assert ctx.record_store.append(kept).accepted == (kept.envelope.record_ref,)

    orphan = _metric(1, "loss", 0.4, step=1, run="run:vision.ghost")
    again = _metric(1, "loss", 0.3, step=1)  # same ref as `kept`
    fresh = _metric(2, "loss", 0.2, step=1)
    result = ctx.record_store.append_many([orphan, again, fresh])

    assert result.accepted == (fresh.envelope.record_ref,)
    assert [rejected.record_ref for rejected in result.rejected] == [
        orphan.envelope.record_ref,
        again.envelope.record_ref,
    ]
    orphan_reason, again_reason = (rejected.reason for rejected in result.rejected)
    assert "run:vision.ghost" in orphan_reason
    assert "already" in again_reason
    assert ctx.record_store.scan() == [kept, fresh]


def test_append_rejects_a_ref_repeated_within_one_call(ctx: Contexta, store: MetadataStore) -> None:
    _put_tree(store)
    first = _metric(1, "loss", 0.5, step=0)
    repeated = _metric(1, "loss", 0.4, step=1)
    other = _metric(2, "loss", 0.3, step=2)

    result = ctx.record_store.append_many([first, repeated, other])

    assert result.accepted == (first.envelope.record_ref, other.envelope.record_ref)
    assert [rejected.record_ref for rejected in result.rejected] == [repeated.envelope.record_ref]
    assert result.rejected[0].reason
    assert ctx.record_store.scan() == [first, other]


def test_scan_filters_keep_capture_order(ctx: Contexta, store: MetadataStore) -> None:
    _put_tree(store)
    store.runs.put_run(_run("tuned", started_at=T1))
    records = [
        _metric(1, "loss", 0.9, step=0, stage_execution_ref=TRAIN),
        _metric(2, "accuracy", 0.7, stage_execution_ref=EVALUATE),
        _metric(3, "loss", 0.5, step=1, stage_execution_ref=TRAIN),
        _metric(4, "loss", 0.8, step=0, run="run:vision.tuned"),
        _metric(5, "loss", 0.6, stage_execution_ref=EVALUATE),
        _metric(6, "loss", 0.3, step=2, stage_execution_ref=TRAIN),
        StructuredEventRecord(
            envelope=_envelope(7, "event", stage_execution_ref=TRAIN),
            payload=StructuredEventPayload(event_key="loss", level="info", message="loss plateaued"),
        ),
    ]
    assert ctx.record_store.append_many(records).rejected == ()

    def refs(found: list[Any]) -> list[str]:
        return [record.envelope.record_ref.rpartition(".")[2] for record in found]

    scan = ctx.record_store.scan
    assert refs(scan()) == ["r00001", "r00002", "r00003", "r00004", "r00005", "r00006", "r00007"]
    assert refs(scan(run=RUN)) == ["r00001", "r00002", "r00003", "r00005", "r00006", "r00007"]
    assert refs(scan(run="run:vision.tuned")) == ["r00004"]
    assert refs(scan(stage=TRAIN)) == ["r00001", "r00003", "r00006", "r00007"]
    assert refs(scan(key="loss")) == ["r00001", "r00003", "r00004", "r00005", "r00006", "r00007"]
    assert refs(scan(record_type="event")) == ["r00007"]
    assert refs(scan(run=RUN, stage=TRAIN, key="loss", record_type="metric")) == [
        "r00001",
        "r00003",
        "r00006",
    ]
    assert refs(scan(key="loss", limit=2)) == ["r00001", "r00003"]
    assert scan(run="run:vision.nothing") == []


# -- the artifact index --------------------------------------------------------------------------------


def _manifest(path: Path, kind: str, *, suffix: str, run: str = RUN, **extra: Any) -> ArtifactManifest:
    digest = hash_file(path)
    return ArtifactManifest(
        artifact_ref=f"artifact:{run.removeprefix('run:')}.{kind}-{suffix}",
        artifact_kind=kind,
        run_ref=run,
        location_ref=f"path:{path}",
        created_at=extra.pop("created_at", T1),
        hash_value=digest.hash_value,
        size_bytes=digest.size_bytes,
        **extra,
    )


def test_manifests_round_trip_per_run(ctx: Contexta, store: MetadataStore, tmp_path: Path) -> None:
    _put_tree(store)
    store.runs.put_run(_run("tuned", started_at=T1))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00\x01" * 512)
    report = tmp_path / "report.html"
    report.write_text("<html></html>")
    model = _manifest(
        weights, "model", suffix="0123456789ab", stage_execution_ref=TRAIN, attributes={"framework": "numpy"}
    )
    pending = ArtifactManifest(
        artifact_ref="artifact:vision.baseline.report-ba9876543210",
        artifact_kind="report",
        run_ref=RUN,
        location_ref=f"path:{tmp_path / 'later.html'}",
        created_at=T0,
    )
    other = _manifest(report, "report", suffix="00000000beef", run="run:vision.tuned", created_at=T2)
    ctx.artifact_store.put_manifest(model)
    ctx.artifact_store.put_manifest(pending, binding_status="PENDING")
    ctx.artifact_store.put_manifest(other)

    assert ctx.artifact_store.get_manifest(model.artifact_ref) == model
    assert ctx.artifact_store.get_manifest(pending.artifact_ref) == pending
    assert ctx.artifact_store.list_manifests(RUN) == [pending, model]
    assert ctx.artifact_store.list_manifests() == [pending, model, other]
    assert [artifact.binding_status for artifact in ctx.list_artifacts(RUN)] == ["PENDING", "BOUND"]

    with pytest.raises(NotFoundError) as caught:
        ctx.artifact_store.get_manifest("artifact:vision.baseline.model-ffffffffffff")
    assert caught.value.code == "artifact_not_found"
    with pytest.raises(ValidationError):
        ctx.artifact_store.put_manifest(model, binding_status="LOST")
    _assert_not_found(
        lambda: ctx.artifact_store.put_manifest(
            _manifest(weights, "model", suffix="1", run="run:vision.ghost")
        ),
        "run_not_found",
        "run:vision.ghost",
    )


def test_keep_copy_stores_content_once_per_digest(
    ctx: Contexta, store: MetadataStore, workspace: Path, tmp_path: Path
) -> None:
    _put_tree(store)
    content = os.urandom(64 * 1024)
    original = tmp_path / "weights.bin"
    original.write_bytes(content)
    duplicate = tmp_path / "weights-copy.bin"
    duplicate.write_bytes(content)
    first = _manifest(original, "model", suffix="0123456789ab")
    second = _manifest(duplicate, "model", suffix="ba9876543210")
    ctx.artifact_store.put_manifest(first)
    ctx.artifact_store.put_manifest(second)

    kept = ctx.artifact_store.keep_copy(first.artifact_ref)

    digest = first.hash_value
    assert digest is not None
    assert kept == workspace / "artifacts" / digest[:2] / digest
    assert kept.read_bytes() == content
    original.unlink()  # the copy outlives the file it came from
    assert kept.read_bytes() == content

    assert ctx.artifact_store.keep_copy(second.artifact_ref) == kept
    assert [path.name for path in kept.parent.iterdir()] == [digest]


def test_keep_copy_refuses_a_file_changed_since_registration(
    ctx: Contexta, store: MetadataStore, workspace: Path, tmp_path: Path
) -> None:
    _put_tree(store)
    path = tmp_path / "weights.bin"
    path.write_bytes(b"registered bytes")
    manifest = _manifest(path, "model", suffix="0123456789ab")
    ctx.artifact_store.put_manifest(manifest)
    path.write_bytes(b"overwritten after registration")

    with pytest.raises(ValidationError) as caught:
        ctx.artifact_store.keep_copy(manifest.artifact_ref)

    assert caught.value.code == "artifact_changed"
    digest = manifest.hash_value
    assert digest is not None
    content_dir = workspace / "artifacts" / digest[:2]
    assert not (content_dir / digest).exists()
    assert not content_dir.exists() or list(content_dir.iterdir()) == []  # no partial copy left behind


# -- a store file that is not a Contexta store -------------------------------------------------------


def _store_file(workspace: Path) -> Path:
    path = workspace / "metadata" / "contexta.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _open_fails(workspace: Path) -> ContextaError:
    with pytest.raises(ContextaError) as caught:
        Contexta(workspace=workspace, config={"project_name": "vision"})
    return caught.value


@pytest.mark.sqlite_only("about what lies at the SQLite file's path")
def test_a_file_of_random_bytes_is_refused_as_corrupt(workspace: Path) -> None:
    path = _store_file(workspace)
    path.write_bytes(os.urandom(8192))

    error = _open_fails(workspace)

    assert isinstance(error, StoreError)
    assert error.code == "store_corrupt"
    assert str(path) in error.message


@pytest.mark.sqlite_only("about what lies at the SQLite file's path")
def test_a_damaged_sqlite_file_is_refused_as_corrupt(workspace: Path) -> None:
    path = _store_file(workspace)
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))

    error = _open_fails(workspace)

    assert isinstance(error, StoreError)
    assert error.code == "store_corrupt"


@pytest.mark.sqlite_only("about what lies at the SQLite file's path")
def test_a_foreign_sqlite_database_is_refused_and_left_untouched(workspace: Path) -> None:
    path = _store_file(workspace)
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE invoices(id INTEGER PRIMARY KEY, amount REAL)")
    connection.execute("INSERT INTO invoices(amount) VALUES (12.5)")
    connection.commit()
    connection.close()
    before = path.read_bytes()

    error = _open_fails(workspace)

    assert isinstance(error, StoreError)
    assert error.code == "store_foreign"
    assert str(path) in error.message
    assert path.read_bytes() == before
    assert sorted(item.name for item in path.parent.iterdir()) == ["contexta.db"]


@pytest.mark.sqlite_only("about what lies at the SQLite file's path")
def test_a_directory_where_the_store_belongs_is_refused(workspace: Path) -> None:
    path = _store_file(workspace)
    path.mkdir()

    error = _open_fails(workspace)

    assert isinstance(error, StoreError)
    assert path.is_dir()


@pytest.mark.sqlite_only("about what lies at the SQLite file's path")
def test_a_store_from_a_newer_contexta_is_refused(workspace: Path) -> None:
    with Contexta(workspace=workspace, config={"project_name": "vision"}) as ctx:
        ctx.metadata_store.projects.put_project(_project())
    path = _store_file(workspace)
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA application_id={0x43545841}")  # "CTXA": ours
    connection.execute("PRAGMA user_version=99")
    connection.close()

    error = _open_fails(workspace)

    assert isinstance(error, StoreError)
    assert error.code == "store_version_unsupported"
    assert "99" in error.message
