"""History written by hand into a run that already has a live execution: a backfilled execution dated
2023 (imported from another tracker) and its stage, batch, sample, environment, deployment and
metric, all dated 2023, belong to that execution, not to the run's latest; the live execution keeps
its own stages, batches, samples, environment and series untouched.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.contract import (
    BatchExecution,
    DeploymentExecution,
    EnvironmentSnapshot,
    MetricPayload,
    MetricRecord,
    RecordEnvelope,
    Run,
    SampleObservation,
    StageExecution,
)
from contexta.errors import NotFoundError

RUN = "run:p.r"
STAGE = "stage:p.r.train"
BATCH = "batch:p.r.train.epoch-0"
SAMPLE = "sample:p.r.train.epoch-0.first"
START = "2023-01-01T00:00:00Z"
END = "2023-01-01T01:00:00Z"


def _live_execution(ctx: Contexta) -> tuple[str, str]:
    """Runs `r` live (train stage, epoch-0 batch, first sample, acc 0.9); returns (execution id, start)
    once its environment snapshot (captured by a thread of its own) is stored."""
    with ctx.run("r") as run, run.stage("train") as stage:
        with stage.batch("epoch-0") as batch, batch.sample("first"):
            pass
        stage.metric("acc", 0.9)
    deadline = time.monotonic() + 60
    while ctx.get_environment("r") is None:
        assert time.monotonic() < deadline, "the live environment snapshot never arrived"
        ctx.flush()
        time.sleep(0.01)
    return run.execution_id, run.started_at


def _backfill(ctx: Contexta) -> None:
    metadata = ctx.metadata_store
    metadata.runs.put_run(
        Run(
            run_ref=RUN, project_ref="project:p", name="r", status="completed", started_at=START, ended_at=END
        )
    )
    metadata.stages.put_stage_execution(
        StageExecution(
            stage_execution_ref=STAGE,
            run_ref=RUN,
            stage_name="train",
            status="completed",
            started_at="2023-01-01T00:01:00Z",
            ended_at="2023-01-01T00:50:00Z",
        )
    )
    metadata.batches.put_batch_execution(
        BatchExecution(
            batch_execution_ref=BATCH,
            run_ref=RUN,
            stage_execution_ref=STAGE,
            batch_name="epoch-0",
            status="failed",
            started_at="2023-01-01T00:02:00Z",
            ended_at="2023-01-01T00:10:00Z",
        )
    )
    metadata.samples.put_sample_observation(
        SampleObservation(
            sample_observation_ref=SAMPLE,
            run_ref=RUN,
            stage_execution_ref=STAGE,
            batch_execution_ref=BATCH,
            sample_name="first",
            observed_at="2023-01-01T00:03:00Z",
            retention_class="imported",
        )
    )
    metadata.environments.put_environment_snapshot(
        EnvironmentSnapshot(
            run_ref=RUN,
            captured_at="2023-01-01T00:00:01Z",
            python_version="3.8.10",
            platform="Linux-imported",
        )
    )
    metadata.deployments.put_deployment_execution(
        DeploymentExecution(
            deployment_execution_ref="deployment:p.legacy-prod",
            project_ref="project:p",
            deployment_name="legacy-prod",
            status="completed",
            started_at="2023-01-02T00:00:00Z",
            ended_at="2023-01-02T00:05:00Z",
            run_ref=RUN,
        )
    )
    envelope = RecordEnvelope(
        record_ref="record:p.r.imported-1",
        record_type="metric",
        recorded_at="2023-01-01T00:40:00Z",
        observed_at="2023-01-01T00:40:00Z",
        producer_ref="import",
        run_ref=RUN,
        stage_execution_ref=STAGE,
    )
    result = ctx.record_store.append(
        MetricRecord(
            envelope=envelope, payload=MetricPayload(metric_key="acc", value=0.5, value_type="float64")
        )
    )
    assert result.ok


def test_backfilled_history_belongs_to_the_backfilled_execution(workspace: Path) -> None:
    # Breaks if hand-written stages, batches, samples, environments, deployments and records went to
    # the run's latest execution: the 2023 execution would list nothing, and the live one would show
    # a 2023 stage, a failed batch, the imported environment and the imported point in its series.
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        live_id, live_start = _live_execution(ctx)
        live_stages = ctx.list_stages("r")
        live_batches = ctx.list_batches("r")
        live_samples = ctx.list_samples("r")
        live_environment = ctx.get_environment("r")

        _backfill(ctx)

        every = ctx.list_runs(all_executions=True)
        assert [r.started_at for r in every] == [START, live_start]
        old = every[0].run_id  # `run:p.r@n`: an earlier execution
        assert old.startswith(f"{RUN}@") and every[1].run_id == RUN
        assert [(s.stage_id, s.started_at) for s in ctx.list_stages(old)] == [(STAGE, "2023-01-01T00:01:00Z")]
        assert [(b.batch_id, b.status) for b in ctx.list_batches(old)] == [(BATCH, "failed")]
        assert [(s.sample_id, s.retention_class) for s in ctx.list_samples(old)] == [(SAMPLE, "imported")]
        environment = ctx.get_environment(old)
        assert environment is not None and environment.python_version == "3.8.10"
        assert ctx.get_metric_series(old, "acc").values == (0.5,)
        assert [(d.name, d.run_id) for d in ctx.list_deployments()] == [("legacy-prod", old)]

        # The live execution is untouched.
        assert ctx.get_run_snapshot("r").run.execution_id == live_id
        assert ctx.list_stages("r") == live_stages
        assert ctx.list_batches("r") == live_batches
        assert ctx.list_samples("r") == live_samples
        assert ctx.get_environment("r") == live_environment
        assert ctx.get_metric_series("r", "acc").values == (0.9,)
        assert ctx.get_metric_series("r", "acc", stage="train").values == (0.9,)


def test_history_dated_between_two_executions_goes_to_the_earlier_one(workspace: Path) -> None:
    # Two backfilled executions (2023-01 and 2023-06) beside the live one: a stage and a point dated
    # 2023-03 belong to the January execution, one dated 2023-07 to the June one.
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        _live_execution(ctx)
        metadata = ctx.metadata_store
        for started, ended in (
            (START, "2023-02-01T00:00:00Z"),
            ("2023-06-01T00:00:00Z", "2023-07-31T00:00:00Z"),
        ):
            metadata.runs.put_run(
                Run(
                    run_ref=RUN,
                    project_ref="project:p",
                    name="r",
                    status="completed",
                    started_at=started,
                    ended_at=ended,
                )
            )
        for number, (at, value) in enumerate((("2023-03-01T00:00:00Z", 0.3), ("2023-07-01T00:00:00Z", 0.7))):
            metadata.stages.put_stage_execution(
                StageExecution(
                    stage_execution_ref="stage:p.r.evaluate",
                    run_ref=RUN,
                    stage_name="evaluate",
                    status="completed",
                    started_at=at,
                    ended_at=at,
                )
            )
            envelope = RecordEnvelope(
                record_ref=f"record:p.r.imported-{number}",
                record_type="metric",
                recorded_at=at,
                observed_at=at,
                producer_ref="import",
                run_ref=RUN,
            )
            assert ctx.record_store.append(
                MetricRecord(envelope, MetricPayload(metric_key="f1", value=value, value_type="float64"))
            ).ok

        ids = {r.started_at: r.run_id for r in ctx.list_runs(all_executions=True)}
        january, june = ids[START], ids["2023-06-01T00:00:00Z"]
        assert [s.started_at for s in ctx.list_stages(january)] == ["2023-03-01T00:00:00Z"]
        assert [s.started_at for s in ctx.list_stages(june)] == ["2023-07-01T00:00:00Z"]
        assert ctx.get_metric_series(january, "f1").values == (0.3,)
        assert ctx.get_metric_series(june, "f1").values == (0.7,)
        with pytest.raises(NotFoundError, match="no metric 'f1'"):
            ctx.get_metric_series("r", "f1")
        assert [s.name for s in ctx.list_stages("r")] == ["train"]
