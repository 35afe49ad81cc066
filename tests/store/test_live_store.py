"""Live capture lands in the canonical store: a run is queryable (here and from another process) the
moment its `with` block exits, with everything it captured, its arguments and its environment.

No test flushes or closes before it queries: leaving `with ctx.run(...)` is the promise under test.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contexta import Contexta
from contexta.capture import read_capture_log
from contexta.contract import (
    MetricPayload,
    MetricRecord,
    Project,
    RecordEnvelope,
    Run,
    StageExecution,
)

PROJECT = "regression"
RUN_ARGUMENTS: dict[str, Any] = {
    "dataset_ref": "dataset:regression.synthetic-64",
    "tags": {"team": "forecasting", "model": "linear"},
    "metadata": {"owner": "ana", "attempt": 2},
    "code_revision": "9f1c2e7",
    "config_snapshot": {"learning_rate": 0.1, "steps": 12, "features": ["x0", "x1", "x2"]},
}
STEPS = 12


def _script(body: str, **constants: Any) -> str:
    """A child program: `constants` become module-level names, then the dedented `body`."""
    header = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    return header + textwrap.dedent(body)


def _run_child(
    script: str, cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        f"child exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def _read_in_another_process(workspace: Path, cwd: Path, run_id: str, key: str) -> dict[str, Any]:
    """What a fresh process sees in the workspace's store (runs, stages, batches and one series)."""
    script = _script(
        """
        import json
        from contexta import Contexta

        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        try:
            seen = {
                "runs": [run.to_dict() for run in ctx.list_runs()],
                "stages": [stage.to_dict() for stage in ctx.list_stages(RUN_ID)],
                "batches": [batch.to_dict() for batch in ctx.list_batches(RUN_ID)],
                "samples": [sample.to_dict() for sample in ctx.list_samples(RUN_ID)],
                "artifacts": [artifact.to_dict() for artifact in ctx.list_artifacts(RUN_ID)],
                "deployments": [deployment.to_dict() for deployment in ctx.list_deployments()],
                "series": ctx.get_metric_series(RUN_ID, KEY).to_dict(),
            }
        finally:
            ctx.close()
        print(json.dumps(seen))
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
        RUN_ID=run_id,
        KEY=key,
    )
    seen: dict[str, Any] = json.loads(_run_child(script, cwd).stdout)
    return seen


@pytest.fixture
def ctx(workspace: Path) -> Iterator[Contexta]:
    context = Contexta(workspace=workspace, config={"project_name": PROJECT})
    yield context
    context.close()


@dataclass
class Capture:
    run_id: str
    train_losses: list[float]
    grad_norms: list[float]
    eval_loss: float
    artifact_ref: str
    model_path: Path


def _fit_linear_model(ctx: Contexta, directory: Path) -> Capture:
    """Least squares by gradient descent, captured the way a training script would capture it."""
    rng = np.random.default_rng(7)
    features = rng.normal(size=(64, 3))
    targets = features @ np.array([1.5, -2.0, 0.5]) + rng.normal(scale=0.1, size=64)
    train_x, train_y, eval_x, eval_y = features[:48], targets[:48], features[48:], targets[48:]
    weights = np.zeros(3)
    losses: list[float] = []
    grad_norms: list[float] = []
    with ctx.run("linear-fit", **RUN_ARGUMENTS) as run:
        with run.stage("train") as train:
            for step in range(STEPS):
                residual = train_x @ weights - train_y
                loss = float(np.mean(residual**2))
                gradient = 2 * train_x.T @ residual / len(train_y)
                train.metric("loss", loss, step=step)
                train.metrics({"grad_norm": float(np.linalg.norm(gradient)), "lr": 0.1}, step=step)
                weights -= 0.1 * gradient
                losses.append(loss)
                grad_norms.append(float(np.linalg.norm(gradient)))
            for index in range(3):
                try:
                    with train.batch(f"epoch-{index}") as batch:
                        rows = slice(16 * index, 16 * index + 16)
                        batch.metric(
                            "batch_loss", float(np.mean((train_x[rows] @ weights - train_y[rows]) ** 2))
                        )
                        if index == 1:
                            raise FloatingPointError("gradient overflow in epoch-1")
                except FloatingPointError:
                    pass
            model_path = directory / "weights.npy"
            np.save(model_path, weights)
            artifact = train.register_artifact("model", model_path)
            artifact_ref = artifact.payload["manifest"].artifact_ref
        with run.stage("evaluate") as evaluate:
            eval_loss = float(np.mean((eval_x @ weights - eval_y) ** 2))
            evaluate.metric("loss", eval_loss)
            with evaluate.sample("first-row", retention_class="review"):
                pass
            with evaluate.batch("holdout") as holdout, holdout.sample("row-0"):
                pass
        with ctx.deployment("canary", run_ref=run.ref, artifact_ref=artifact_ref):
            pass
    return Capture(run.ref, losses, grad_norms, eval_loss, artifact_ref, model_path)


# -- a run captured live -----------------------------------------------------------------------------


def test_run_is_listed_with_its_arguments_right_after_the_with_block(ctx: Contexta, tmp_path: Path) -> None:
    captured = _fit_linear_model(ctx, tmp_path)

    [run] = ctx.list_runs()
    assert captured.run_id == "run:regression.linear-fit"
    assert (run.run_id, run.project_name, run.name, run.status) == (
        captured.run_id,
        PROJECT,
        "linear-fit",
        "completed",
    )
    assert run.ended_at is not None and run.ended_at >= run.started_at
    assert run.dataset_ref == RUN_ARGUMENTS["dataset_ref"]
    assert run.tags == RUN_ARGUMENTS["tags"]
    assert run.metadata == RUN_ARGUMENTS["metadata"]
    assert run.code_revision == RUN_ARGUMENTS["code_revision"]
    assert run.config_snapshot == RUN_ARGUMENTS["config_snapshot"]
    assert [project.name for project in ctx.list_projects()] == [PROJECT]


def test_stages_batches_and_samples_are_listed_in_order(ctx: Contexta, tmp_path: Path) -> None:
    captured = _fit_linear_model(ctx, tmp_path)

    stages = ctx.list_stages("linear-fit")
    assert [(stage.stage_id, stage.status) for stage in stages] == [
        ("stage:regression.linear-fit.train", "completed"),
        ("stage:regression.linear-fit.evaluate", "completed"),
    ]
    batches = ctx.list_batches(captured.run_id, "train")
    assert [(batch.name, batch.status) for batch in batches] == [
        ("epoch-0", "completed"),
        ("epoch-1", "failed"),
        ("epoch-2", "completed"),
    ]
    assert all(batch.stage_id == "stage:regression.linear-fit.train" for batch in batches)
    assert [batch.batch_id for batch in ctx.list_batches("linear-fit")] == [
        "batch:regression.linear-fit.train.epoch-0",
        "batch:regression.linear-fit.train.epoch-1",
        "batch:regression.linear-fit.train.epoch-2",
        "batch:regression.linear-fit.evaluate.holdout",
    ]

    samples = ctx.list_samples("linear-fit")
    assert [(sample.sample_id, sample.batch_id) for sample in samples] == [
        ("sample:regression.linear-fit.evaluate.first-row", None),
        (
            "sample:regression.linear-fit.evaluate.holdout.row-0",
            "batch:regression.linear-fit.evaluate.holdout",
        ),
    ]
    assert samples[0].retention_class == "review"
    assert [sample.name for sample in ctx.list_samples("linear-fit", "evaluate", "holdout")] == ["row-0"]


def test_metric_series_come_back_in_capture_order(ctx: Contexta, tmp_path: Path) -> None:
    captured = _fit_linear_model(ctx, tmp_path)

    series = ctx.get_metric_series("linear-fit", "loss")
    assert series.run_id == captured.run_id
    assert [point.step for point in series.points] == [*range(STEPS), None]
    assert list(series.values) == [*captured.train_losses, captured.eval_loss]
    assert captured.train_losses == sorted(captured.train_losses, reverse=True)  # the fit did converge

    train = ctx.get_metric_series(captured.run_id, "loss", stage="train")
    assert list(train.values) == captured.train_losses
    assert {point.stage_id for point in train.points} == {"stage:regression.linear-fit.train"}
    evaluate = ctx.get_metric_series("linear-fit", "loss", stage="stage:regression.linear-fit.evaluate")
    assert list(evaluate.values) == [captured.eval_loss]

    # metrics({...}) lands as one point per key, with the step it was given
    grad_norm = ctx.get_metric_series("linear-fit", "grad_norm")
    assert [(point.step, point.value) for point in grad_norm.points] == list(enumerate(captured.grad_norms))
    assert [point.step for point in ctx.get_metric_series("linear-fit", "lr").points] == list(range(STEPS))

    # a metric captured in a batch that then raised is kept, with its batch
    batch_loss = ctx.get_metric_series("linear-fit", "batch_loss")
    assert [point.batch_id for point in batch_loss.points] == [
        f"batch:regression.linear-fit.train.epoch-{index}" for index in range(3)
    ]


def test_artifact_and_deployment_are_listed(ctx: Contexta, tmp_path: Path) -> None:
    captured = _fit_linear_model(ctx, tmp_path)

    [artifact] = ctx.list_artifacts("linear-fit")
    assert artifact.artifact_ref == captured.artifact_ref
    assert (artifact.kind, artifact.run_id, artifact.stage_id, artifact.binding_status) == (
        "model",
        captured.run_id,
        "stage:regression.linear-fit.train",
        "BOUND",
    )
    assert artifact.size_bytes == captured.model_path.stat().st_size
    assert artifact.location == f"path:{captured.model_path}"
    assert ctx.artifact_store.get_manifest(captured.artifact_ref).hash_value == artifact.hash_value

    [deployment] = ctx.list_deployments()
    assert (deployment.deployment_id, deployment.status, deployment.run_id, deployment.artifact_ref) == (
        "deployment:regression.canary",
        "completed",
        captured.run_id,
        captured.artifact_ref,
    )
    assert [item.deployment_id for item in ctx.list_deployments(run_id="linear-fit")] == [
        "deployment:regression.canary"
    ]
    assert [item.deployment_id for item in ctx.list_deployments(project=PROJECT)] == [
        "deployment:regression.canary"
    ]


def test_another_process_sees_the_run_right_after_the_with_block(
    ctx: Contexta, workspace: Path, tmp_path: Path
) -> None:
    captured = _fit_linear_model(ctx, tmp_path)
    # nothing in this process has read the store yet: only the end of the with block made it durable

    seen = _read_in_another_process(workspace, tmp_path, "linear-fit", "loss")

    [run] = seen["runs"]
    assert (run["run_id"], run["status"], run["tags"], run["config_snapshot"]) == (
        captured.run_id,
        "completed",
        RUN_ARGUMENTS["tags"],
        RUN_ARGUMENTS["config_snapshot"],
    )
    assert [stage["name"] for stage in seen["stages"]] == ["train", "evaluate"]
    assert [(batch["name"], batch["status"]) for batch in seen["batches"]] == [
        ("epoch-0", "completed"),
        ("epoch-1", "failed"),
        ("epoch-2", "completed"),
        ("holdout", "completed"),
    ]
    assert [sample["name"] for sample in seen["samples"]] == ["first-row", "row-0"]
    assert [artifact["artifact_ref"] for artifact in seen["artifacts"]] == [captured.artifact_ref]
    assert [deployment["run_id"] for deployment in seen["deployments"]] == [captured.run_id]
    points = seen["series"]["points"]
    assert [point["step"] for point in points] == [*range(STEPS), None]
    assert [point["value"] for point in points] == [*captured.train_losses, captured.eval_loss]


# -- the environment -----------------------------------------------------------------------------------


def test_environment_is_stored_with_the_run(ctx: Contexta, tmp_path: Path) -> None:
    _fit_linear_model(ctx, tmp_path)

    environment = ctx.get_environment("linear-fit")
    assert environment is not None
    assert environment.python_version == platform.python_version()
    assert environment.platform == platform.platform()
    assert environment.packages is not None
    assert environment.packages["orjson"] == importlib.metadata.version("orjson")
    assert environment.captured_at


_CAPTURE_SMALL_RUN = """
    from contexta import Contexta

    with Contexta(workspace=WORKSPACE, config={"project_name": PROJECT}) as ctx:
        with ctx.run(RUN) as run:
            run.metric("loss", 0.25, step=0)
"""


def _git(repo: Path, *arguments: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Tester", "-c", "user.email=tester@example.com", *arguments],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


def _without_enclosing_repository(directory: Path) -> dict[str, str]:
    """An environment in which git does not look above `directory` for a repository."""
    return {**os.environ, "GIT_CEILING_DIRECTORIES": str(directory.parent)}


def test_git_revision_is_none_outside_a_repository(workspace: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    _run_child(
        _script(_CAPTURE_SMALL_RUN, WORKSPACE=str(workspace), PROJECT=PROJECT, RUN="outside"),
        plain,
        env=_without_enclosing_repository(plain),
    )

    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as reader:
        environment = reader.get_environment("outside")
    assert environment is not None
    assert environment.git_revision is None
    assert environment.python_version == platform.python_version()


def test_git_revision_is_the_head_of_the_repository_the_run_starts_in(
    workspace: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("print('training')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD")

    _run_child(
        _script(_CAPTURE_SMALL_RUN, WORKSPACE=str(workspace), PROJECT=PROJECT, RUN="inside"),
        repo,
        env=_without_enclosing_repository(repo),
    )

    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as reader:
        environment = reader.get_environment("inside")
    assert environment is not None
    assert environment.git_revision == head


# -- running a name again --------------------------------------------------------------------------


def _metric_log_lines(workspace: Path, run_id: str, key: str) -> list[dict[str, Any]]:
    log = read_capture_log(workspace / "cache" / "capture" / "record.jsonl")
    return [
        line["payload"]
        for line in log.lines
        if line["payload_type"] == "MetricRecord"
        and line["payload"]["envelope"]["run_ref"] == run_id
        and line["payload"]["payload"]["metric_key"] == key
    ]


def test_running_a_name_again_replaces_the_earlier_execution(workspace: Path, tmp_path: Path) -> None:
    first_model = tmp_path / "first.bin"
    first_model.write_bytes(b"first weights")
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as first:
        with first.run("nightly", tags={"execution": "first"}) as run, run.stage("warmup") as warmup:
            for step, loss in enumerate((0.9, 0.8, 0.7)):
                warmup.metric("loss", loss, step=step)
            with warmup.batch("epoch-0"):
                pass
            with warmup.sample("probe"):
                pass
            warmup.register_artifact("model", first_model)
        assert [stage.name for stage in first.list_stages("nightly")] == ["warmup"]

    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as second:
        with second.run("nightly", tags={"execution": "second"}) as run, run.stage("train") as train:
            train.metric("loss", 0.5, step=0)
            train.metric("loss", 0.4, step=1)

        [listed] = second.list_runs()
        assert listed.tags == {"execution": "second"}
        assert listed.status == "completed"
        assert [stage.name for stage in second.list_stages("nightly")] == ["train"]
        assert second.list_batches("nightly") == []
        assert second.list_samples("nightly") == []
        assert second.list_artifacts("nightly") == []
        series = second.get_metric_series("nightly", "loss")
        assert [(point.step, point.value) for point in series.points] == [(0, 0.5), (1, 0.4)]
        assert [record.payload.value for record in second.record_store.scan(run=run.ref)] == [0.5, 0.4]
        assert second.get_environment("nightly") is not None

    # the capture log keeps both executions
    logged = [
        line["payload"]["value"] for line in _metric_log_lines(workspace, "run:regression.nightly", "loss")
    ]
    assert logged == [0.9, 0.8, 0.7, 0.5, 0.4]


def test_running_a_name_again_in_the_same_contexta_replaces_it(ctx: Contexta) -> None:
    with ctx.run("sweep") as run, run.stage("train") as train:
        train.metric("loss", 3.0, step=0)
    with ctx.run("sweep") as run, run.stage("train") as train:
        train.metric("loss", 1.0, step=0)

    assert [run.run_id for run in ctx.list_runs()] == ["run:regression.sweep"]
    assert list(ctx.get_metric_series("sweep", "loss").values) == [1.0]


def test_resume_appends_to_the_earlier_execution(workspace: Path) -> None:
    with (
        Contexta(workspace=workspace, config={"project_name": PROJECT}) as first,
        first.run("long-job") as run,
        run.stage("train") as train,
    ):
        for step in range(3):
            train.metric("loss", 1.0 / (step + 1), step=step)

    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as second:
        with second.run("long-job", resume=True) as run:
            with run.stage("train") as train:
                for step in range(3, 5):
                    train.metric("loss", 1.0 / (step + 1), step=step)
            with run.stage("evaluate") as evaluate:
                evaluate.metric("accuracy", 0.9)

        series = second.get_metric_series("long-job", "loss")
        assert [point.step for point in series.points] == [0, 1, 2, 3, 4]
        assert list(series.values) == [1.0, 0.5, 1.0 / 3, 0.25, 0.2]
        assert [stage.name for stage in second.list_stages("long-job")] == ["train", "evaluate"]
        [listed] = second.list_runs()
        assert listed.status == "completed"


# -- hand-written history beside live capture ----------------------------------------------------------


def _seed_run(ctx: Contexta, name: str, started_at: str, ended_at: str, metrics: dict[str, float]) -> str:
    """A past run put by hand, the way seed 004 writes history."""
    store = ctx.metadata_store
    run_id = f"run:{PROJECT}.{name}"
    store.runs.put_run(
        Run(
            run_ref=run_id,
            project_ref=f"project:{PROJECT}",
            name=name,
            status="completed",
            started_at=started_at,
            ended_at=ended_at,
        )
    )
    stage_id = f"stage:{PROJECT}.{name}.evaluate"
    store.stages.put_stage_execution(
        StageExecution(
            stage_execution_ref=stage_id,
            run_ref=run_id,
            stage_name="evaluate",
            status="completed",
            started_at=started_at,
            ended_at=ended_at,
            order_index=0,
        )
    )
    for index, (key, value) in enumerate(metrics.items()):
        result = ctx.record_store.append(
            MetricRecord(
                envelope=RecordEnvelope(
                    record_ref=f"record:{PROJECT}.{name}.r{index:05d}",
                    record_type="metric",
                    recorded_at=ended_at,
                    observed_at=ended_at,
                    producer_ref="contexta.seed",
                    run_ref=run_id,
                    stage_execution_ref=stage_id,
                ),
                payload=MetricPayload(metric_key=key, value=value, value_type="float64"),
            )
        )
        assert result.accepted == (f"record:{PROJECT}.{name}.r{index:05d}",)
    return run_id


def test_seeded_history_and_live_capture_are_read_together(ctx: Contexta) -> None:
    ctx.metadata_store.projects.put_project(
        Project(
            project_ref=f"project:{PROJECT}",
            name=PROJECT,
            created_at="2025-01-01T00:00:00Z",
            description="demand forecasting",
        )
    )
    january = _seed_run(
        ctx, "jan", "2025-01-10T09:00:00Z", "2025-01-10T12:00:00Z", {"accuracy": 0.81, "loss": 0.40}
    )
    february = _seed_run(
        ctx, "feb", "2025-02-07T09:00:00Z", "2025-02-07T12:00:00Z", {"accuracy": 0.90, "loss": 0.30}
    )
    with ctx.run("live") as run, run.stage("evaluate") as evaluate:
        evaluate.metric("accuracy", 0.85)
        evaluate.metric("loss", 0.10)

    runs = ctx.list_runs()
    assert [item.run_id for item in runs] == [january, february, run.ref]
    assert [item.run_id for item in ctx.list_runs(PROJECT)] == [january, february, run.ref]
    assert [item.status for item in runs] == ["completed"] * 3
    [project] = ctx.list_projects()
    assert (project.name, project.description) == (PROJECT, "demand forecasting")

    candidates = [january, february, run.ref]
    assert ctx.select_best_run(candidates, "accuracy") == february
    assert ctx.select_best_run(candidates, "loss", higher_is_better=False) == run.ref
    assert ctx.select_best_run(["jan", "live"], "accuracy", stage_name="evaluate") == run.ref
    assert list(ctx.get_metric_series("feb", "accuracy").values) == [0.90]


# -- persistence switched off, a closed store, an open run -----------------------------------------------


def test_persist_false_writes_the_log_but_not_the_store(workspace: Path) -> None:
    config = {"project_name": PROJECT, "capture": {"persist": False}}
    with Contexta(workspace=workspace, config=config) as ctx:
        with ctx.run("offline") as run, run.stage("train") as train:
            for step in range(4):
                train.metric("loss", 1.0 - step / 10, step=step)
        assert ctx.list_runs() == []
        assert ctx.record_store.scan() == []
        assert ctx.metadata_store.runs.list_runs() == []

    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as reader:
        assert reader.list_runs() == []
        assert reader.list_projects() == []
    assert len(_metric_log_lines(workspace, "run:regression.offline", "loss")) == 4
    context_lines = read_capture_log(workspace / "cache" / "capture" / "context.jsonl").lines
    assert {line["payload_type"] for line in context_lines} >= {"Run", "StageExecution"}


def test_queries_keep_working_after_the_metadata_store_is_closed(ctx: Contexta) -> None:
    with ctx.run("before-close") as run:
        run.metric("loss", 0.5, step=0)

    ctx.metadata_store.close()

    assert [item.name for item in ctx.list_runs()] == ["before-close"]
    assert list(ctx.get_metric_series("before-close", "loss").values) == [0.5]
    assert ctx.metadata_store.runs.get_run("run:regression.before-close").status == "completed"
    assert len(ctx.record_store.scan(run="run:regression.before-close")) == 1

    # and live capture keeps landing in the store
    with ctx.run("after-close") as run:
        run.metric("loss", 0.25, step=0)
    ctx.metadata_store.close()
    assert [item.name for item in ctx.list_runs()] == ["before-close", "after-close"]
    assert list(ctx.get_metric_series("after-close", "loss").values) == [0.25]


def test_a_run_left_open_is_listed_as_open(ctx: Contexta, workspace: Path) -> None:
    run = ctx.run("interactive")
    run.metric("loss", 2.0, step=0)

    [listed] = ctx.list_runs()
    assert (listed.run_id, listed.status, listed.ended_at) == ("run:regression.interactive", "open", None)
    assert list(ctx.get_metric_series("interactive", "loss").values) == [2.0]

    ctx.close()  # closing the Contexta ends what is still open
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as reader:
        [listed] = reader.list_runs()
    assert listed.status == "cancelled"
    assert listed.ended_at is not None


def test_a_run_open_in_another_process_is_listed_as_open_while_it_runs(
    workspace: Path, tmp_path: Path
) -> None:
    script = _script(
        """
        import sys
        from contexta import Contexta

        ctx = Contexta(workspace=WORKSPACE, config={"project_name": PROJECT})
        run = ctx.run("notebook")
        stage = run.stage("explore")
        for step in range(5):
            stage.metric("loss", 1.0 / (step + 1), step=step)
        ctx.flush()
        print("READY", flush=True)
        sys.stdin.readline()
        """,
        WORKSPACE=str(workspace),
        PROJECT=PROJECT,
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "READY", child.stderr.read() if child.stderr else ""
        with Contexta(workspace=workspace, config={"project_name": PROJECT}) as reader:
            [listed] = reader.list_runs()
            stages = reader.list_stages("notebook")
            series = reader.get_metric_series("notebook", "loss")
        assert (listed.run_id, listed.status, listed.ended_at) == ("run:regression.notebook", "open", None)
        assert [(stage.name, stage.status) for stage in stages] == [("explore", "open")]
        assert [point.step for point in series.points] == [0, 1, 2, 3, 4]
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()
